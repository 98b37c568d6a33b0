"""Layer_Dense as the book's users know it (README.md): constructor,
attributes, RNG draws, forward/backward against the float64 oracle and finite differences,
parameter access, conversions, errors, repr, and the book's chapter-3 figure."""
import inspect
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_within, dot_bound, f64, run_python
from nnfs_fast import Layer_Dense
from nnfs_fast import reference as R

REGS = ("weight_regularizer_l1", "weight_regularizer_l2", "bias_regularizer_l1",
        "bias_regularizer_l2")


def reference_for(layer):
    """The float64 oracle with the same parameters and regularizers as ``layer``."""
    ref = R.Layer_Dense(*np.shape(layer.weights), **{k: getattr(layer, k) for k in REGS})
    ref.set_parameters(f64(layer.weights), f64(layer.biases))
    return ref


def check_against_reference(layer, X, G):
    """forward(X) and backward(G) of ``layer`` against the oracle, within float32 round-off."""
    ref = reference_for(layer)
    layer.forward(X)
    ref.forward(X)
    n_in, n_out = ref.weights.shape
    Xr = ref.inputs
    assert_within(layer.output, ref.output,
                  dot_bound(Xr, ref.weights, n_in, extra=np.broadcast_to(ref.biases,
                                                                         ref.output.shape)),
                  "output")
    layer.backward(G)
    ref.backward(G)
    Gr = f64(G)
    pen_w = ref.dweights - Xr.T @ Gr
    pen_b = ref.dbiases - Gr.sum(axis=0, keepdims=True)
    m = Xr.shape[0]
    assert_within(layer.dweights, ref.dweights, dot_bound(Xr.T, Gr, m, extra=pen_w), "dweights")
    assert_within(layer.dbiases, ref.dbiases, dot_bound(np.ones((1, m)), Gr, m, extra=pen_b),
                  "dbiases")
    assert_within(layer.dinputs, ref.dinputs, dot_bound(Gr, ref.weights.T, n_out), "dinputs")


# ----------------------------------------------------------------------------- construction

def test_signature_is_the_books():
    params = inspect.signature(Layer_Dense.__init__).parameters
    assert list(params) == ["self", "n_inputs", "n_neurons", *REGS]
    assert all(params[k].default == 0 for k in REGS)
    assert list(inspect.signature(Layer_Dense.forward).parameters)[:3] == [
        "self", "inputs", "training"]
    assert list(inspect.signature(Layer_Dense.backward).parameters) == ["self", "dvalues"]
    assert list(inspect.signature(Layer_Dense.set_parameters).parameters) == [
        "self", "weights", "biases"]


def test_weights_are_the_books_draw_from_the_global_legacy_rng():
    np.random.seed(0)
    layer = Layer_Dense(4, 5)
    second = Layer_Dense(3, 2)
    state_after = np.random.get_state()
    np.random.seed(0)
    expected = np.float32(0.01) * np.random.randn(4, 5).astype(np.float32)
    expected_second = np.float32(0.01) * np.random.randn(3, 2).astype(np.float32)
    np.testing.assert_array_equal(layer.weights, expected)
    np.testing.assert_array_equal(second.weights, expected_second)
    for got, want in zip(np.random.get_state(), state_after):   # same draws consumed
        np.testing.assert_array_equal(got, want)
    assert layer.weights.dtype == np.float32 and layer.weights.shape == (4, 5)
    assert layer.weights.flags.c_contiguous


def test_biases_and_regularizers():
    layer = Layer_Dense(3, 7, weight_regularizer_l2=5e-4, bias_regularizer_l1=1e-3)
    assert layer.biases.shape == (1, 7) and layer.biases.dtype == np.float32
    assert not layer.biases.any()
    assert layer.weight_regularizer_l1 == 0 and layer.bias_regularizer_l2 == 0
    assert layer.weight_regularizer_l2 == 5e-4 and layer.bias_regularizer_l1 == 1e-3
    assert type(layer.weight_regularizer_l2) is float   # stored as given


def test_repr():
    assert repr(Layer_Dense(2, 64)) == "Layer_Dense(n_inputs=2, n_neurons=64)"
    assert repr(Layer_Dense(2, 64, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)) == (
        "Layer_Dense(n_inputs=2, n_neurons=64, weight_regularizer_l2=0.0005, "
        "bias_regularizer_l2=0.0005)")


