"""Layer_Dropout and Layer_Input: the book's masks from NumPy's global legacy RNG (same draws,
same RNG state afterwards), the float32 mask/output/gradient against the float64 oracle and
the book's float64 values, eval mode without RNG use, thread counts, shapes and errors."""
import numpy as np
import pytest

import nnfs_fast
from conftest import THREAD_COUNTS
from nnfs_fast import reference
from nnfs_fast.kernels import dropout as _dropout
from nnfs_fast.layers import Layer_Dropout, Layer_Input

EPS32 = float(np.finfo(np.float32).eps)
SHAPES = [(1, 1), (7, 13), (300, 64), (3000, 64), (5,), (2, 3, 4)]


def rng_state():
    """The global legacy RNG state as comparable Python values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return kind, keys.tolist(), pos, has_gauss, cached


def random_inputs(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("rate", [0.1, 0.5, 0.0])
def test_mask_is_the_books_binomial_draw(shape, rate):
    """Same seed -> the book's draws, scaled by 1/keep; the RNG ends in the same state."""
    X = random_inputs(shape)
    keep = 1 - rate
    np.random.seed(123)
    draws = np.random.binomial(1, keep, size=shape)
    state_after = rng_state()

    np.random.seed(123)
    layer = Layer_Dropout(rate)
    layer.forward(X)                                   # the Ch15 one-argument call masks
    assert rng_state() == state_after
    assert layer.rate == keep
    book_mask = draws / keep                           # the book's float64 mask
    assert layer.binary_mask.dtype == np.float32 and layer.binary_mask.shape == shape
    np.testing.assert_array_equal(layer.binary_mask, book_mask.astype(np.float32))
    assert layer.output.dtype == np.float32 and layer.output.shape == shape
    np.testing.assert_array_equal(layer.output, X * layer.binary_mask)
    # the book's float64 output, within two float32 roundings (mask and product)
    book_output = X * book_mask
    np.testing.assert_allclose(layer.output, book_output, rtol=2 * EPS32, atol=0)


def test_matches_reference_forward_and_backward():
    X = random_inputs((50, 17))
    G = random_inputs((50, 17), seed=2)
    ours, ref = Layer_Dropout(0.2), reference.Layer_Dropout(0.2)
    for layer in (ours, ref):
        np.random.seed(7)
        layer.forward(X, True)
        layer.backward(G)
    np.testing.assert_allclose(ours.output, ref.output, rtol=2 * EPS32, atol=0)
    np.testing.assert_allclose(ours.binary_mask, ref.binary_mask, rtol=EPS32, atol=0)
    np.testing.assert_allclose(ours.dinputs, ref.dinputs, rtol=2 * EPS32, atol=0)
    assert ours.dinputs.dtype == np.float32
    np.testing.assert_array_equal(ours.dinputs, G * ours.binary_mask)


def test_sequence_of_forwards_follows_the_rng_stream():
    """Two training passes draw two consecutive masks, as the book's epochs do."""
    X = random_inputs((30, 8))
    np.random.seed(0)
    expected = [np.random.binomial(1, 0.9, size=X.shape) for _ in range(2)]
    np.random.seed(0)
    layer = Layer_Dropout(0.1)
    for draws in expected:
        layer.forward(X, training=True)
        np.testing.assert_array_equal(layer.binary_mask > 0, draws == 1)


@pytest.mark.parametrize("training", [False, 0, None])
def test_eval_mode_copies_and_draws_nothing(training):
    X = random_inputs((20, 6))
    layer = Layer_Dropout(0.3)
    np.random.seed(5)
    before = rng_state()
    layer.forward(X, training)
    assert rng_state() == before
    assert not hasattr(layer, "binary_mask")
    assert layer.inputs is X
    assert layer.output is not X and layer.output.dtype == np.float32
    np.testing.assert_array_equal(layer.output, X)


def test_eval_mode_converts_other_dtypes_once():
    X = random_inputs((4, 3)).astype(np.float64)
    layer = Layer_Dropout(0.3)
    layer.forward(X, training=False)
    assert layer.output.dtype == np.float32 and layer.inputs is X
    np.testing.assert_array_equal(layer.output, X.astype(np.float32))


