"""Choose, once at import, the dense-kernel module built for the best instruction-set level
this CPU supports. ``NNFS_FAST_ISA=baseline|avx2|avx512`` forces a level (tests, bug reports).
The element-wise kernels that carry their loops for two targets (kernels/targets.h) follow it:
loop_target()."""
import importlib
import importlib.util
import os

from nnfs_fast.runtime import cpu as _cpu

LEVELS = ("baseline", "avx2", "avx512")
ENV_VAR = "NNFS_FAST_ISA"


class UnusableLevelError(ImportError):
    """NNFS_FAST_ISA names a level that is not built or that this CPU cannot run."""


def built_levels():
    """Levels whose kernel module is in this installation (the target architecture's)."""
    return [lvl for lvl in LEVELS
            if importlib.util.find_spec(f"nnfs_fast.kernels.gemm.dense_{lvl}")]


def usable_levels():
    """Levels both built and runnable on this CPU, best last."""
    supported = set(_cpu.supported_levels())
    return [lvl for lvl in built_levels() if lvl in supported]


def load(level=None):
    """The kernel module for ``level`` (None: the best usable one)."""
    usable = usable_levels()
    if level is None:
        level = usable[-1]
    elif level not in usable:
        raise UnusableLevelError(
            f"{ENV_VAR}={level!r}: this level is not usable here; built: {built_levels()}, "
            f"runnable on this CPU: {usable}. Unset {ENV_VAR} or pick one of {usable}.")
    return importlib.import_module(f"nnfs_fast.kernels.gemm.dense_{level}")


kernels = load(os.environ.get(ENV_VAR) or None)
LEVEL = kernels.__name__.rsplit("_", 1)[-1]


def loop_targets(have_avx2):
    """The targets a module's loop tables (kernels/targets.h) can run as here: "baseline", and
    "avx2" where the module was built with that table and this CPU runs AVX2."""
    return ["baseline"] + (["avx2"] if have_avx2 and "avx2" in _cpu.supported_levels() else [])


def loop_target(have_avx2):
    """The target such a module runs its loops as: avx2 where it has them and the dense
    kernels run at avx2 or above (so NNFS_FAST_ISA=baseline forces the baseline loops too)."""
    return "avx2" if LEVEL in ("avx2", "avx512") and "avx2" in loop_targets(have_avx2) \
        else "baseline"


def checked_loop_target(name, have_avx2):
    """``name`` if such a module can run its loops as it here (loop_targets), else a
    ValueError naming the targets it can run as (the modules' ``_use_target`` test hook)."""
    targets = loop_targets(have_avx2)
    if name not in targets:
        raise ValueError(f"_use_target: expected one of {targets}, got {name!r}")
    return name