# ----------------------------------------------------------------------------- forward/backward

@pytest.mark.parametrize("regs", [{}, dict(weight_regularizer_l1=5e-4, weight_regularizer_l2=5e-4,
                                           bias_regularizer_l1=2e-3, bias_regularizer_l2=1e-3)])
@pytest.mark.parametrize("shape", [(1, 2, 3), (300, 2, 64), (300, 64, 3), (97, 13, 29),
                                   (0, 4, 5), (6, 33, 1)])
def test_forward_backward_match_the_oracle(rng, shape, regs):
    m, n_in, n_out = shape
    layer = Layer_Dense(n_in, n_out, **regs)
    layer.weights = (0.3 * rng.standard_normal((n_in, n_out))).astype(np.float32)
    layer.weights[0, 0] = 0.0                           # L1 sign at 0 is +1
    layer.biases = rng.standard_normal((1, n_out)).astype(np.float32)
    X = rng.standard_normal((m, n_in)).astype(np.float32)
    G = rng.standard_normal((m, n_out)).astype(np.float32)
    check_against_reference(layer, X, G)
    assert layer.output.shape == (m, n_out) and layer.output.dtype == np.float32
    assert layer.dweights.shape == (n_in, n_out) and layer.dweights.dtype == np.float32
    assert layer.dbiases.shape == (1, n_out) and layer.dbiases.dtype == np.float32
    assert layer.dinputs.shape == (m, n_in) and layer.dinputs.dtype == np.float32


def test_forward_keeps_the_argument_and_both_call_forms(rng):
    layer = Layer_Dense(3, 4)
    X = rng.standard_normal((5, 3)).astype(np.float32)
    layer.forward(X)
    assert layer.inputs is X
    first = layer.output
    for call in (lambda: layer.forward(X, True), lambda: layer.forward(X, training=False),
                 lambda: layer.forward(X, False)):
        call()
        np.testing.assert_array_equal(layer.output, first)
    as_list = X.tolist()
    layer.forward(as_list)
    assert layer.inputs is as_list
    np.testing.assert_array_equal(layer.output, first)


def test_each_forward_returns_a_new_output_array(rng):
    """The book rebinds ``self.output`` on every forward; code that keeps an earlier output
    (Model.predict appends batch outputs to a list) must not see it overwritten."""
    layer = Layer_Dense(3, 4)
    X1, X2 = (rng.standard_normal((6, 3)).astype(np.float32) for _ in range(2))
    layer.forward(X1)
    out1, saved = layer.output, layer.output.copy()
    layer.forward(X2)
    assert layer.output is not out1
    np.testing.assert_array_equal(out1, saved)
    layer.backward(np.ones((6, 4), np.float32))
    dw1, dx1 = layer.dweights, layer.dinputs
    dw_saved, dx_saved = dw1.copy(), dx1.copy()
    layer.backward(2 * np.ones((6, 4), np.float32))
    np.testing.assert_array_equal(dw1, dw_saved)
    np.testing.assert_array_equal(dx1, dx_saved)


@pytest.mark.parametrize("convert, exact", [
    (lambda X: X.astype(np.float64), True), (lambda X: X.tolist(), True),
    (lambda X: X.astype(">f4"), True), (lambda X: np.asfortranarray(X), False),
    (lambda X: np.repeat(X, 3, axis=1)[:, ::3], False), (lambda X: X[::-1][::-1], True),
    (lambda X: np.ascontiguousarray(X[::-1, ::-1]).copy()[::-1, ::-1], False)],
    ids=["float64", "list", "big-endian", "F", "sliced", "reversed-twice", "negative-strides"])
@pytest.mark.parametrize("n_out", [7, 40])
def test_any_real_input_gives_the_float32_result(rng, convert, exact, n_out):
    """Converted inputs give exactly the float32 result; other layouts may take another
    summation path (the narrow-output kernels depend on X's strides): within round-off."""
    layer = Layer_Dense(20, n_out)
    layer.biases = rng.standard_normal((1, n_out)).astype(np.float32)
    X = rng.standard_normal((40, 20)).astype(np.float32)
    G = rng.standard_normal((40, n_out)).astype(np.float32)
    layer.forward(X)
    layer.backward(G)
    expected = layer.output, layer.dweights, layer.dbiases, layer.dinputs
    layer.forward(convert(X))
    layer.backward(convert(G))
    got = layer.output, layer.dweights, layer.dbiases, layer.dinputs
    if exact:
        for a, c in zip(got, expected):
            np.testing.assert_array_equal(a, c)
    else:
        check_against_reference(layer, convert(X), convert(G))


