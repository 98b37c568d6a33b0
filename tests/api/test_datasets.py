"""nnfs_fast.datasets against the book's package: bit-identical arrays and RNG state.

``nnfs.init()`` monkey-patches NumPy for the whole process, so the book's side runs once in a
subprocess that saves its arrays (and the legacy RNG state after each call) with ``np.save``.
"""
import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import nnfs_fast
from nnfs_fast import datasets

SPIRAL_CASES = [(100, 3), (1000, 3), (1, 1), (7, 5), (2, 2)]
VERTICAL_CASES = [(100, 3), (1000, 3), (1, 1), (7, 5)]
SINE_CASES = [None, 1, 7, 10000]  # None: the default samples=1000

# Runs under nnfs.init(); writes <name>_X.npy, <name>_y.npy and <name>_state.npy (the legacy
# RNG state after the call: 624 key words, pos, has_gauss, cached gaussian as float64).
BOOK_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import nnfs
    from nnfs.datasets import spiral_data, vertical_data, sine_data

    out = sys.argv[1]
    spiral, vertical, sine = eval(sys.argv[2]), eval(sys.argv[3]), eval(sys.argv[4])

    def save(name, X, y):
        np.save(f"{out}/{name}_X.npy", X)
        np.save(f"{out}/{name}_y.npy", y)
        _, key, pos, has_gauss, gauss = np.random.get_state()
        np.save(f"{out}/{name}_state.npy",
                np.concatenate([key.astype(np.float64), [pos, has_gauss, gauss]]))

    for samples, classes in spiral:
        nnfs.init()
        save(f"spiral_{samples}_{classes}", *spiral_data(samples=samples, classes=classes))
    for samples, classes in vertical:
        nnfs.init()
        save(f"vertical_{samples}_{classes}", *vertical_data(samples=samples, classes=classes))
    for samples in sine:
        nnfs.init()
        save(f"sine_{samples}", *(sine_data() if samples is None else sine_data(samples)))

    # calls in a row (odd sizes: the polar method's cached spare normal carries over)
    nnfs.init()
    save("sequence_0", *spiral_data(7, 3))
    save("sequence_1", *vertical_data(5, 2))
    save("sequence_2", *spiral_data(3, 1))
    np.save(f"{out}/sequence_next.npy", np.random.standard_normal(3))

    # the first Dense layer of chapter 3: 0.01 * randn(2, 3) after spiral_data(100, 3)
    nnfs.init()
    spiral_data(samples=100, classes=3)
    np.save(f"{out}/dense_weights.npy", 0.01 * np.random.randn(2, 3))
""")


def rng_state():
    _, key, pos, has_gauss, gauss = np.random.get_state()
    return np.concatenate([key.astype(np.float64), [pos, has_gauss, gauss]])


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """Directory with the book package's outputs, made in one subprocess."""
    if importlib.util.find_spec("nnfs") is None:
        pytest.skip("the book's package nnfs is not installed")
    out = tmp_path_factory.mktemp("nnfs_book")
    subprocess.run([sys.executable, "-c", BOOK_SCRIPT, str(out), repr(SPIRAL_CASES),
                    repr(VERTICAL_CASES), repr(SINE_CASES)], check=True)
    return out


def load(book, name):
    return (np.load(book / f"{name}_X.npy"), np.load(book / f"{name}_y.npy"),
            np.load(book / f"{name}_state.npy"))


def assert_same(ours, theirs):
    """Bit-identical arrays: same dtype, shape, and values (incl. the sign of zeros)."""
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("samples, classes", SPIRAL_CASES)
def test_spiral_data_bit_identical_to_nnfs(book, samples, classes):
    X_book, y_book, state_book = load(book, f"spiral_{samples}_{classes}")
    datasets.init()
    X, y = datasets.spiral_data(samples=samples, classes=classes)
    assert X.dtype == np.float32 and y.dtype == np.uint8
    assert X.shape == (samples * classes, 2) and y.shape == (samples * classes,)
    assert_same(X, X_book)
    assert_same(y, y_book)
    assert np.array_equal(rng_state(), state_book)


@pytest.mark.parametrize("samples, classes", VERTICAL_CASES)
def test_vertical_data_bit_identical_to_nnfs(book, samples, classes):
    X_book, y_book, state_book = load(book, f"vertical_{samples}_{classes}")
    datasets.init()
    X, y = datasets.vertical_data(samples=samples, classes=classes)
    assert X.dtype == np.float32 and y.dtype == np.uint8
    assert_same(X, X_book)
    assert_same(y, y_book)
    assert np.array_equal(rng_state(), state_book)


@pytest.mark.parametrize("samples", SINE_CASES)
def test_sine_data_bit_identical_to_nnfs(book, samples):
    X_book, y_book, state_book = load(book, f"sine_{samples}")
    datasets.init()
    X, y = datasets.sine_data() if samples is None else datasets.sine_data(samples)
    n = 1000 if samples is None else samples
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert X.shape == (n, 1) and y.shape == (n, 1)
    assert_same(X, X_book)
    assert_same(y, y_book)
    assert np.array_equal(rng_state(), state_book)  # no RNG use


