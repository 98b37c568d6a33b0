"""Input checks shared by the public classes: run before any kernel, with messages that name
the argument, what was expected and what arrived."""
import math
import numbers

import numpy as np

FLOAT32 = np.dtype(np.float32)


def as_float32_2d(x, name, n_cols=None, n_rows=None):
    """``x`` as a 2-D float32 array, without a copy when it already is an aligned native one
    (any strides; NumPy's aligned flag also covers strides that are not multiples of 4).

    Anything else is converted (one copy). Raises ValueError for other ranks or widths.
    """
    if not (isinstance(x, np.ndarray) and x.dtype == FLOAT32 and x.flags.aligned):
        arr = np.asarray(x)
        if arr.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
        x = np.array(arr, dtype=np.float32)   # a new, aligned array
    if x.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), "
                         f"got shape {x.shape}")
    if n_cols is not None and x.shape[1] != n_cols:
        raise ValueError(f"{name}: expected {n_cols} columns, got shape {x.shape}")
    if n_rows is not None and x.shape[0] != n_rows:
        raise ValueError(f"{name}: expected {n_rows} rows, got shape {x.shape}")
    return x


def check_size(value, name):
    """A layer size: an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
    return int(value)


def check_strength(value, name):
    """A regularization strength or similar hyper-parameter: a finite real >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a finite real >= 0, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}: expected a finite real >= 0, got {value!r}")
    return value