@pytest.mark.parametrize("kind", [
    "F", "sliced", "negative", "readonly", "big-endian", "float64-F",
    "unaligned"])
def test_user_assigned_weights_of_any_layout_work(rng, kind):
    """Weights assigned by the user (or a loader) in any float layout are used or converted."""
    W = (0.3 * rng.standard_normal((6, 9))).astype(np.float32)
    if kind == "F":
        Wl = np.asfortranarray(W)
    elif kind == "sliced":
        Wl = np.repeat(W, 2, axis=1)[:, ::2]
    elif kind == "negative":
        Wl = W[::-1, ::-1].copy()[::-1, ::-1]
    elif kind == "readonly":
        Wl = W.copy()
        Wl.flags.writeable = False
    elif kind == "big-endian":
        Wl = W.astype(">f4")
    elif kind == "float64-F":
        Wl = np.asfortranarray(W, dtype=np.float64)
    else:
        raw = np.zeros(W.size * 4 + 1, dtype=np.uint8)
        Wl = np.ndarray(W.shape, dtype=np.float32, buffer=raw, offset=1)
        Wl[...] = W
    layer = Layer_Dense(6, 9, weight_regularizer_l2=1e-3)
    layer.weights = Wl
    check_against_reference(layer, rng.standard_normal((11, 6)), rng.standard_normal((11, 9)))
    np.testing.assert_array_equal(layer.weights, W)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint8, np.float16, bool])
def test_integer_and_other_inputs_are_converted(rng, dtype):
    layer = Layer_Dense(4, 3)
    X = rng.integers(0, 2 if dtype is bool else 100, (9, 4)).astype(dtype)
    layer.forward(X)
    assert layer.output.dtype == np.float32
    layer2 = Layer_Dense(4, 3)
    layer2.set_parameters(layer.weights, layer.biases)
    layer2.forward(X.astype(np.float32))
    np.testing.assert_array_equal(layer.output, layer2.output)


def test_wrong_feature_count_names_inputs_and_shapes():
    layer = Layer_Dense(2, 3)
    with pytest.raises(ValueError, match=r"inputs.*2.*\(5, 3\)"):
        layer.forward(np.ones((5, 3), np.float32))
    layer.forward(np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match=r"dvalues.*\(5, 4\)"):
        layer.backward(np.ones((5, 4), np.float32))
    with pytest.raises(ValueError, match=r"dvalues.*\(4, 3\)"):
        layer.backward(np.ones((4, 3), np.float32))


def test_non_numeric_inputs_are_rejected():
    layer = Layer_Dense(2, 3)
    with pytest.raises((TypeError, ValueError), match="inputs"):
        layer.forward(np.array([["a", "b"]]))


# ----------------------------------------------------------------------------- parameters

def test_get_parameters_returns_the_live_arrays():
    layer = Layer_Dense(3, 2)
    weights, biases = layer.get_parameters()
    assert weights is layer.weights and biases is layer.biases


def test_set_parameters_assigns_without_copy(rng):
    layer = Layer_Dense(3, 2)
    W = rng.standard_normal((3, 2)).astype(np.float32)
    b = rng.standard_normal((1, 2)).astype(np.float32)
    layer.set_parameters(W, b)
    assert layer.weights is W and layer.biases is b
    X = rng.standard_normal((4, 3)).astype(np.float32)
    layer.forward(X)
    assert layer.weights is W and layer.biases is b     # float32 parameters are used in place
    assert_within(layer.output, f64(X) @ f64(W) + b, dot_bound(X, W, 3, extra=np.abs(b)))


