"""scikit-learn's bundled handwritten digits (8 x 8 pixels), split and scaled like the book's
MNIST: X (N, 64) float32, y (N,) uint8, read from the file scikit-learn ships (no download).

    >>> from nnfs_fast.datasets import load_digits
    >>> X, y, X_test, y_test = load_digits()                        # doctest: +SKIP
    >>> X.shape, X_test.shape, X.dtype                              # doctest: +SKIP
    ((1437, 64), (360, 64), dtype('float32'))
"""
import importlib.util
import math
import numbers
import os

import numpy as np

_F32 = np.float32
# load_digits' scalings of the pixel values 0..16, in float32 (see its docstring)
_SCALES = {
    "book": lambda v: (v - _F32(8)) / _F32(8),
    "unit": lambda v: v / _F32(16),
}


def load_digits(*, scale="book", test_size=0.2, seed=0):
    """scikit-learn's bundled handwritten digits (1,797 images of 8 x 8 pixels, values 0..16),
    split into training and validation sets. Needs scikit-learn
    (``pip install "nnfs_fast[digits]"``); reads the data file it ships, nothing is
    downloaded.

    Args:
        scale: ``"book"``: (v - 8) / 8, in [-1, 1] (the book's MNIST scaling for 0..16);
            ``"unit"``: v / 16, in [0, 1].
        test_size: fraction of the samples held out, 0 < test_size < 1 (rounded up, like
            scikit-learn's ``train_test_split``: 360 of 1,797 for 0.2).
        seed: seed of the split's own ``np.random.RandomState(seed).permutation``; the global
            NumPy RNG is neither used nor changed.
    Returns:
        ``(X, y, X_test, y_test)``: X (N, 64) float32, y (N,) uint8.
    """
    if scale not in _SCALES:
        raise ValueError(f"load_digits: scale must be one of {sorted(_SCALES)}, got {scale!r}")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) \
            or not 0 < test_size < 1:
        raise ValueError(f"load_digits: test_size must be a fraction strictly between 0 and 1, "
                         f"got {test_size!r}")
    pixels, labels = _digits_data()
    n = len(labels)
    n_test = math.ceil(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(f"load_digits: test_size={test_size!r} leaves an empty split of the "
                         f"{n} samples")
    X = _SCALES[scale](pixels.astype(_F32))
    order = np.random.RandomState(seed).permutation(n)
    train, test = order[n_test:], order[:n_test]
    return X[train], labels[train], X[test], labels[test]


def _digits_data():
    """(pixels (1797, 64) uint8 0..16, labels (1797,) uint8) from scikit-learn's bundled
    ``digits.csv.gz``, read directly: importing scikit-learn (and SciPy) takes seconds, more
    than training a network on the data. Falls back to ``sklearn.datasets.load_digits``."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None:
        raise ImportError("load_digits needs scikit-learn, which ships the digits data: "
                          "pip install 'nnfs_fast[digits]' (or pip install scikit-learn)")
    csv = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "digits.csv.gz")
    if os.path.isfile(csv):
        table = np.loadtxt(csv, delimiter=",", dtype=np.uint8, ndmin=2)
        if table.shape[1] == 8 * 8 + 1:  # 64 pixels, then the label
            return np.ascontiguousarray(table[:, :-1]), np.ascontiguousarray(table[:, -1])
    from sklearn.datasets import load_digits as sklearn_load_digits
    digits = sklearn_load_digits()
    return digits.data.astype(np.uint8), digits.target.astype(np.uint8)
