# Dropout kernels: the mask scaling, the masked forward product and the masked gradient.
#
# Design
# ------
# The Bernoulli draws stay in Python (np.random.binomial on NumPy's global legacy RNG), so a
# seeded run gets the book's masks. The book then makes two float64 arrays from the int64 0/1
# draws: mask = draws / keep, output = inputs * mask. dropout_forward does both in one pass
# over flat, C-contiguous arrays, storing float32:
#
#   binary_mask[i] = draws[i] ? float32(1 / keep) : 0      (= float32(draws[i] / keep))
#   output[i]      = inputs[i] * binary_mask[i]            (float32 product)
#
# and dropout_backward computes dinputs[i] = dvalues[i] * binary_mask[i]. Both allocate their
# outputs (the inputs' shape). The draws are read in place whatever their integer dtype (int64,
# int32 on Windows with NumPy 1): the type is switched on once per chunk, outside the loop.
# Work under PAR_ELEMS elements runs on the calling thread without entering the OpenMP runtime;
# larger work is split into one contiguous, cache-line-aligned block per thread
# (_parallel.pxd's run_range). Each element is written by one thread, so results do not
# depend on the thread count, and (one rounding per product) nor on the platform.

cimport numpy as cnp
from libc.stdint cimport int64_t

from nnfs_fast._parallel cimport run_range
from nnfs_fast._view cimport Ints, as_native, int_view, load_ints

cnp.import_array()

cdef enum:
    PAR_ELEMS = 32768   # a pass goes parallel from this many elements (benchmarks/)
    CHUNK = 256         # draws converted at a time (forward_range)


cdef struct Args:
    Ints draws              # IN   Bernoulli(keep) draws, 0 or 1
    const float* values     # IN   inputs (forward) or dvalues (backward)
    const float* mask       # IN   binary_mask (backward)
    float* binary_mask      # OUT  binary_mask (forward)
    float* out              # OUT  output (forward) or dinputs (backward)
    float scale             # float32(1 / keep)


cdef void forward_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Elements [start, end), CHUNK at a time: the draws as int64 (load_ints), then the
    mask and the masked inputs (one vectorized loop)."""
    cdef const Args* a = <const Args*>ctx
    cdef int64_t draws[CHUNK]
    cdef const float* inputs = a.values
    cdef float* binary_mask = a.binary_mask
    cdef float* output = a.out
    cdef float scale = a.scale, m
    cdef Py_ssize_t i = start, k, n
    while i < end:
        n = min(<Py_ssize_t>CHUNK, end - i)
        load_ints(&a.draws, i, n, draws)
        for k in range(n):
            m = scale if draws[k] != 0 else 0
            binary_mask[i + k] = m
            output[i + k] = inputs[i + k] * m
        i += n


cdef void backward_range(void* ctx, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef const Args* a = <const Args*>ctx
    cdef const float* dvalues = a.values
    cdef const float* binary_mask = a.mask
    cdef float* dinputs = a.out
    cdef Py_ssize_t i
    for i in range(start, end):
        dinputs[i] = dvalues[i] * binary_mask[i]


cdef const float* contiguous(object a, str name) except? NULL:
    """The data of ``a``, an aligned C-contiguous native float32 ndarray."""
    if not cnp.PyArray_Check(a):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_TYPE(arr) != cnp.NPY_FLOAT32 or not cnp.PyArray_ISNOTSWAPPED(arr):
        raise TypeError(f"{name}: expected a native float32 array, got dtype {a.dtype}")
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)):
        raise ValueError(f"{name}: expected an aligned C-contiguous array")
    return <const float*>cnp.PyArray_DATA(arr)


cdef cnp.ndarray empty_like(object a):
    """A new C-contiguous float32 array of the shape of the ndarray ``a``."""
    cdef cnp.ndarray arr = <cnp.ndarray>a
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(arr), cnp.PyArray_DIMS(arr), cnp.NPY_FLOAT32, 0)


def dropout_forward(draws, inputs, double keep, int n_threads=1):
    """draws: np.random.binomial(1, keep, size=inputs.shape), any integer dtype; inputs: a
    C-contiguous float32 array -> (binary_mask, output), new float32 arrays of inputs' shape:
    binary_mask = draws / keep (float32(1 / keep) or 0), output = inputs * binary_mask."""
    cdef Args a
    a.values = contiguous(inputs, "inputs")
    if not 0 < keep <= 1:
        raise ValueError(f"keep: expected a probability in (0, 1], got {keep}")
    D = as_native(draws)
    if not cnp.PyArray_Check(D) or D.shape != inputs.shape:
        raise ValueError(f"draws: expected an array of shape {inputs.shape} (the inputs'), got "
                         f"{getattr(D, 'shape', type(D).__name__)}")
    a.draws = int_view(D, "draws", True)
    a.scale = <float>(1.0 / keep)
    binary_mask, output = empty_like(inputs), empty_like(inputs)
    a.binary_mask = <float*>cnp.PyArray_DATA(binary_mask)
    a.out = <float*>cnp.PyArray_DATA(output)
    with nogil:
        run_range(forward_range, &a, a.draws.n, n_threads, PAR_ELEMS // 2)
    return binary_mask, output


def dropout_backward(dvalues, binary_mask, int n_threads=1):
    """dvalues, binary_mask: C-contiguous float32 arrays of one shape -> dinputs = dvalues *
    binary_mask, a new float32 array of that shape."""
    cdef Args a
    a.mask = contiguous(binary_mask, "binary_mask")
    a.values = contiguous(dvalues, "dvalues")
    if dvalues.shape != binary_mask.shape:
        raise ValueError(f"dvalues: expected shape {binary_mask.shape} (the binary_mask's), "
                         f"got {dvalues.shape}")
    dinputs = empty_like(binary_mask)
    a.out = <float*>cnp.PyArray_DATA(dinputs)
    with nogil:
        run_range(backward_range, &a, cnp.PyArray_SIZE(<cnp.ndarray>dinputs), n_threads,
                  PAR_ELEMS // 2)
    return dinputs