@pytest.mark.parametrize("kind", ["float64", "F-order", "sliced", "list"])
def test_inputs_of_any_dtype_and_layout(kind):
    X = random_inputs((9, 5))
    given = {"float64": X.astype(np.float64), "F-order": np.asfortranarray(X),
             "sliced": np.repeat(X, 2, axis=1)[:, ::2], "list": X.tolist()}[kind]
    ours = Layer_Dropout(0.4)
    np.random.seed(11)
    ours.forward(given)
    np.random.seed(11)
    draws = np.random.binomial(1, 0.6, size=X.shape)
    assert ours.inputs is given
    np.testing.assert_array_equal(ours.output, X * (draws / 0.6).astype(np.float32))


def test_thread_counts_give_identical_results(restore_threads):
    X = random_inputs((300, 512))
    G = random_inputs((300, 512), seed=3)
    results = []
    for n in THREAD_COUNTS:
        nnfs_fast.set_num_threads(n)
        np.random.seed(9)
        layer = Layer_Dropout(0.1)
        layer.forward(X, True)
        layer.backward(G)
        results.append((layer.binary_mask, layer.output, layer.dinputs))
    for n, got in zip(THREAD_COUNTS[1:], results[1:]):
        for a, b in zip(got, results[0]):
            np.testing.assert_array_equal(a, b, err_msg=f"{n} threads vs 1")


@pytest.mark.parametrize("n", [1, 15, 32767, 32768, 32769, 100003])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 4])
def test_thread_blocks_cover_exactly_the_array(n, n_threads):
    """Every element written, by any thread count, for draws of any integer dtype (read in
    place); the outputs are new arrays of the inputs' shape. (That no block writes past its end
    is checked on the optimizers, which share the block splitting and update in place.)"""
    X = np.full(n, 3, np.float32)
    draws = np.arange(n, dtype=np.int64) % 2
    for dtype in (np.int64, np.int32, np.uint8, np.int16, np.uint64):
        mask, out = _dropout.dropout_forward(draws.astype(dtype), X, 0.5, n_threads)
        dinputs = _dropout.dropout_backward(np.ones(n, np.float32), mask, n_threads)
        for a in (mask, out, dinputs):
            assert a.shape == (n,) and a.dtype == np.float32 and a.flags.c_contiguous
        np.testing.assert_array_equal(mask, 2.0 * draws)
        np.testing.assert_array_equal(out, 6.0 * draws)
        np.testing.assert_array_equal(dinputs, 2.0 * draws)


def test_backward_with_a_float64_mask_from_the_book():
    """A binary_mask restored from a book pickle (float64) is converted once and used."""
    layer = Layer_Dropout(0.5)
    layer.binary_mask = np.array([[2.0, 0.0], [0.0, 2.0]])
    layer.backward(np.ones((2, 2)))
    assert layer.binary_mask.dtype == np.float32
    np.testing.assert_array_equal(layer.dinputs, [[2, 0], [0, 2]])


def test_repr_and_rate_attribute():
    layer = Layer_Dropout(0.1)
    assert repr(layer) == "Layer_Dropout(rate=0.1)"
    assert layer.rate == 1 - 0.1                        # the keep probability (book's quirk)
    assert repr(Layer_Dropout(0)) == "Layer_Dropout(rate=0)"


@pytest.mark.parametrize("rate", [1, 1.0, -0.1, float("nan"), 2])
def test_rate_range_error(rate):
    with pytest.raises(ValueError, match=r"Layer_Dropout: rate \(the fraction to drop\) must "
                                         r"be in \[0, 1\)"):
        Layer_Dropout(rate)


@pytest.mark.parametrize("rate", ["0.1", None, True])
def test_rate_type_error(rate):
    with pytest.raises(TypeError, match="Layer_Dropout: rate .* must be a real number"):
        Layer_Dropout(rate)


