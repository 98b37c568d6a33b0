"""Activation_ReLU/Softmax/Sigmoid/Linear against the float64 oracle (nnfs_fast.reference), the
book's float32 NumPy expressions, finite differences, and across layouts, dtypes and threads.

Tolerances (float32 kernel vs float64 reference fed the *same* float32 numbers):
* ReLU is exact (max and masking do not round); so are the book's float32 expressions that the
  kernels replay operation by operation (ReLU, sigmoid backward).
* sigmoid: exp (<= 1 ulp), 1 + e and the division (0.5 ulp each): 4 ulp = 2**-21 relative.
* softmax: x - max(x) is rounded to float32, an absolute error of |x - max| * 2**-24 in the
  exponent, i.e. a relative error of that size in exp; plus exp (1 ulp), the pairwise row sum
  (~log2(C) ulp) and the division. Bound: 2**-23 * (|x - max| + 4 + log2(C)) relative.
* softmax backward: computed in double and rounded once: 1 ulp of the result plus the float64
  rounding of the dot product (negligible) -> 2**-23 relative to |s| * (|d| + |s.d|).
Backward passes are fed the kernel's own forward output, so they test the backward formula
alone.
"""
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from threadpoolctl import threadpool_limits

import nnfs_fast
from conftest import LAYOUTS, THREAD_COUNTS, layout
from nnfs_fast import reference
from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.kernels import activations as _activations
from nnfs_fast.kernels import losses as _losses

ULP = 2.0 ** -23          # float32 spacing at 1 (2 ulp of the rounding error 2**-24)
TINY = 1e-37              # absolute floor: results below float32's normal range

# (N, C): single row/column, primes, odd widths around vector and CHUNK (4096) boundaries,
# a large batch that is not a multiple of any block, one that runs on several threads
SHAPES = [(1, 1), (1, 7), (7, 1), (2, 3), (13, 5), (31, 17), (300, 3), (128, 10), (1, 4099),
          (5003, 1), (97, 129), (1000, 100)]
CLASSES = {"ReLU": Activation_ReLU, "Softmax": Activation_Softmax,
           "Sigmoid": Activation_Sigmoid, "Linear": Activation_Linear}


