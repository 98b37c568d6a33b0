"""The book's toy datasets, bit-identical to ``nnfs.datasets`` (nnfs 0.5.1) after ``nnfs.init()``.

The book's package makes them under ``nnfs.init()``, which monkey-patches NumPy so that
``np.random.randn`` returns float32 and ``np.zeros`` makes float32 arrays. Here nothing is
patched: the normals come from NumPy's global legacy RNG in the same calls, order and sizes (so
the RNG is left in the same state, including the spare normal that the legacy polar method
caches between calls), and the float32 roundings happen where ``nnfs.init()`` puts them.

    >>> from nnfs_fast import datasets
    >>> datasets.init()                  # np.random.seed(0), like nnfs.init()
    >>> X, y = datasets.spiral_data(samples=100, classes=3)
    >>> X.shape, X.dtype, y.dtype
    ((300, 2), dtype('float32'), dtype('uint8'))
"""
import operator

import numpy as np

_F32 = np.float32
_MAX_CLASSES = int(np.iinfo(np.uint8).max) + 1  # labels are stored as uint8, like the book's


def init(seed=0):
    """Seed NumPy's global legacy RNG (``np.random.seed(seed)``), as ``nnfs.init()`` does.

    Unlike ``nnfs.init()`` it patches nothing: NumPy keeps its float64 defaults.
    """
    try:
        np.random.seed(seed)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"init: seed must be None or an int in [0, 2**32 - 1], got {seed!r} "
                        f"({exc})") from None


def spiral_data(samples, classes):
    """``classes`` interleaved noisy spirals of ``samples`` points each (CS231n's spiral).

    Returns X (samples*classes, 2) float32 and y (samples*classes,) uint8, rows grouped by
    class. Draws ``classes`` times ``samples`` normals from the global legacy RNG.
    """
    samples = _positive_int(samples, "samples")
    classes = _positive_int(classes, "classes", _MAX_CLASSES)
    X = np.zeros((samples * classes, 2), dtype=_F32)
    y = np.zeros(samples * classes, dtype=np.uint8)
    r = np.linspace(0.0, 1, samples)  # radius, float64
    for class_number in range(classes):
        rows = slice(samples * class_number, samples * (class_number + 1))
        # angle: float64 linspace plus noise computed in float32 (randn and *0.2 under nnfs.init)
        noise = _randn32(samples) * _F32(0.2)
        t = np.linspace(class_number * 4, (class_number + 1) * 4, samples) + noise
        X[rows, 0] = r * np.sin(t * 2.5)  # float64 maths, one rounding to float32 on store
        X[rows, 1] = r * np.cos(t * 2.5)
        y[rows] = class_number
    return X, y


def vertical_data(samples, classes):
    """``classes`` vertical Gaussian blobs of ``samples`` points each.

    Class c has x ~ N(c/3, 0.1²) and y ~ N(0.5, 0.1²), computed in float32. Returns X
    (samples*classes, 2) float32 and y (samples*classes,) uint8. Draws two times ``samples``
    normals per class (first column first) from the global legacy RNG.
    """
    samples = _positive_int(samples, "samples")
    classes = _positive_int(classes, "classes", _MAX_CLASSES)
    X = np.zeros((samples * classes, 2), dtype=_F32)
    y = np.zeros(samples * classes, dtype=np.uint8)
    for class_number in range(classes):
        rows = slice(samples * class_number, samples * (class_number + 1))
        X[rows, 0] = _randn32(samples) * _F32(0.1) + _F32(class_number / 3)
        X[rows, 1] = _randn32(samples) * _F32(0.1) + _F32(0.5)
        y[rows] = class_number
    return X, y


def sine_data(samples=1000):
    """One period of a sine: X = i/samples for i = 0..samples-1 and y = sin(2πX).

    Both float64 of shape (samples, 1), as in nnfs (not affected by ``nnfs.init()``); no RNG use.
    """
    samples = _positive_int(samples, "samples")
    X = np.arange(samples).reshape(-1, 1) / samples
    y = np.sin(2 * np.pi * X)
    return X, y


def _randn32(n):
    """``n`` normals from the global legacy RNG rounded to float32 (``np.random.randn`` under
    ``nnfs.init()``; ``standard_normal`` is the same stream and is never patched)."""
    return np.random.standard_normal(n).astype(_F32)


def _positive_int(value, name, maximum=None):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a positive integer, got {value!r}")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected a positive integer, got {value!r} "
                        f"({type(value).__name__})") from None
    if n < 1:
        raise ValueError(f"{name}: expected a positive integer, got {n}")
    if maximum is not None and n > maximum:
        raise ValueError(f"{name}: at most {maximum} (labels are uint8), got {n}")
    return n
