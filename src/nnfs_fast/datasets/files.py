"""Samples and labels from files: comma-separated text (through a real CSV parser) and NumPy's
``.npy``/``.npz``. The command line reads ``train --data FILE`` and ``predict MODEL INPUT``
with these functions; scripts can use them too.

    >>> from nnfs_fast.datasets import files as datasets_files
    >>> values, columns = datasets_files.read_csv("points.csv")          # doctest: +SKIP
    >>> X, y, X_val, y_val, columns = datasets_files.read_xy("data.npz")  # doctest: +SKIP

Content that cannot be used raises ValueError naming the file and the place (``line 7,
column 2`` in a CSV file, counting from 1 like an editor; ``X[3, 1]`` in an array, counting
from 0 like NumPy): a row is never dropped and a NaN is never passed on. File-system problems
raise OSError naming the file (FileNotFoundError for a missing one); anything but a regular
file (a folder, a named pipe, a device) is refused with ValueError before it is read
(``io.files.open_regular``).
"""
import csv
import io
import math
import os
import zipfile
import zlib

import numpy as np

from nnfs_fast.io.files import open_regular

_LINES_PER_PARSE = 16384   # CSV lines handed to np.loadtxt at a time (bounds its temporaries)


# ------------------------------------------------------------------------------------ CSV

def read_csv(path, *, header=None):
    """A table of finite numbers from a comma-separated text file.

    Args:
        header: True: the first non-blank line holds column names; False: it is data; None
            (default): it is a header when none of its fields is a number (a row mixing numbers
            and words is a malformed data row, not a header).
    Returns:
        (values, columns): values (n_rows, n_columns) float64; columns, the header's names
        (a list of str), or None without a header.
    Reads UTF-8 (with or without the byte-order mark spreadsheet programs write; other bytes
    are replaced, so a Latin-1 header still reads), LF, CRLF or CR line ends, quoted fields
    (``"1.5"``, ``"name, with comma"``) and skips blank lines. Raises ValueError naming the
    line for a row with another number of fields, a field that is not a number, a NaN or an
    infinity, and for a file without data rows.
    """
    if header not in (None, True, False):
        raise TypeError(f"read_csv: header must be True, False or None (detect), got "
                        f"{header!r}")
    with io.TextIOWrapper(_open(path, "read_csv"), encoding="utf-8-sig",
                          errors="replace") as f:
        lines = ((n, text) for n, text in enumerate(f, 1) if text.strip())
        first = next(lines, None)
        if first is None:
            raise ValueError(f"{path}: no data rows (the file is empty or blank)")
        fields = _fields(first[1])
        if header is None:
            header = not any(_is_number(field) for field in fields)
        columns, shape_from, pending = None, None, []
        if header:
            columns = [field.strip() for field in fields]
            shape_from = (len(fields), f"the header (line {first[0]})")
        else:
            pending.append(first)
        parts = []
        for item in lines:
            pending.append(item)
            if len(pending) == _LINES_PER_PARSE:
                parts.append(_parse_lines(path, pending, shape_from,
                                          header_hint=not parts and not header))
                shape_from = shape_from or (parts[-1].shape[1], f"line {pending[0][0]}")
                pending = []
        if pending:
            parts.append(_parse_lines(path, pending, shape_from,
                                      header_hint=not parts and not header))
    if not parts:
        raise ValueError(f"{path}: no data rows after the header (line {first[0]})")
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)), columns


def _parse_lines(path, numbered, shape_from, header_hint):
    """[(line number, text)] -> float64 (n, n_columns), all finite, with the width of
    ``shape_from`` = (n_columns, where it was set) when given; else ValueError naming the
    first bad line (found by ``_explain``)."""
    try:
        table = np.loadtxt([text for _, text in numbered], delimiter=",", quotechar='"',
                           comments=None, dtype=np.float64, ndmin=2)
    except ValueError:
        table = None
    if (table is None or (shape_from and table.shape[1] != shape_from[0])
            or not np.isfinite(table).all()):
        _explain(path, numbered, shape_from, header_hint)
    return table