def test_user_assigned_float64_parameters_work(rng):
    """Chapter scripts and loaders assign float64 arrays (or a 1-D bias row): converted."""
    layer = Layer_Dense(6, 4, weight_regularizer_l2=1e-2)
    W64 = rng.standard_normal((6, 4))
    b64 = rng.standard_normal(4)
    layer.weights, layer.biases = W64, b64
    X = rng.standard_normal((10, 6))
    G = rng.standard_normal((10, 4))
    layer.forward(X)
    W32, b32 = W64.astype(np.float32), b64.astype(np.float32).reshape(1, 4)
    assert_within(layer.output, f64(X.astype(np.float32)) @ f64(W32) + b32,
                  dot_bound(X, W64, 6, extra=np.broadcast_to(np.abs(b64), (10, 4))), "output")
    layer.backward(G)
    assert layer.dweights.dtype == np.float32 and layer.dbiases.shape == (1, 4)
    np.testing.assert_allclose(layer.dweights, X.T @ G + 2e-2 * W64, rtol=1e-5, atol=1e-5)


def test_in_place_optimizer_updates_are_seen(rng):
    """Optimizers do ``layer.weights += -lr * layer.dweights`` (and keep state on the layer):
    the next forward must use the updated values, on the same array."""
    layer = Layer_Dense(5, 3)
    W = layer.weights
    X = rng.standard_normal((8, 5)).astype(np.float32)
    G = rng.standard_normal((8, 3)).astype(np.float32)
    for _ in range(3):
        layer.forward(X)
        layer.backward(G)
        layer.weight_momentums = np.zeros_like(layer.weights)
        layer.weights += -0.5 * layer.dweights
        layer.biases += -0.5 * layer.dbiases
    assert layer.weights is W
    layer.forward(X)
    expected = f64(X) @ f64(layer.weights) + f64(layer.biases)
    assert_within(layer.output, expected, dot_bound(X, layer.weights, 5,
                                                    extra=np.abs(f64(layer.biases))))


# ----------------------------------------------------------------------------- gradients

def test_backward_is_the_gradient_by_finite_differences(rng):
    """float64 central differences of L = sum(output * R) + the regularization penalty."""
    regs = dict(weight_regularizer_l1=3e-2, weight_regularizer_l2=5e-2,
                bias_regularizer_l1=2e-2, bias_regularizer_l2=4e-2)
    layer = Layer_Dense(4, 3, **regs)

    def away_from_zero(shape):
        x = rng.standard_normal(shape)
        return np.where(np.abs(x) < 0.05, np.copysign(0.05, x), x).astype(np.float32)
    layer.weights, layer.biases = away_from_zero((4, 3)), away_from_zero((1, 3))
    X = rng.standard_normal((6, 4)).astype(np.float32)
    Rw = rng.standard_normal((6, 3)).astype(np.float32)
    layer.forward(X)
    layer.backward(Rw)

    def loss(W, b, Xv):
        out = Xv @ W + b
        return (np.sum(out * Rw) + regs["weight_regularizer_l1"] * np.abs(W).sum()
                + regs["weight_regularizer_l2"] * (W * W).sum()
                + regs["bias_regularizer_l1"] * np.abs(b).sum()
                + regs["bias_regularizer_l2"] * (b * b).sum())

    params = [f64(layer.weights), f64(layer.biases), f64(X)]
    h = 1e-3
    for index, got in enumerate((layer.dweights, layer.dbiases, layer.dinputs)):
        numeric = np.zeros_like(params[index])
        for i in np.ndindex(numeric.shape):
            plus = [p.copy() for p in params]
            minus = [p.copy() for p in params]
            plus[index][i] += h
            minus[index][i] -= h
            numeric[i] = (loss(*plus) - loss(*minus)) / (2 * h)
        np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-5,
                                   err_msg=["dweights", "dbiases", "dinputs"][index])