@pytest.mark.parametrize("keep", [1.5, float("nan"), 0, 0.0, -0.5, float("inf")])
def test_an_invalid_rate_attribute_is_refused_before_drawing(keep):
    """``rate`` holds the keep probability (the book's name); one set to a value outside
    (0, 1] after construction is refused before anything is drawn or stored."""
    X = random_inputs((4, 3))
    layer = Layer_Dropout(0.1)
    layer.rate = keep
    np.random.seed(4)
    before = rng_state()
    with pytest.raises(ValueError, match=r"Layer_Dropout: rate \(the keep probability 1 - "
                                         r"dropout rate, as the book stores it\) must be in "
                                         r"\(0, 1\], got "):
        layer.forward(X)
    assert rng_state() == before
    assert not hasattr(layer, "inputs") and not hasattr(layer, "binary_mask")
    layer.forward(X, training=False)                  # nothing drawn: the rate is not used
    np.testing.assert_array_equal(layer.output, X)


@pytest.mark.parametrize("keep", ["0.9", None, True, np.array([0.9])])
def test_a_rate_attribute_of_another_type_is_refused_before_drawing(keep):
    layer = Layer_Dropout(0.1)
    layer.rate = keep
    np.random.seed(4)
    before = rng_state()
    with pytest.raises(TypeError, match=r"Layer_Dropout: rate \(the keep probability .*\) "
                                        r"must be a real number in \(0, 1\], got "):
        layer.forward(random_inputs((4, 3)), True)
    assert rng_state() == before


@pytest.mark.parametrize("rate", [np.float32(0.1), np.float64(0.25), 0, np.int64(0)])
def test_rates_of_numpy_types_draw_as_the_book(rate):
    """keep = 1 - rate keeps its type (np.float32(0.9) is 0.8999999761581421 for NumPy too)."""
    X = random_inputs((40, 9))
    layer = Layer_Dropout(rate)
    np.random.seed(8)
    draws = np.random.binomial(1, layer.rate, size=X.shape)
    after = rng_state()
    np.random.seed(8)
    layer.forward(X, True)
    assert rng_state() == after
    np.testing.assert_array_equal(layer.binary_mask,
                                  (draws / float(layer.rate)).astype(np.float32))


def test_backward_errors():
    layer = Layer_Dropout(0.1)
    with pytest.raises(AttributeError, match=r"no binary_mask yet; call forward\(inputs, "
                                             r"training=True\) first"):
        layer.backward(np.ones((2, 2)))
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"dvalues: expected shape \(2, 3\) \(the "
                                         r"binary_mask's\), got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="dvalues: expected real numbers"):
        layer.backward(np.array([["a"] * 3] * 2))


def test_forward_rejects_non_numbers():
    with pytest.raises(TypeError, match="inputs: expected real numbers"):
        Layer_Dropout(0.1).forward(np.array(["x", "y"]))


def test_kernels_check_arguments():
    d = np.zeros(4, dtype=np.int64)
    f4, f3 = np.zeros(4, dtype=np.float32), np.zeros(3, dtype=np.float32)
    with pytest.raises(ValueError, match=r"draws: expected an array of shape \(3,\) \(the "
                                         r"inputs'\), got \(4,\)"):
        _dropout.dropout_forward(d, f3, 0.9)
    with pytest.raises(TypeError, match="draws: expected integers, got dtype float32"):
        _dropout.dropout_forward(f4, f4, 0.9)
    with pytest.raises(ValueError, match="inputs: expected an aligned C-contiguous array"):
        _dropout.dropout_forward(d, np.zeros(8, np.float32)[::2], 0.9)
    with pytest.raises(TypeError, match="inputs: expected a native float32 array"):
        _dropout.dropout_forward(d, d, 0.9)
    for keep in (0.0, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"keep: expected a probability in \(0, 1\]"):
            _dropout.dropout_forward(d, f4, keep)
    with pytest.raises(ValueError, match=r"dvalues: expected shape \(3,\) \(the "
                                         r"binary_mask's\), got \(4,\)"):
        _dropout.dropout_backward(f4, f3)
    with pytest.raises(ValueError, match="draws: expected a C-contiguous array"):
        _dropout.dropout_forward(np.zeros(8, np.int64)[::2], f4, 0.5)
def test_layer_input_passes_the_same_object():
    X = random_inputs((3, 2))
    layer = Layer_Input()
    layer.forward(X, True)
    assert layer.output is X
    layer.forward([1, 2])                               # anything, no conversion
    assert layer.output == [1, 2]
    assert repr(layer) == "Layer_Input()"