def _explain(path, numbered, shape_from, header_hint):
    """Raise the ValueError that names the first line of ``numbered`` np.loadtxt refused,
    or whose width or values are wrong."""
    for n, text in numbered:
        fields = _fields(text)
        if shape_from is None:
            shape_from = (len(fields), f"line {n}")
        if len(fields) != shape_from[0]:
            raise ValueError(f"{path}: line {n} has {len(fields)} field"
                             f"{'s' * (len(fields) != 1)}, expected {shape_from[0]} like "
                             f"{shape_from[1]}")
        for j, field in enumerate(fields, 1):
            try:
                value = float(field)
            except ValueError:
                hint = (f" (if line {n} is a header, say so: header=True, or --header on "
                        f"the command line)" if header_hint and n == numbered[0][0] else "")
                raise ValueError(f"{path}: line {n}, column {j}: {field.strip()!r} is not a "
                                 f"number{hint}") from None
            if not np.isfinite(value):
                raise ValueError(f"{path}: line {n}, column {j}: {field.strip()} is not a "
                                 f"finite number")
        try:  # what float() accepts but np.loadtxt does not (e.g. "1_000")
            np.loadtxt([text], delimiter=",", quotechar='"', comments=None, ndmin=2)
        except ValueError as exc:
            raise ValueError(f"{path}: line {n}: not a row of numbers ({exc})") from None
    raise ValueError(f"{path}: lines {numbered[0][0]}-{numbered[-1][0]}: not a table of "
                     f"numbers")


def _fields(text):
    """The fields of one CSV line (quotes removed, as the csv module reads them)."""
    return next(csv.reader([text]), [])


def _is_number(field):
    try:
        float(field)
        return True
    except ValueError:
        return False


# ---------------------------------------------------------------------------------- NumPy

def read_npy(path):
    """The array of an ``.npy`` file (never unpickles: object arrays are refused). The header's
    shape is checked against the bytes that follow it before the array is allocated."""
    with _open(path, "read_npy") as f:
        try:
            version = np.lib.format.read_magic(f)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(f))
            n_bytes = math.prod(shape) * dtype.itemsize
            left = os.fstat(f.fileno()).st_size - f.tell()
            if n_bytes > left:
                raise ValueError(f"the header announces shape {shape} of {dtype} ({n_bytes:,} "
                                 f"bytes), but {left:,} bytes follow it")
            f.seek(0)
            return np.load(f, allow_pickle=False)
        except (ValueError, EOFError) as exc:
            raise ValueError(f"{path}: not a readable .npy file ({exc})") from None


def read_npz(path):
    """{name: array} of an ``.npz`` file (never unpickles: object arrays are refused)."""
    with _open(path, "read_npz") as f:
        try:
            arrays = np.load(f, allow_pickle=False)
            if not hasattr(arrays, "files"):
                raise ValueError("it is an .npy file")
            with arrays:
                return {name: arrays[name] for name in arrays.files}
        except (ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise ValueError(f"{path}: not a readable .npz file ({exc})") from None


# ----------------------------------------------------------------------- samples, labels

def read_samples(path, *, header=None):
    """Samples to predict, one per row: ``.npy``, ``.npz`` (array ``X``, or its only array),
    or ``.csv``/``.txt`` (``header`` as for ``read_csv``).

    Returns (X, columns): X (n_samples, n_features) float32, at least one sample, all finite
    (a 1-D array is one sample); columns as ``read_csv`` returns them (None for NumPy files).
    """
    ext = os.path.splitext(path)[1].lower()
    columns = None
    if ext == ".npy":
        X = read_npy(path)
    elif ext == ".npz":
        arrays = read_npz(path)
        if "X" not in arrays and len(arrays) != 1:
            raise ValueError(f"{path}: expected an array named X (it holds "
                             f"{', '.join(sorted(arrays)) or 'nothing'})")
        X = arrays.get("X", next(iter(arrays.values()), None))
    elif ext in (".csv", ".txt"):
        X, columns = read_csv(path, header=header)
    else:
        raise ValueError(f"{path}: expected a .npy, .npz or .csv file of samples")
    X = _numbers(X, f"{path}: X")
    if X.ndim == 1:
        X = X.reshape(1, -1)
    if X.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array (samples x features), got shape "
                         f"{X.shape}")
    if not len(X):
        raise ValueError(f"{path}: no samples (0 rows)")
    return as_finite_float32(X, f"{path}: X"), columns