def test_fused_relu_pair_matches_dense_then_relu(rng):
    """``_forward(inputs, relu=True)`` / ``_backward(dvalues, relu_output, dvalues_masked)``
    (the fused Dense -> ReLU used by Model) equal the oracle's Dense then ReLU."""
    layer = Layer_Dense(9, 40, weight_regularizer_l2=1e-3)
    layer.biases = rng.standard_normal((1, 40)).astype(np.float32) * 0.01
    X = rng.standard_normal((50, 9)).astype(np.float32)
    G = rng.standard_normal((50, 40)).astype(np.float32)
    ref, relu = reference_for(layer), R.Activation_ReLU()
    layer.inputs = X
    out = layer._forward(X, True)
    ref.forward(X)
    relu.forward(ref.output)
    assert_within(out, relu.output, dot_bound(X, layer.weights, 9,
                                              extra=np.abs(np.broadcast_to(layer.biases,
                                                                           out.shape))))
    masked = np.empty_like(out)
    layer._backward(G, out, masked)
    relu.backward(G)
    ref.backward(relu.dinputs)
    np.testing.assert_array_equal(masked, np.where(out > 0, G, 0))
    Gm = f64(masked)
    pen = ref.dweights - f64(X).T @ Gm
    assert_within(layer.dweights, ref.dweights, dot_bound(f64(X).T, Gm, 50, extra=pen))
    assert_within(layer.dbiases, ref.dbiases, dot_bound(np.ones((1, 50)), Gm, 50))
    assert_within(layer.dinputs, ref.dinputs, dot_bound(Gm, f64(layer.weights).T, 40))


@given(m=st.integers(0, 70), n_in=st.integers(1, 40), n_out=st.integers(1, 70),
       l1=st.sampled_from([0, 1e-3]), l2=st.sampled_from([0, 5e-4]),
       dtype=st.sampled_from([np.float32, np.float64, np.int16]), order=st.sampled_from("CF"),
       seed=st.integers(0, 2**32 - 1))
def test_layer_hypothesis(m, n_in, n_out, l1, l2, dtype, order, seed):
    rng = np.random.default_rng(seed)
    layer = Layer_Dense(n_in, n_out, l1, l2, l1, l2)
    layer.weights = rng.standard_normal((n_in, n_out)).astype(np.float32)
    layer.biases = rng.standard_normal((1, n_out)).astype(np.float32)
    X = np.asarray(rng.standard_normal((m, n_in)) * 10, dtype=dtype, order=order)
    G = np.asarray(rng.standard_normal((m, n_out)), order=order)
    check_against_reference(layer, X, G)


# ----------------------------------------------------------------------------- the book's Ch3

CH3_FIGURE = """
[[ 0.0000000e+00  0.0000000e+00  0.0000000e+00]
 [-1.0475188e-04  1.1395361e-04 -4.7983500e-05]
 [-2.7414842e-04  3.1729150e-04 -8.6921798e-05]
 [-4.2188365e-04  5.2666257e-04 -5.5912682e-05]
 [-5.7707680e-04  7.1401405e-04 -8.9430439e-05]]
"""

CH3_SCRIPT = """
import sys
import numpy as np
import nnfs
nnfs.init()
from nnfs.datasets import spiral_data
from nnfs_fast import Layer_Dense

X, y = spiral_data(samples=100, classes=3)
dense1 = Layer_Dense(2, 3)
dense1.forward(X)
print(dense1.output[:5])
np.save(sys.argv[1] + "/out.npy", dense1.output)
np.save(sys.argv[1] + "/X.npy", X)
np.save(sys.argv[1] + "/W.npy", dense1.weights)
"""


def parse_printed(text):
    return np.array(text.replace("[", " ").replace("]", " ").split(), dtype=np.float32)


def test_chapter3_script_prints_the_books_figure(tmp_path):
    """The chapter-3 script with ``from nnfs_fast import Layer_Dense`` (and the book's
    nnfs.init(), in its own process) prints the book's figure within 2 float32 ulp."""
    proc = run_python(CH3_SCRIPT.replace("sys.argv[1]", repr(str(tmp_path))))
    assert proc.returncode == 0, proc.stderr
    figure = parse_printed(CH3_FIGURE).reshape(5, 3)
    printed = parse_printed(proc.stdout).reshape(5, 3)
    out = np.load(tmp_path / "out.npy")
    assert out.dtype == np.float32 and out.shape == (300, 3)
    np.testing.assert_array_max_ulp(out[:5], figure, maxulp=2)
    np.testing.assert_array_max_ulp(printed, figure, maxulp=2)
    X, W = np.load(tmp_path / "X.npy"), np.load(tmp_path / "W.npy")
    assert_within(out, f64(X) @ f64(W), dot_bound(X, W, 2), "all 300 rows")


def test_no_numpy_patching_in_this_process():
    """The tests above run nnfs.init() only in subprocesses (it patches NumPy for good)."""
    assert "nnfs" not in sys.modules or np.dot.__module__ != "nnfs.core"
    assert np.zeros(2).dtype == np.float64