def data(rng, shape, scale=3.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


def run(cls, X, D):
    """(output, dinputs) of a fresh instance of cls."""
    act = cls()
    act.forward(X)
    act.backward(D)
    return act.output, act.dinputs


def oracle(name, X, D, output):
    """The reference's (output, dinputs): forward on X, backward from our ``output``."""
    ref = getattr(reference, f"Activation_{name}")()
    ref.forward(X)
    ref_out = ref.output
    ref.output = np.asarray(output, dtype=np.float64)
    ref.backward(D)
    return ref_out, ref.dinputs


def softmax_bound(X, expected):
    X = X.astype(np.float64)
    span = X.max(axis=1, keepdims=True) - X
    return ULP * (span + 4 + np.log2(X.shape[1] + 1)) * expected + TINY


def assert_close(got, want, bound, what):
    assert got.dtype == np.float32 and got.flags.c_contiguous, what
    err = np.abs(got.astype(np.float64) - want)
    bad = ~(err <= bound)
    assert not bad.any(), (f"{what}: {bad.sum()} elements off; worst error "
                           f"{np.nanmax(err - bound):.3g} over the bound")


# ---------------------------------------------------------------------- against the oracle

@pytest.mark.parametrize("shape", SHAPES)
def test_relu_matches_reference_exactly(rng, shape):
    X, D = data(rng, shape), data(rng, shape)
    X.flat[::3] = 0  # zero counts as inactive
    out, dinputs = run(Activation_ReLU, X, D)
    ref_out, ref_din = oracle("ReLU", X, D, out)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(dinputs, ref_din)


@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_matches_reference(rng, shape):
    X, D = data(rng, shape, scale=10), data(rng, shape)
    out, dinputs = run(Activation_Sigmoid, X, D)
    ref_out, ref_din = oracle("Sigmoid", X, D, out)
    assert_close(out, ref_out, 4 * ULP * ref_out + TINY, "output")
    # d * (1 - y) * y: three float32 roundings of the same product
    assert_close(dinputs, ref_din, 2 * ULP * np.abs(ref_din) + TINY, "dinputs")


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_matches_reference(rng, shape):
    X, D = data(rng, shape, scale=5), data(rng, shape)
    out, dinputs = run(Activation_Softmax, X, D)
    ref_out, ref_din = oracle("Softmax", X, D, out)
    assert_close(out, ref_out, softmax_bound(X, ref_out), "output")
    s, d = out.astype(np.float64), D.astype(np.float64)
    magnitude = s * (np.abs(d) + np.abs(np.sum(s * d, axis=1, keepdims=True)))
    assert_close(dinputs, ref_din, ULP * magnitude + TINY, "dinputs")


def softmax_block_shapes():
    """(rows, columns) on both sides of softmax_rows' switches (kernels/rows.pxd): rows around
    one and two blocks of ROW_BLOCK, columns from 1 (narrow rows, the pairwise sum's single
    running sum below 8) up to and past PW_BLOCK (the row-by-row path)."""
    R, P = _activations.ROW_BLOCK, _activations.PW_BLOCK
    rows = [1, 2, R - 1, R, R + 1, 2 * R + 3]
    cols = [1, 2, 3, 4, 7, 8, 9, 17, P - 1, P, P + 1]
    return [(n, c) for n in rows for c in cols]


@pytest.mark.parametrize("shape", softmax_block_shapes())
def test_softmax_rows_in_blocks_equal_rows_alone(rng, shape):
    """softmax_block computes ROW_BLOCK rows at once with the lanes across rows: each row must
    come out bit for bit as when computed alone, whatever the layout (a transposing loop
    reading a wrong stride would see another row or the NaN around a sliced view), and the
    fused softmax + cross-entropy must give the same rows."""
    X = data(rng, shape, scale=5)
    X[0, 0] = np.inf if shape[1] > 1 else X[0, 0]          # a NaN row
    X[-1, -1] = -np.inf                                      # an exp of 0
    alone = np.concatenate([_activations.softmax_forward(X[i:i + 1]) for i in range(len(X))])
    for kind in LAYOUTS:
        for threads in (1, 2):
            out = _activations.softmax_forward(layout(X, kind), threads)
            np.testing.assert_array_equal(out.view(np.uint32), alone.view(np.uint32),
                                          err_msg=f"{kind}, {threads} threads")
    fused = _losses.softmax_crossentropy_forward(X, np.zeros(len(X), int))[0]
    np.testing.assert_array_equal(fused.view(np.uint32), alone.view(np.uint32))


@pytest.mark.parametrize("shape", SHAPES)
def test_linear_is_the_identity(rng, shape):
    X, D = data(rng, shape), data(rng, shape)
    act = Activation_Linear()
    act.forward(X)
    assert act.output is X and act.inputs is X
    act.backward(D)
    assert act.dinputs is not D and act.dinputs.flags.c_contiguous
    np.testing.assert_array_equal(act.dinputs, D)
    act.backward(D.astype(np.float64).T.T)  # converted once, still a float32 copy
    assert act.dinputs.dtype == np.float32


def test_book_float32_expressions_bit_for_bit(rng):
    """ReLU and sigmoid backward replay the book's float32 NumPy operations exactly."""
    X, D = data(rng, (257, 33)), data(rng, (257, 33))
    X[0, :4] = [0.0, -0.0, np.nan, -np.inf]
    relu = Activation_ReLU()
    relu.forward(X)
    relu.backward(D)
    np.testing.assert_array_equal(relu.output, np.maximum(0, X))
    book_din = D.copy()
    book_din[X <= 0] = 0
    np.testing.assert_array_equal(relu.dinputs, book_din)
    sig = Activation_Sigmoid()
    sig.forward(X)
    sig.backward(D)
    np.testing.assert_array_equal(sig.dinputs, D * (1 - sig.output) * sig.output)


# ------------------------------------------------------------------- gradients, invariants

def numerical_grad(f, X, h=1e-2):
    """Central differences of the scalar f at X (float64 steps on float32 X)."""
    grad = np.zeros(X.shape)
    for idx in np.ndindex(X.shape):
        Xp, Xm = X.copy(), X.copy()
        Xp[idx] += h
        Xm[idx] -= h
        grad[idx] = (f(Xp) - f(Xm)) / (2 * h)
    return grad


@pytest.mark.parametrize("name", ["ReLU", "Softmax", "Sigmoid", "Linear"])
def test_backward_is_the_gradient_of_forward(rng, name):
    """L(X) = sum(output * G): backward(G) must be dL/dX (finite differences, float32
    round-off over h = 1e-2 gives ~1e-5 absolute error; ReLU inputs kept away from 0)."""
    X, G = data(rng, (4, 5), scale=1.5), data(rng, (4, 5))
    X[np.abs(X) < 0.05] = 0.5
    act = CLASSES[name]()

    def loss(Z):
        act.forward(Z)
        return float(np.sum(np.asarray(act.output, np.float64) * G))

    expected = numerical_grad(loss, X)
    act.forward(X)
    act.backward(G)
    np.testing.assert_allclose(act.dinputs, expected, rtol=1e-3, atol=2e-3)


@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                  elements=st.floats(-50, 50, width=32)))
def test_softmax_and_sigmoid_properties(X):
    sm = Activation_Softmax()
    sm.forward(X)
    assert np.all(sm.output >= 0) and np.all(sm.output <= 1)
    np.testing.assert_allclose(sm.output.sum(axis=1), 1, rtol=0, atol=X.shape[1] * 2e-7)
    shifted = Activation_Softmax()
    shifted.forward(X - X.max(axis=1, keepdims=True))  # softmax is shift-invariant
    np.testing.assert_allclose(shifted.output, sm.output, rtol=1e-5, atol=1e-30)
    sig, neg = Activation_Sigmoid(), Activation_Sigmoid()
    sig.forward(X)
    neg.forward(-X)
    np.testing.assert_allclose(sig.output + neg.output, 1, atol=3e-7)  # 2 roundings
    relu = Activation_ReLU()
    relu.forward(X)
    again = Activation_ReLU()
    again.forward(relu.output)
    np.testing.assert_array_equal(again.output, relu.output)