def read_xy(path, *, header=None):
    """Training data: ``.npz`` with arrays ``X`` and ``y`` and optionally a validation pair
    ``X_test``/``y_test`` (or ``X_val``/``y_val``), or ``.csv`` with the features and then
    the target in the last column (``header`` as for ``read_csv``).

    Returns (X, y, X_val, y_val, columns): the arrays as stored (X_val and y_val None without
    a validation pair), each checked to hold finite numbers and one row of y per sample;
    columns as ``read_csv`` returns them (None for .npz files).
    """
    ext = os.path.splitext(path)[1].lower()
    columns, X_val, y_val = None, None, None
    if ext == ".npz":
        arrays = read_npz(path)
        missing = [k for k in ("X", "y") if k not in arrays]
        if missing:
            raise ValueError(f"{path}: no array named {' or '.join(missing)} (it holds "
                             f"{', '.join(sorted(arrays)) or 'nothing'})")
        X, y = arrays["X"], arrays["y"]
        for xk, yk in (("X_test", "y_test"), ("X_val", "y_val")):
            if xk in arrays and yk in arrays:
                X_val, y_val = arrays[xk], arrays[yk]
                _pair(X_val, y_val, f"{path}: {xk}", f"{path}: {yk}")
                break
    elif ext == ".csv":
        table, columns = read_csv(path, header=header)
        if table.shape[1] < 2:
            raise ValueError(f"{path}: expected feature columns and a target column, got "
                             f"{table.shape[1]} column")
        X, y = table[:, :-1], table[:, -1]
    else:
        raise ValueError(f"{path}: expected a .npz or .csv file")
    _pair(X, y, f"{path}: X", f"{path}: y")
    return X, y, X_val, y_val, columns


def _pair(X, y, x_name, y_name):
    """Check that X and y hold finite numbers and as many rows."""
    for a, name in ((X, x_name), (y, y_name)):
        if np.ndim(_numbers(a, name)) == 0:
            raise ValueError(f"{name}: expected one row per sample, got a scalar")
        check_finite(a, name)
    if len(X) != len(y):
        raise ValueError(f"{x_name} has {len(X)} samples but {y_name} has {len(y)}")


def one_hot_labels(y):
    """Class indices (N,) int64 when ``y`` is one-hot rows (2-D, at least two columns, only
    0 and 1, exactly one 1 per row); else None."""
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] < 2 or not len(y) or y.dtype.kind not in "fiub":
        return None
    if not (((y == 0) | (y == 1)).all() and (np.count_nonzero(y, axis=1) == 1).all()):
        return None
    return np.argmax(y, axis=1).astype(np.int64)


# ----------------------------------------------------------------------------- checks

def check_finite(a, name):
    """ValueError naming the first element of ``a`` that is NaN or infinite, as
    ``name[row, column]`` (NumPy's indices, counting from 0)."""
    a = np.asarray(a)
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        index = ", ".join(map(str, where))
        raise ValueError(f"{name}[{index}] is {a[where]}: expected finite numbers "
                         f"(row {where[0]}, counting from 0)")


def as_finite_float32(a, name):
    """``a`` as a C-contiguous float32 array, refusing NaN, infinities, and finite values
    beyond float32's range (which would become infinities)."""
    check_finite(a, name)
    a = np.asarray(a)
    if a.dtype.kind == "f" and a.dtype.itemsize > 4:
        beyond = np.abs(a) > np.finfo(np.float32).max
        if beyond.any():
            where = tuple(int(i) for i in np.argwhere(beyond)[0])
            raise ValueError(f"{name}[{', '.join(map(str, where))}] is {a[where]}, beyond "
                             f"float32's range (about 3.4e38)")
    return np.ascontiguousarray(a, dtype=np.float32)


def _numbers(a, name):
    a = np.asarray(a)
    if a.dtype.kind not in "fiub":
        raise ValueError(f"{name}: expected numbers, got dtype {a.dtype}")
    return a


def _open(path, where):
    """``io.files.open_regular``, with a missing file's message in this module's form."""
    try:
        return open_regular(path, where)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise type(exc)(f"{path}: cannot read it ({exc.strerror or exc})") from None
