"""Shared test helpers: the kernel modules this CPU can run, float32-vs-float64 tolerances,
array layouts, guarded output buffers and subprocess runs.

Tolerance (README.md, Compatibility notes): a float32 result that sums K products may differ from
the float64
reference by about 1e-6 * sqrt(K) relative to the *magnitude* of the sum, sum |a_k| |b_k|
(not to the result itself, which cancellation can make arbitrarily small). ``dot_bound``
computes that bound per element.
"""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import settings
from threadpoolctl import threadpool_limits

import nnfs_fast
from nnfs_fast.runtime import dispatch as _dispatch

settings.register_profile("nnfs_fast", max_examples=30, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "nnfs_fast"))

# NumPy's BLAS computes the float64 references on one thread: its thread pool would only
# compete with the OpenMP threads under test
_BLAS_LIMIT = threadpool_limits(1, user_api="blas")

RTOL_DOT = 1e-6               # per sqrt(term) of a float32 sum, relative to its magnitude
ATOL_DOT = 1e-30              # products that underflow float32 (none expected with our data)
LEVELS = _dispatch.usable_levels()
# the tile and block sizes and the thresholds of a level are its kernel module's attributes
# (MR, NR, VL, KC, MC, NC, PAR_FLOPS, ...: kernels/gemm/isa.h, kernels/parallel.pxd): tests
# derive their shapes from them (test_dense.switch_shapes) rather than restating them
ALL_THREADS = nnfs_fast.get_num_threads()
# 1, all, and counts that split rows and panels differently (oversubscribing is correct but
# slow on a busy machine: a thread team waits for time slices, so use it sparingly)
THREAD_COUNTS = sorted({1, 2, 3, ALL_THREADS})


def kernel_module(level):
    """The dense-kernel extension of one instruction-set level."""
    return importlib.import_module(f"nnfs_fast.kernels.gemm.dense_{level}")


@pytest.fixture(params=LEVELS)
def kernels(request):
    """Each dense-kernel module this machine can run (parametrizes the test)."""
    return kernel_module(request.param)


def every_loop_target(module):
    """An autouse fixture for a test file: each test runs once per target ``module``'s loops
    are compiled for here (kernels/targets.h: baseline, and AVX2 where available), as the
    fixture ``target`` (its value the target's name); the module's default is restored after.
    Use: ``target = every_loop_target(module)``."""
    @pytest.fixture(autouse=True, params=module.targets())
    def target(request):
        default = module.target()
        module._use_target(request.param)
        yield request.param
        module._use_target(default)
    return target


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


@pytest.fixture
def restore_threads():
    """Undo set_num_threads() calls made by the test."""
    before = nnfs_fast.get_num_threads()
    yield before
    nnfs_fast.set_num_threads(before)


def f64(a):
    return np.asarray(a, dtype=np.float64)


def dot_bound(a, b, n_terms, extra=0.0):
    """Per-element error bound of the float32 product a . b (+ extra terms of the same sum).

    a (M, K), b (K, N): float64 magnitude |a| . |b|; extra: magnitudes of terms added to the
    same sum (bias, regularization), broadcast to (M, N); n_terms: terms in each sum.
    """
    magnitude = np.abs(f64(a)) @ np.abs(f64(b)) + np.abs(f64(extra))
    return RTOL_DOT * np.sqrt(max(n_terms, 1)) * magnitude + ATOL_DOT


def assert_within(actual, expected, bound, what=""):
    """|actual - expected| <= bound elementwise (NaN-aware: NaN must be expected)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.float32, f"{what}: dtype {actual.dtype}"
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected),
                                  err_msg=f"{what}: NaN positions differ")
    ok = np.isnan(expected)
    err = np.abs(f64(actual) - f64(expected))
    bad = ~(ok | (err <= bound))
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} elements outside the float32 bound; first at "
            f"{idx}: got {actual[idx]!r}, expected {expected[idx]!r}, error {err[idx]:.3e} > "
            f"bound {np.broadcast_to(bound, bad.shape)[idx]:.3e}")


def layout(a, kind, dtype=np.float32):
    """An array equal to ``a`` in one memory layout.

    C, F: contiguous orders; sliced: a strided view into a larger NaN-filled array (a kernel
    reading the wrong element sees NaN); negative: both strides negative; readonly: a
    non-writeable C copy; transposed: the transpose of a C array (F order via a view).
    """
    a = np.asarray(a, dtype=dtype)
    if kind == "C":
        return np.ascontiguousarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "sliced":
        m, n = a.shape
        big = np.full((2 * m + 1, 3 * n + 2), np.nan, dtype=dtype)
        big[1::2, 1::3][:m, :n] = a
        view = big[1::2, 1::3][:m, :n]
        assert not view.flags.c_contiguous or view.size <= 1
        return view
    if kind == "negative":
        return a[::-1, ::-1].copy()[::-1, ::-1]
    if kind == "readonly":
        c = a.copy()
        c.flags.writeable = False
        return c
    if kind == "transposed":
        return np.ascontiguousarray(a.T).T
    raise ValueError(kind)


LAYOUTS = ["C", "F", "sliced", "negative", "readonly", "transposed"]


class Guarded:
    """A C-contiguous float32 output buffer of ``shape`` pre-filled with NaN, inside a larger
    allocation whose guard zones let ``check()`` catch writes out of bounds."""

    GUARD = 64
    SENTINEL = np.float32(-7.25e33)

    def __init__(self, shape):
        n = int(np.prod(shape))
        self.raw = np.full(n + 2 * self.GUARD, self.SENTINEL, dtype=np.float32)
        self.array = self.raw[self.GUARD:self.GUARD + n].reshape(shape)
        self.array[...] = np.nan
        assert self.array.flags.c_contiguous

    def check(self, what=""):
        """Assert the guards are untouched; return the buffer."""
        g = self.GUARD
        assert (self.raw[:g] == self.SENTINEL).all(), f"{what}: write before the buffer"
        assert (self.raw[len(self.raw) - g:] == self.SENTINEL).all(), \
            f"{what}: write after the buffer"
        return self.array


def run_python(code, env=None, timeout=120):
    """Run ``code`` in a fresh interpreter (nnfs.init() and NNFS_FAST_ISA need their own
    process); return the CompletedProcess. ``env`` entries are added to os.environ; a None
    value removes the variable."""
    full_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value is None:
            full_env.pop(key, None)
        else:
            full_env[key] = value
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=timeout)
