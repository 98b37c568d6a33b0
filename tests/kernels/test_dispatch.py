"""Instruction-set dispatch and show_config (README.md, Threads): NNFS_FAST_ISA selects each usable
kernel level in a fresh process, every level computes the same layer within float32 round-off,
and a level that cannot run here fails with an actionable ImportError."""
import io
import json
import os
import platform

import numpy as np
import pytest

import nnfs_fast
from conftest import LEVELS, assert_within, dot_bound, f64, kernel_module, run_python
from nnfs_fast import reference
from nnfs_fast.kernels import dropout as _dropout
from nnfs_fast.runtime import cpu as _cpu
from nnfs_fast.runtime import dispatch as _dispatch
from nnfs_fast.runtime.config import compiler_name, config

# In a fresh process: the config, and one Dense forward/backward saved for the parent.
LEVEL_SCRIPT = """
import json, sys
import numpy as np
import nnfs_fast
from nnfs_fast.runtime.config import config
from nnfs_fast import Layer_Dense

rng = np.random.default_rng(11)
X = rng.standard_normal((257, 19)).astype(np.float32)
G = rng.standard_normal((257, 45)).astype(np.float32)
layer = Layer_Dense(19, 45, weight_regularizer_l1=1e-3, bias_regularizer_l2=1e-3)
layer.weights = rng.standard_normal((19, 45)).astype(np.float32)
layer.biases = rng.standard_normal((1, 45)).astype(np.float32)
layer.forward(X)
layer.backward(G)
np.savez(sys.argv[1], X=X, G=G, W=layer.weights, b=layer.biases, output=layer.output,
         dweights=layer.dweights, dbiases=layer.dbiases, dinputs=layer.dinputs)
print(json.dumps(config()))
"""


def run_level(level, tmp_path):
    path = str(tmp_path / f"{level}.npz")
    proc = run_python(LEVEL_SCRIPT.replace("sys.argv[1]", repr(path)),
                      env={_dispatch.ENV_VAR: level})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), np.load(path)


@pytest.mark.parametrize("level", LEVELS)
def test_env_var_selects_each_usable_level(level, tmp_path):
    cfg, res = run_level(level, tmp_path)
    assert cfg["kernel_level"] == level
    assert cfg["kernel_isa"] == kernel_module(level).ISA
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert cfg["kernel_isa"] == {"baseline": "sse2"}.get(level, level)
    assert cfg["isa_override"] == f"{_dispatch.ENV_VAR}={level}"
    # the dropout and optimizer loops follow the level (kernels/targets.h)
    loops = "avx2" if level != "baseline" and "avx2" in _dropout.targets() else "baseline"
    assert cfg["loops"] == f"dropout {loops}, optimizers {loops}"

    # the same numbers as the float64 oracle ...
    X, G, W, b = res["X"], res["G"], res["W"], res["b"]
    ref = reference.Layer_Dense(19, 45, weight_regularizer_l1=1e-3,
                                          bias_regularizer_l2=1e-3)
    ref.set_parameters(W, b)
    ref.forward(X)
    ref.backward(G)
    assert_within(res["output"], ref.output,
                  dot_bound(X, W, 19, extra=np.broadcast_to(np.abs(f64(b)), ref.output.shape)))
    assert_within(res["dweights"], ref.dweights, dot_bound(f64(X).T, G, 257, extra=1e-3))
    assert_within(res["dbiases"], ref.dbiases, dot_bound(np.ones((1, 257)), G, 257,
                                                         extra=np.abs(2e-3 * f64(b))))
    assert_within(res["dinputs"], ref.dinputs, dot_bound(G, f64(W).T, 45))
    # ... and bit for bit those of that level's module called directly in this process
    k = kernel_module(level)
    np.testing.assert_array_equal(k.dense_forward(X, W, b, False, nnfs_fast.get_num_threads()),
                                  res["output"])


def test_empty_env_var_means_the_best_level(tmp_path):
    proc = run_python("import json; from nnfs_fast.runtime.config import config; "
                      "print(json.dumps(config()))", env={_dispatch.ENV_VAR: ""})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kernel_level"] == LEVELS[-1]


def book_regularization_gradient(param, l1, l2):
    """The book's float32 steps for a parameter's regularization gradient, after a zero
    upstream gradient: d = 0; d += l1 * dL1; d += 2 * l2 * param."""
    d = np.zeros_like(param)
    dL1 = np.ones_like(param)
    dL1[param < 0] = -1
    d += l1 * dL1
    d += 2 * l2 * param
    return d