def test_calls_in_a_row_leave_the_rng_like_nnfs(book):
    datasets.init()
    calls = [lambda: datasets.spiral_data(7, 3), lambda: datasets.vertical_data(5, 2),
             lambda: datasets.spiral_data(3, 1)]
    for i, call in enumerate(calls):
        X_book, y_book, state_book = load(book, f"sequence_{i}")
        X, y = call()
        assert_same(X, X_book)
        assert_same(y, y_book)
        assert np.array_equal(rng_state(), state_book)
    assert_same(np.random.standard_normal(3), np.load(book / "sequence_next.npy"))


def test_dense_weights_after_spiral_data_match_nnfs_and_the_book(book):
    datasets.init()
    datasets.spiral_data(samples=100, classes=3)
    dense1 = nnfs_fast.Layer_Dense(2, 3)
    assert_same(dense1.weights, np.load(book / "dense_weights.npy"))
    printed = [[-0.01306527, 0.01658131, -0.00118164],  # the nnfs package's values, 8 decimals
               [-0.00680178, 0.00666383, -0.0046072]]
    np.testing.assert_allclose(dense1.weights, printed, rtol=0, atol=5e-9)


def test_spec_reference_values():
    """The values the nnfs package prints (seed 0; NumPy's 8-digit print precision)."""
    datasets.init()
    X, y = datasets.spiral_data(samples=100, classes=3)
    assert (X.shape, X.dtype, y.shape, y.dtype) == ((300, 2), np.float32, (300,), np.uint8)
    np.testing.assert_allclose(X[0:4], [[0, 0], [0.00299556, 0.00964661],
                                        [0.01288097, 0.01556285], [0.02997479, 0.0044481]],
                               rtol=1e-7, atol=5e-9)
    np.testing.assert_allclose(X[100:103], [[-0., -0.], [-2.3763678e-05, -1.0100982e-02],
                                            [-2.8590499e-03, -1.9998686e-02]],
                               rtol=1e-7, atol=5e-9)
    assert np.signbit(X[100]).all()  # r = 0 times a negative sine: -0.0, as in the book
    assert np.array_equal(y, np.repeat(np.arange(3, dtype=np.uint8), 100))

    datasets.init()
    X, y = datasets.vertical_data(samples=100, classes=3)
    np.testing.assert_allclose(X[0:3], [[0.17640524, 0.6883151], [0.04001572, 0.3652241],
                                        [0.0978738, 0.3729515]], rtol=1e-7, atol=5e-9)
    np.testing.assert_allclose(X[100:102], [[0.29641515, 0.3693473],
                                            [0.30939543, 0.6658131]], rtol=1e-7, atol=5e-9)


def test_sine_data_values():
    X, y = datasets.sine_data()
    assert X[0, 0] == 0 and X[1, 0] == 0.001 and X[-1, 0] == 0.999
    np.testing.assert_allclose(y, np.sin(2 * np.pi * X), rtol=0, atol=1e-15)


def test_init_seeds_the_legacy_rng_and_patches_nothing():
    dot, zeros, randn = np.dot, np.zeros, np.random.randn
    datasets.init()
    first = np.random.standard_normal(4)
    np.random.seed(0)
    assert np.array_equal(first, np.random.standard_normal(4))
    datasets.init(seed=5)
    np.random.seed(5)
    expected = np.random.standard_normal(4)
    datasets.init(5)
    assert np.array_equal(np.random.standard_normal(4), expected)
    assert (np.dot, np.zeros, np.random.randn) == (dot, zeros, randn)
    assert np.zeros(2).dtype == np.float64 and np.random.randn(2).dtype == np.float64


@pytest.mark.parametrize("function", [datasets.spiral_data, datasets.vertical_data])
def test_argument_validation(function):
    for bad in (0, -3):
        with pytest.raises(ValueError, match="samples: expected a positive integer"):
            function(bad, 3)
        with pytest.raises(ValueError, match="classes: expected a positive integer"):
            function(10, bad)
    for bad in (2.5, "10", None, True):
        with pytest.raises(TypeError, match="samples: expected a positive integer"):
            function(bad, 3)
    with pytest.raises(ValueError, match="classes: at most 256"):
        function(1, 257)
    X, y = function(np.int64(3), np.uint8(2))  # NumPy integers are fine
    assert X.shape == (6, 2)


def test_sine_data_argument_validation():
    with pytest.raises(ValueError, match="samples"):
        datasets.sine_data(0)
    with pytest.raises(TypeError, match="samples"):
        datasets.sine_data(10.0)


def test_256_classes_fit_uint8_labels():
    datasets.init()
    X, y = datasets.vertical_data(1, 256)
    assert y[-1] == 255 and y.dtype == np.uint8
