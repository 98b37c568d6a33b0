"""Input checks and float32 conversion for the book's classes: the one place where Python
checks an argument and converts it, before any kernel runs, with messages that name the
argument, what was expected and what arrived. The kernels re-check at C level, with the
messages of ``kernels/arrays.pxd``.

One rule for what counts as real numbers: NumPy dtype kinds ``REAL_KINDS`` (float, signed
and unsigned integers, and bool). Booleans are accepted because they are exactly 0 and 1
(the book's ``y_true`` of a binary problem may well be a bool array, and NumPy's own
``astype(np.float32)`` takes them); complex, strings, objects and datetimes are refused.
"""
import math
import numbers
import operator

import numpy as np

FLOAT32 = np.dtype(np.float32)
REAL_KINDS = "fiub"


def is_real(dtype):
    """Whether arrays of ``dtype`` hold real numbers (see REAL_KINDS)."""
    return dtype.kind in REAL_KINDS


def check_real(arr, name):
    """Raise TypeError naming ``name`` unless the ndarray ``arr`` holds real numbers."""
    if arr.dtype.kind not in REAL_KINDS:
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")


def as_float32_2d(x, name, n_cols=None, n_rows=None):
    """``x`` as a 2-D float32 array, without a copy when it already is an aligned native one
    (any strides; NumPy's aligned flag also covers strides that are not multiples of 4).

    Anything else is converted (one copy). Raises ValueError for other ranks or widths.
    """
    if not (isinstance(x, np.ndarray) and x.dtype == FLOAT32 and x.flags.aligned):
        arr = np.asarray(x)
        check_real(arr, name)
        x = np.array(arr, dtype=np.float32)   # a new, aligned array
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), "
                         f"got shape {x.shape}")
    if n_cols is not None and x.shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} columns, got shape {x.shape}")
    if n_rows is not None and x.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows, got shape {x.shape}")
    return x


def as_float32_c(x, name):
    """``x`` as a C-contiguous aligned float32 array of any shape (one copy if it is not
    one). Raises TypeError for data that are not real numbers."""
    if not (isinstance(x, np.ndarray) and x.dtype == FLOAT32 and x.flags.c_contiguous
            and x.flags.aligned):
        arr = np.asarray(x)
        check_real(arr, name)
        x = np.ascontiguousarray(arr, dtype=np.float32)
    return x


def float32_attr(obj, name, shape=None, of=None):
    """``obj.<name>`` (a layer's parameter, gradient or optimizer state) as a writable
    C-contiguous 2-D float32 array, of ``shape`` (the shape of ``of``) if given.

    Another dtype or layout (e.g. user-assigned float64 weights) is converted (one copy); the
    caller decides whether the copy replaces the attribute. Assigns nothing.
    """
    arr = getattr(obj, name, None)
    if arr is None:
        hint = ("; run backward() before update_params()" if name.startswith("d") else
                "; state left by a different optimizer class?" if shape else "")
        raise AttributeError(f"update_params: the layer has no {name!r}{hint}")
    if not (type(arr) is np.ndarray and arr.dtype == FLOAT32 and arr.flags.c_contiguous
            and arr.flags.writeable):
        arr = np.asarray(arr)
        check_real(arr, f"layer.{name}")
        arr = np.array(arr, dtype=np.float32, order="C")
    if shape is None and arr.ndim != 2:
        raise ValueError(f"layer.{name}: expected a 2-D array, got shape {arr.shape}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"layer.{name}: expected shape {shape} (the {of}' shape), "
                         f"got {arr.shape}")
    return arr


def check_size(value, name):
    """A layer size: an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def positive_int(value, name, maximum=None):
    """A count (samples, classes of a toy data set): an int >= 1 (anything with
    ``__index__`` but bool), at most ``maximum`` (labels are uint8) if given."""
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


def check_strength(value, name):
    """A regularization strength or similar hyper-parameter: a finite real >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a finite real >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a finite real >= 0, got {value!r}")
    return value


def check_interval(owner, name, value, low, high=math.inf, low_open=False, high_open=True):
    """``value`` (an optimizer's hyper-parameter) if it is a finite real number in the
    interval from ``low`` to ``high``, else a TypeError/ValueError naming it."""
    interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number in {interval}, "
                        f"got {value!r} ({type(value).__name__})")
    if not (math.isfinite(value)
            and (low < value if low_open else low <= value)
            and (value < high if high_open else value <= high)):
        raise ValueError(f"{owner}: {name} must be a finite number in {interval}, got {value!r}")
    return value
