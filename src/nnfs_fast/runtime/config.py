"""``show_config()``: what this installation of nnfs_fast runs on."""
import platform
import sys

import numpy as np

from nnfs_fast.runtime import dispatch as _dispatch
from nnfs_fast.runtime.openmp import get_num_threads, openmp_enabled, runtime


def compiler_name(raw):
    """A kernel module's COMPILER string on one clean line: clang's ``__clang_version__`` ends
    in a space ("clang 14.0.6 "), and vendor builds may add notes in parentheses (kept)."""
    return " ".join(raw.split())


def _loop_targets():
    """The build the dropout and optimizer loops run as (kernels/targets.h)."""
    from nnfs_fast.kernels import dropout, optimizers
    return f"dropout {dropout.target()}, optimizers {optimizers.target()}"


def config():
    """The facts ``show_config`` prints, as a dict."""
    k = _dispatch.kernels
    return {
        "nnfs_fast": __import__("nnfs_fast").__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "compiler": compiler_name(k.COMPILER),
        "openmp": openmp_enabled(),
        "threads": get_num_threads(),
        "runtime": runtime(),
        "kernel_level": _dispatch.LEVEL,
        "kernel_isa": k.ISA,
        "loops": _loop_targets(),
        "levels_built": _dispatch.built_levels(),
        "levels_usable": _dispatch.usable_levels(),
        "isa_override": f"{_dispatch.ENV_VAR}={_dispatch.os.environ.get(_dispatch.ENV_VAR, '')}",
    }


def show_config(file=None):
    """Print version, compiler, OpenMP and threads, and the active SIMD kernel path."""
    for key, value in config().items():
        print(f"{key + ':':15} {value}", file=file or sys.stdout)