def test_extreme_inputs_stay_finite_without_warnings():
    X = np.array([[1e4, -1e4, 0], [-1e4, -1e4, -1e4], [88.8, -100, 20]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sm, sig = Activation_Softmax(), Activation_Sigmoid()
        sm.forward(X)
        sig.forward(X)
    np.testing.assert_array_equal(sm.output[0], [1, 0, 0])
    np.testing.assert_allclose(sm.output[1], 1 / 3, rtol=1e-7)
    np.testing.assert_array_equal(sig.output[0], [1, 0, 0.5])
    assert np.isfinite(sm.output).all() and np.isfinite(sig.output).all()
    assert 0 < sig.output[2, 1] < 1e-43  # exp(-100) is a float32 subnormal, not flushed


def test_nan_and_infinity_propagate_like_numpy():
    X = np.array([[np.nan, 1, 2], [-np.inf, 0, 1]], np.float32)
    relu, sm, sig = Activation_ReLU(), Activation_Softmax(), Activation_Sigmoid()
    for act in (relu, sm, sig):
        act.forward(X)
    assert np.isnan(relu.output[0, 0]) and np.isnan(sig.output[0, 0])
    assert np.isnan(sm.output[0]).all()                 # as the book: the whole row
    assert sm.output[1, 0] == 0 and sig.output[1, 0] == 0


# ------------------------------------------------------ layouts, dtypes, threads, aliasing

@pytest.mark.parametrize("name", ["ReLU", "Softmax", "Sigmoid"])
@pytest.mark.parametrize("kind", LAYOUTS)
def test_layouts_give_identical_results(rng, name, kind):
    X, D = data(rng, (37, 11)), data(rng, (37, 11))
    want = run(CLASSES[name], X, D)
    got = run(CLASSES[name], layout(X, kind), layout(D, kind))
    for g, w in zip(got, want):
        assert g.flags.c_contiguous and g.dtype == np.float32
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("name", ["ReLU", "Softmax", "Sigmoid", "Linear"])
@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64, np.uint8])
def test_other_dtypes_are_converted_once(rng, name, dtype):
    values = data(rng, (9, 4)) * 10
    X = (np.abs(values) if dtype == np.uint8 else values).astype(dtype)
    D = data(rng, (9, 4)).astype(np.float64)
    got = run(CLASSES[name], X, D)
    want = run(CLASSES[name], X.astype(np.float32), D.astype(np.float32))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    act = CLASSES[name]()
    act.forward(X.tolist())  # lists too
    np.testing.assert_array_equal(act.output, want[0])


