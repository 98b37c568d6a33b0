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
# and dropout_backward computes dinputs[i] = dvalues[i] * binary_mask[i].
# Work under PAR_ELEMS elements runs on the calling thread without entering the OpenMP runtime
# (a prange with use_threads_if=False still costs about 1.5 us); larger work is split into one
# contiguous, cache-line-aligned block per thread. Each element is written by one thread, so
# results do not depend on the thread count.

from cython.parallel cimport prange
from libc.stdint cimport int64_t

cdef enum:
    PAR_ELEMS = 32768   # below this many elements a pass runs on one thread (benchmarks/)
    ALIGN = 16          # floats per 64-byte cache line: per-thread blocks start on one


cdef struct Args:
    const int64_t* draws    # IN   Bernoulli(keep) draws, 0 or 1
    const float* values     # IN   inputs (forward) or dvalues (backward)
    const float* mask       # IN   binary_mask (backward)
    float* binary_mask      # OUT  binary_mask (forward)
    float* out              # OUT  output (forward) or dinputs (backward)
    float scale             # float32(1 / keep)

ctypedef void (*RangeFn)(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil


cdef void parallel_for(RangeFn fn, const Args* a, Py_ssize_t n, int n_threads) noexcept nogil:
    """fn(a, start, end) over [0, n): serially, or one aligned block per thread."""
    cdef Py_ssize_t t, block
    if n_threads <= 1 or n < PAR_ELEMS:
        fn(a, 0, n)
        return
    block = ((n + n_threads - 1) // n_threads + ALIGN - 1) // ALIGN * ALIGN
    for t in prange(n_threads, num_threads=n_threads, schedule="static"):
        fn(a, min(n, t * block), min(n, (t + 1) * block))


cdef void forward_range(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef const int64_t* draws = a.draws
    cdef const float* inputs = a.values
    cdef float* binary_mask = a.binary_mask
    cdef float* output = a.out
    cdef float scale = a.scale, m
    cdef Py_ssize_t i
    for i in range(start, end):
        m = scale if draws[i] != 0 else 0
        binary_mask[i] = m
        output[i] = inputs[i] * m


cdef void backward_range(const Args* a, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef const float* dvalues = a.values
    cdef const float* binary_mask = a.mask
    cdef float* dinputs = a.out
    cdef Py_ssize_t i
    for i in range(start, end):
        dinputs[i] = dvalues[i] * binary_mask[i]


cdef int check_size(str name, Py_ssize_t got, Py_ssize_t n) except -1:
    if got != n:
        raise ValueError(f"{name}: expected {n} elements, got {got}")
    return 0


def dropout_forward(const int64_t[::1] draws,     # IN   np.random.binomial(1, keep, ...)
                    const float[::1] inputs,      # IN
                    float[::1] binary_mask,       # OUT  draws / keep
                    float[::1] output,            # OUT  inputs * binary_mask
                    double keep, int n_threads=1):
    """Scale the 0/1 draws into binary_mask and mask the inputs; flat arrays of one size."""
    cdef Py_ssize_t n = draws.shape[0]
    check_size("inputs", inputs.shape[0], n)
    check_size("binary_mask", binary_mask.shape[0], n)
    check_size("output", output.shape[0], n)
    if not 0 < keep <= 1:
        raise ValueError(f"keep: expected a probability in (0, 1], got {keep}")
    if n == 0:
        return
    cdef Args a
    a.draws, a.values, a.binary_mask, a.out = &draws[0], &inputs[0], &binary_mask[0], &output[0]
    a.scale = <float>(1.0 / keep)
    with nogil:
        parallel_for(forward_range, &a, n, n_threads)


def dropout_backward(const float[::1] dvalues,     # IN
                     const float[::1] binary_mask,  # IN
                     float[::1] dinputs,            # OUT  dvalues * binary_mask
                     int n_threads=1):
    """dinputs = dvalues * binary_mask; flat arrays of one size."""
    cdef Py_ssize_t n = dvalues.shape[0]
    check_size("binary_mask", binary_mask.shape[0], n)
    check_size("dinputs", dinputs.shape[0], n)
    if n == 0:
        return
    cdef Args a
    a.values, a.mask, a.out = &dvalues[0], &binary_mask[0], &dinputs[0]
    with nogil:
        parallel_for(backward_range, &a, n, n_threads)
