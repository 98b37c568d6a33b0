# Cheap typed views of float32 NumPy arrays for the kernels' Python entry points, and every
# argument check and message of the kernels (one file; the Python side's checks, with the same
# messages where the two meet, are src/nnfs_fast/_validation.py).
#
# A Cython memoryview argument costs ~200 ns to acquire (measured: 4 memoryview arguments
# 876 ns per call, 4 ndarray arguments 82 ns), which is most of the time of a 300x2x64 dense
# layer. Entry points therefore take ndarrays, check them here (type, dtype, byte order,
# alignment, rank, shape, strides, writability) and hand the nogil kernels a View2:
# a pointer with element strides, like a memoryview slice without the object.
#
# The Python classes convert or refuse their arguments before calling a kernel; the kernels
# re-check them here at C level (another caller, or a bug, must never reach a nogil loop with
# the wrong shape) and never convert-and-retry.
cimport numpy as cnp

ctypedef struct View2:
    float* data
    Py_ssize_t rows
    Py_ssize_t cols
    Py_ssize_t rs       # row stride, in elements
    Py_ssize_t cs       # column stride, in elements


cdef inline object as_float32(object a, str name):
    """``a`` itself if it is an aligned native float32 ndarray, else a float32 copy of it."""
    cdef cnp.ndarray arr
    if cnp.PyArray_Check(a):
        arr = <cnp.ndarray>a
        if (cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32 and cnp.PyArray_ISNOTSWAPPED(arr)
                and cnp.PyArray_ISALIGNED(arr)):
            return a
        if a.dtype.kind not in "fiub":     # _validation.REAL_KINDS
            raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    elif isinstance(a, (str, bytes)):
        raise TypeError(f"{name}: expected an array of real numbers, got {type(a).__name__} "
                        f"{a!r}")
    try:
        arr = cnp.PyArray_FROMANY(a, cnp.NPY_FLOAT32, 0, 0,
                                  cnp.NPY_ARRAY_DEFAULT | cnp.NPY_ARRAY_FORCECAST)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an array of real numbers, got "
                        f"{type(a).__name__} ({exc})") from None
    return arr