@pytest.mark.parametrize("name", ["ReLU", "Softmax", "Sigmoid"])
def test_thread_count_does_not_change_results(rng, restore_threads, name):
    shape = (3 * _activations.PAR_WORK // 100, 100)   # above PAR_WORK: threads used
    X, D = data(rng, shape), data(rng, shape)
    results = []
    for n in THREAD_COUNTS:
        nnfs_fast.set_num_threads(n)
        results.append(run(CLASSES[name], X, D))
        results.append(run(CLASSES[name], X, D))  # run to run
    with threadpool_limits(1, "openmp"):
        results.append(run(CLASSES[name], X, D))
    for got in results[1:]:
        for g, w in zip(got, results[0]):
            np.testing.assert_array_equal(g, w)


def test_outputs_are_new_arrays_each_call(rng):
    X1, X2 = data(rng, (5, 3)), data(rng, (5, 3))
    for cls in (Activation_ReLU, Activation_Softmax, Activation_Sigmoid):
        act = cls()
        act.forward(X1)
        first = act.output
        kept = first.copy()
        act.forward(X2)
        assert act.output is not first
        np.testing.assert_array_equal(first, kept)
        act.backward(X1)
        grad = act.dinputs
        act.backward(X2)
        assert act.dinputs is not grad


def test_forward_with_training_flag_and_predictions(rng):
    X = data(rng, (6, 4))
    for cls in CLASSES.values():
        a, b = cls(), cls()
        a.forward(X)
        b.forward(X, True)
        np.testing.assert_array_equal(a.output, b.output)
    sm = Activation_Softmax()
    sm.forward(X)
    np.testing.assert_array_equal(sm.predictions(sm.output), np.argmax(X, axis=1))
    sig = Activation_Sigmoid()
    sig.forward(X)
    pred = sig.predictions(sig.output)
    assert pred.shape == X.shape and pred.dtype.kind == "i"
    np.testing.assert_array_equal(pred, (X > 0) * 1)
    for cls in (Activation_ReLU, Activation_Linear):
        assert cls().predictions(X) is X


def test_repr():
    assert [repr(cls()) for cls in CLASSES.values()] == [
        "Activation_ReLU()", "Activation_Softmax()", "Activation_Sigmoid()",
        "Activation_Linear()"]


def test_empty_batch(rng):
    for cls in CLASSES.values():
        act = cls()
        act.forward(np.zeros((0, 3), np.float32))
        act.backward(np.zeros((0, 3), np.float32))
        assert act.output.shape == (0, 3) and act.dinputs.shape == (0, 3)


# ------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("cls", [Activation_ReLU, Activation_Softmax, Activation_Sigmoid])
def test_errors_name_the_argument(rng, cls):
    act = cls()
    with pytest.raises(AttributeError):
        act.backward(np.ones((2, 3), np.float32))  # before forward, as the book
    with pytest.raises(ValueError, match=r"inputs: expected a 2-D array .* got shape \(3,\)"):
        act.forward(np.ones(3))
    with pytest.raises(TypeError, match="inputs: expected real numbers, got dtype complex"):
        act.forward(np.ones((2, 3), complex))
    act.forward(data(rng, (2, 3)))
    with pytest.raises(ValueError, match=r"dvalues: expected 3 columns, got shape \(2, 4\)"):
        act.backward(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"dvalues: expected 2 rows, got shape \(5, 3\)"):
        act.backward(np.ones((5, 3), np.float32))


KERNELS_1 = ["relu_forward", "sigmoid_forward", "softmax_forward"]
KERNELS_2 = ["relu_backward", "sigmoid_backward", "softmax_backward"]


@pytest.mark.parametrize("kernel", KERNELS_1 + KERNELS_2)
def test_kernels_check_shapes_and_allocate_their_output(rng, kernel):
    """Called directly, a kernel refuses mismatched shapes, leaves its inputs alone and returns
    a new C-contiguous float32 output, the same for any thread count."""
    f = getattr(_activations, kernel)
    X = data(rng, (7, 5))
    args = (X,) if kernel in KERNELS_1 else (X, data(rng, (7, 5)))
    kept = [a.copy() for a in args]
    with pytest.raises(ValueError, match=r"expected a 2-D array .* got shape \(35,\)"):
        f(X.reshape(-1), *args[1:], 1)
    if len(args) == 2:
        with pytest.raises(ValueError, match=r"dvalues: expected 5 columns, got shape \(7, 4\)"):
            f(X, data(rng, (7, 4)), 1)
        with pytest.raises(ValueError, match=r"dvalues: expected 7 rows, got shape \(6, 5\)"):
            f(X, data(rng, (6, 5)), 1)
    first = f(*args, 1)
    for n_threads in (1, 4):
        out = f(*args, n_threads)
        assert out is not first and out.shape == (7, 5) and out.dtype == np.float32
        assert out.flags.c_contiguous and out.flags.writeable and out.base is None
        assert np.isfinite(out).all()
        np.testing.assert_array_equal(out, first)
    for a, k in zip(args, kept):
        np.testing.assert_array_equal(a, k)