@pytest.mark.parametrize("level", LEVELS)
def test_element_wise_steps_are_the_books_on_every_level(level):
    """setup.py's -ffp-contract=off: l1*sign(w) + 2*l2*w is rounded after the product, as
    NumPy does, on every level; gcc fused it into an FMA in the AVX2/AVX-512 (and arm64)
    builds, which changed the last bit of a quarter of the elements."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((8, 64)).astype(np.float32)
    W = rng.standard_normal((64, 48)).astype(np.float32)
    b = rng.standard_normal((1, 48)).astype(np.float32)
    G = np.zeros((8, 48), np.float32)   # X^T G = 0: dweights is the regularization alone
    l1, l2 = 3e-4, 7e-4
    dW, db, _, _ = kernel_module(level).dense_backward(
        X, W, b, G, weight_l1=l1, weight_l2=l2, bias_l1=l1, bias_l2=l2,
        n_threads=nnfs_fast.get_num_threads())
    np.testing.assert_array_equal(dW, book_regularization_gradient(W, l1, l2))
    np.testing.assert_array_equal(db, book_regularization_gradient(b, l1, l2))


@pytest.mark.parametrize("level", ["avx1024", "AVX2", "sse9", "native"])
def test_unknown_level_raises_a_clear_import_error(level):
    proc = run_python("import nnfs_fast", env={_dispatch.ENV_VAR: level})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(("ImportError", "nnfs_fast.runtime.dispatch.UnusableLevelError")), \
        proc.stderr
    assert f"{_dispatch.ENV_VAR}={level!r}" in last
    assert "not usable" in last and all(lvl in last for lvl in LEVELS)


def test_isa_error_is_not_reported_as_a_broken_build():
    proc = run_python("import nnfs_fast", env={_dispatch.ENV_VAR: "avx1024"})
    last = proc.stderr.strip().splitlines()[-1]
    assert "NNFS_FAST_ISA='avx1024'" in last
    assert "pip install" not in last and "rebuild" not in last


@pytest.mark.parametrize("level", [lvl for lvl in _dispatch.built_levels() if lvl not in LEVELS]
                         or [pytest.param(None, marks=pytest.mark.skip(
                             "every built level runs on this CPU"))])
def test_built_but_unusable_level_raises(level):
    proc = run_python("import nnfs_fast", env={_dispatch.ENV_VAR: level})
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    # UnusableLevelError is an ImportError (an `except ImportError` catches it)
    assert last.startswith(("ImportError", "nnfs_fast.runtime.dispatch.UnusableLevelError")), \
        proc.stderr
    assert "not usable" in last


def test_load_refuses_a_level_the_cpu_lacks(monkeypatch):
    """The same check in process, with the CPU made to support the baseline only."""
    monkeypatch.setattr(_cpu, "supported_levels", lambda: ["baseline"])
    assert _dispatch.usable_levels() == ["baseline"]
    assert _dispatch.load().__name__ == "nnfs_fast.kernels.gemm.dense_baseline"
    for level in ("avx2", "avx512"):
        with pytest.raises(ImportError, match=rf"{_dispatch.ENV_VAR}='{level}'.*not usable.*"
                                              r"\['baseline'\]"):
            _dispatch.load(level)


@pytest.mark.parametrize("flags, release, expected", [
    ({"f": 1, "dq": 1, "bw": 1, "vl": 1}, "21.3.0", True),
    ({"f": 1, "dq": 1, "bw": 1, "vl": 1}, "23.6.0", True),
    ({"f": 1, "dq": 1, "bw": 1, "vl": 1}, "21.2.0", False),   # mask registers not safe
    ({"f": 1, "dq": 1, "bw": 1, "vl": 0}, "22.1.0", False),   # a subset the kernels use
    ({"f": 0, "dq": 0, "bw": 0, "vl": 0}, "22.1.0", False),   # an AVX2-only Mac
    ({}, "22.1.0", False),                                    # no such sysctl
    ({"f": 1, "dq": 1, "bw": 1, "vl": 1}, "weird", False),
])
def test_intel_macs_ask_the_kernel_for_avx512(flags, release, expected):
    """macOS enables the AVX-512 state lazily (XCR0 reads as off until first use), so there
    the avx512 level is decided by sysctl hw.optional.avx512{f,dq,bw,vl} and the Darwin
    version."""
    def flag(name):
        return flags.get(name.rsplit("avx512", 1)[-1], -1)
    assert _cpu.macos_avx512(flag, release) is expected
    assert _cpu.sysctl_flag("hw.optional.avx512f") in ((-1,) if platform.system() != "Darwin"
                                                        else (-1, 0, 1))


def test_levels_are_ordered_and_include_the_baseline():
    assert LEVELS[0] == "baseline"
    order = list(_dispatch.LEVELS)
    assert [order.index(lvl) for lvl in LEVELS] == sorted(order.index(lvl) for lvl in LEVELS)
    assert set(LEVELS) <= set(_dispatch.built_levels()) <= set(order)
    assert set(LEVELS) <= set(_cpu.supported_levels())


def test_show_config_prints_the_build_facts(capsys):
    nnfs_fast.show_config()
    printed = capsys.readouterr().out
    lines = dict(line.split(":", 1) for line in printed.splitlines())
    lines = {k.strip(): v.strip() for k, v in lines.items()}
    for key in ("nnfs_fast", "compiler", "openmp", "threads", "kernel_level", "kernel_isa"):
        assert key in lines, f"show_config() does not print {key!r}:\n{printed}"
    assert lines["nnfs_fast"] == nnfs_fast.__version__
    assert lines["openmp"] == str(nnfs_fast.openmp_enabled())
    assert lines["threads"] == str(nnfs_fast.get_num_threads())
    expected_level = os.environ.get(_dispatch.ENV_VAR) or LEVELS[-1]
    assert lines["kernel_level"] == expected_level == _dispatch.LEVEL
    assert lines["kernel_isa"] == kernel_module(expected_level).ISA
    assert lines["compiler"] == compiler_name(kernel_module(expected_level).COMPILER)

    buf = io.StringIO()
    nnfs_fast.show_config(file=buf)
    assert buf.getvalue() == printed
    assert config()["threads"] == nnfs_fast.get_num_threads()


@pytest.mark.parametrize("raw, name", [
    ("clang 14.0.6 ", "clang 14.0.6"),              # __clang_version__ ends in a space
    ("clang 15.0.0 (clang-1500.1.0.2.5)", "clang 15.0.0 (clang-1500.1.0.2.5)"),  # Apple
    ("gcc 12.2.0", "gcc 12.2.0"),
    ("msvc 194134120", "msvc 194134120"),
])
def test_compiler_name_is_one_clean_line(raw, name):
    assert compiler_name(raw) == name
    assert config()["compiler"] == compiler_name(config()["compiler"])