cdef inline cnp.ndarray native_float32(object a, str name):
    """``a``, checked to be an ndarray of native float32 (any shape, layout, alignment)."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != cnp.NPY_FLOAT32 or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name}: expected a native float32 array, got dtype {a.dtype}")
    return arr


cdef inline bint is_view2(object a) noexcept:
    """Whether view2(a, ...) accepts ``a`` for its type, dtype, rank and layout: an aligned
    native float32 2-D ndarray with strides that are multiples of 4 bytes. No exception."""
    if not cnp.PyArray_Check(a):
        return False
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return (cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32 and cnp.PyArray_ISNOTSWAPPED(arr)
            and cnp.PyArray_NDIM(arr) == 2 and cnp.PyArray_ISALIGNED(arr)
            and cnp.PyArray_STRIDE(arr, 0) % 4 == 0 and cnp.PyArray_STRIDE(arr, 1) % 4 == 0)


cdef inline View2 view2(object a, str name, Py_ssize_t rows=-1, Py_ssize_t cols=-1,
                        bint writable=False, bint contiguous=False) except *:
    """View of a 2-D float32 ndarray; rows/cols (-1: any) are checked against its shape."""
    cdef View2 v
    cdef cnp.ndarray arr = native_float32(a, name)
    if cnp.PyArray_NDIM(arr) != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {a.shape}")
    v.rows = cnp.PyArray_DIM(arr, 0)
    v.cols = cnp.PyArray_DIM(arr, 1)
    if (rows >= 0 and v.rows != rows) or (cols >= 0 and v.cols != cols):
        raise ValueError(f"{name}: expected shape ({rows if rows >= 0 else 'N'}, "
                         f"{cols if cols >= 0 else 'N'}), got ({v.rows}, {v.cols})")
    if not cnp.PyArray_ISALIGNED(arr) or cnp.PyArray_STRIDE(arr, 0) % 4 \
            or cnp.PyArray_STRIDE(arr, 1) % 4:
        raise ValueError(f"{name}: expected an aligned array with strides that are "
                         f"multiples of 4 bytes, got strides {a.strides}")
    if writable and not cnp.PyArray_ISWRITEABLE(arr):
        raise ValueError(f"{name}: expected a writable array")
    if contiguous and not cnp.PyArray_IS_C_CONTIGUOUS(arr):
        raise ValueError(f"{name}: expected a C-contiguous array")
    v.data = <float*>cnp.PyArray_DATA(arr)
    v.rs = cnp.PyArray_STRIDE(arr, 0) // 4
    v.cs = cnp.PyArray_STRIDE(arr, 1) // 4
    return v


cdef inline object float32_array(object a, str name):
    """``a`` as a float32 ndarray: itself when it is an aligned native float32 one (any
    layout), else a float32 copy; non-real data is a TypeError naming the argument."""
    if not cnp.PyArray_Check(a):
        a = cnp.PyArray_FROM_O(a)   # np.asarray: the data's own dtype
    return as_float32(a, name)


cdef inline View2 matrix(object a, str name, Py_ssize_t rows=-1,
                         Py_ssize_t cols=-1) except *:
    """View of ``a`` (a float32 array from float32_array), checked to be 2-D with ``cols``
    columns and ``rows`` rows (-1: any), with the messages of _validation.as_float32_2d."""
    cdef cnp.ndarray arr = <cnp.ndarray?>a
    if cnp.PyArray_NDIM(arr) != 2:
        raise ValueError(f"{name}: expected a 2-D array (n_samples, n_features), "
                         f"got shape {a.shape}")
    if cols >= 0 and cnp.PyArray_DIM(arr, 1) != cols:
        raise ValueError(f"{name}: expected {cols} columns, got shape {a.shape}")
    if rows >= 0 and cnp.PyArray_DIM(arr, 0) != rows:
        raise ValueError(f"{name}: expected {rows} rows, got shape {a.shape}")
    return view2(a, name)


cdef inline const float* contiguous(object a, str name) except? NULL:
    """The data of ``a``, an aligned C-contiguous native float32 ndarray (any shape)."""
    cdef cnp.ndarray arr = native_float32(a, name)
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)):
        raise ValueError(f"{name}: expected an aligned C-contiguous array")
    return <const float*>cnp.PyArray_DATA(arr)


cdef inline cnp.ndarray empty2(Py_ssize_t rows, Py_ssize_t cols):
    """A new C-contiguous float32 (rows, cols) array."""
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)


# Integer arrays (dropout draws, class labels) of any integer dtype: load_ints reads them in
# place, switching on the element type instead of converting the array. Values a kernel uses
# as indices are first copied (int64_copy) and checked on the copy.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef enum IntCode:      # 2 * itemsize + 1 if unsigned
    I8 = 2
    U8 = 3
    I16 = 4
    U16 = 5
    I32 = 8
    U32 = 9
    I64 = 16
    U64 = 17

ctypedef struct Ints:
    const char* data
    Py_ssize_t n        # elements
    Py_ssize_t stride   # bytes from one element to the next
    int code            # IntCode of the element type


cdef inline object as_native(object a):
    """``a`` itself, or for an ndarray in non-native byte order or misaligned, a native,
    aligned copy of the same type (so that int_view can read it)."""
    if cnp.PyArray_Check(a) and not (cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a)
                                     and cnp.PyArray_ISALIGNED(<cnp.ndarray>a)):
        return a.astype(a.dtype.newbyteorder("="))
    return a


cdef inline Ints int_view(object a, str name, bint flat=False) except *:
    """View of an aligned native integer ndarray (any integer dtype, see as_native): 1-D with
    any stride, or with flat a C-contiguous array of any rank, element by element."""
    cdef Ints v
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if not cnp.PyArray_ISINTEGER(arr):
        raise TypeError(f"{name}: expected integers, got dtype {a.dtype}")
    if not (cnp.PyArray_ISNOTSWAPPED(arr) and cnp.PyArray_ISALIGNED(arr)):
        raise ValueError(f"{name}: expected an aligned array in native byte order")
    v.code = 2 * cnp.PyArray_ITEMSIZE(arr) + cnp.PyArray_ISUNSIGNED(arr)
    v.data = <const char*>cnp.PyArray_DATA(arr)
    v.n = cnp.PyArray_SIZE(arr)
    if flat:
        if not cnp.PyArray_IS_C_CONTIGUOUS(arr):
            raise ValueError(f"{name}: expected a C-contiguous array")
        v.stride = cnp.PyArray_ITEMSIZE(arr)
    else:
        if cnp.PyArray_NDIM(arr) != 1:
            raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
        v.stride = cnp.PyArray_STRIDE(arr, 0)
    return v


ctypedef fused _int_t:
    int8_t
    uint8_t
    int16_t
    uint16_t
    int32_t
    uint32_t
    int64_t
    uint64_t


cdef inline void _load(const _int_t* p, Py_ssize_t stride, Py_ssize_t n,
                       int64_t* out) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = <int64_t>p[i * stride]


cdef inline void load_ints(const Ints* v, Py_ssize_t start, Py_ssize_t n,
                           int64_t* out) noexcept nogil:
    """out[i] = element start + i of v, as int64, for i < n (uint64 values above the int64
    range come out negative): the element type is switched on once, outside the loop."""
    cdef const char* p = v.data + start * v.stride
    if v.code == I64:
        _load(<const int64_t*>p, v.stride // 8, n, out)
    elif v.code == I32:
        _load(<const int32_t*>p, v.stride // 4, n, out)
    elif v.code == U8:
        _load(<const uint8_t*>p, v.stride, n, out)
    elif v.code == I8:
        _load(<const int8_t*>p, v.stride, n, out)
    elif v.code == U32:
        _load(<const uint32_t*>p, v.stride // 4, n, out)
    elif v.code == I16:
        _load(<const int16_t*>p, v.stride // 2, n, out)
    elif v.code == U16:
        _load(<const uint16_t*>p, v.stride // 2, n, out)
    else:
        _load(<const uint64_t*>p, v.stride // 8, n, out)


cdef inline cnp.ndarray int64_copy(const Ints* v):
    """A new C-contiguous int64 array (v.n,) of v's elements, as load_ints gives them.

    Indices a nogil kernel uses must come from such a private copy, checked after copying:
    the array v views is the caller's, and another Python thread may rewrite it while the
    kernel runs without the GIL (docs/GUARANTEES.md)."""
    cdef cnp.npy_intp dims[1]
    dims[0] = v.n
    cdef cnp.ndarray out = cnp.PyArray_EMPTY(1, dims, cnp.NPY_INT64, 0)
    load_ints(v, 0, v.n, <int64_t*>cnp.PyArray_DATA(out))
    return out
