# Cheap typed views of float32 NumPy arrays for the kernels' Python entry points.
#
# A Cython memoryview argument costs ~200 ns to acquire (measured: 4 memoryview arguments
# 876 ns per call, 4 ndarray arguments 82 ns), which is most of the time of a 300x2x64 dense
# layer. Entry points therefore take ndarrays, check them here (type, dtype, byte order,
# alignment, rank, shape, strides, writability) and hand the nogil kernels a View2:
# a pointer with element strides, like a memoryview slice without the object.
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
        if a.dtype.kind not in "fiub":
            raise TypeError(f"{name}: expected real numbers, got dtype {a.dtype}")
    arr = cnp.PyArray_FROMANY(a, cnp.NPY_FLOAT32, 0, 0,
                                cnp.NPY_ARRAY_DEFAULT | cnp.NPY_ARRAY_FORCECAST)
    return arr


cdef inline View2 view2(object a, str name, Py_ssize_t rows=-1, Py_ssize_t cols=-1,
                        bint writable=False, bint contiguous=False) except *:
    """View of a 2-D float32 ndarray; rows/cols (-1: any) are checked against its shape."""
    cdef View2 v
    cdef cnp.ndarray arr
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != cnp.NPY_FLOAT32 or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name}: expected a native float32 array, got dtype {a.dtype}")
    if cnp.PyArray_NDIM(arr) != 2:
        raise ValueError(f"{name}: expected a 2-D array, got shape {a.shape}")
    v.rows = cnp.PyArray_DIM(arr, 0)
    v.cols = cnp.PyArray_DIM(arr, 1)
    if (rows >= 0 and v.rows != rows) or (cols >= 0 and v.cols != cols):
        raise ValueError(f"{name}: expected shape ({rows if rows >= 0 else 'N'}, "
                         f"{cols if cols >= 0 else 'N'}), got {a.shape}")
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


cdef inline cnp.ndarray empty2(Py_ssize_t rows, Py_ssize_t cols):
    """A new C-contiguous float32 (rows, cols) array."""
    cdef cnp.npy_intp dims[2]
    dims[0] = rows
    dims[1] = cols
    return cnp.PyArray_EMPTY(2, dims, cnp.NPY_FLOAT32, 0)
