# Dropout kernels: the mask scaling, the masked forward product and the masked gradient.
#
# Design
# ------
# The Bernoulli draws stay in Python (np.random.binomial on NumPy's global legacy RNG), so a
# seeded run gets the book's masks. The book then makes three arrays from the int64 draws:
# mask = draws / keep (float64), output = inputs * mask. dropout_forward does that in one pass
# over flat, C-contiguous arrays, storing the mask as float32:
#
#   binary_mask[i] = float32(draws[i] / keep)      (0 or 1/keep rounded once)
#   output[i]      = inputs[i] * binary_mask[i]    (float32 product)
#
# and dropout_backward computes dinputs[i] = dvalues[i] * binary_mask[i].
# Each element is written by one thread, so results do not depend on the thread count; arrays
# under PAR_ELEMS elements run on the calling thread.

from cython.parallel cimport prange
from libc.stdint cimport int64_t

cdef enum:
    PAR_ELEMS = 32768   # below this many elements a pass runs on one thread (benchmarks/)


cdef int check_size(str name, Py_ssize_t got, Py_ssize_t n) except -1:
    if got != n:
        raise ValueError(f"{name}: expected {n} elements, got {got}")
    return 0


def dropout_forward(const int64_t[::1] draws,     # IN   Bernoulli(keep) draws, 0 or 1
                    const float[::1] inputs,      # IN
                    float[::1] binary_mask,       # OUT  draws / keep
                    float[::1] output,            # OUT  inputs * binary_mask
                    double keep, int n_threads=1):
    """Scale the draws into binary_mask and mask the inputs; flat arrays of one size."""
    cdef Py_ssize_t n = draws.shape[0], i
    check_size("inputs", inputs.shape[0], n)
    check_size("binary_mask", binary_mask.shape[0], n)
    check_size("output", output.shape[0], n)
    if not keep > 0:
        raise ValueError(f"keep: expected a probability > 0, got {keep}")
    cdef float m
    for i in prange(n, nogil=True, use_threads_if=n_threads > 1 and n >= PAR_ELEMS,
                    num_threads=n_threads, schedule="static"):
        m = <float>(draws[i] / keep)
        binary_mask[i] = m
        output[i] = inputs[i] * m


def dropout_backward(const float[::1] dvalues,     # IN
                     const float[::1] binary_mask,  # IN
                     float[::1] dinputs,            # OUT  dvalues * binary_mask
                     int n_threads=1):
    """dinputs = dvalues * binary_mask; flat arrays of one size."""
    cdef Py_ssize_t n = dvalues.shape[0], i
    check_size("binary_mask", binary_mask.shape[0], n)
    check_size("dinputs", dinputs.shape[0], n)
    for i in prange(n, nogil=True, use_threads_if=n_threads > 1 and n >= PAR_ELEMS,
                    num_threads=n_threads, schedule="static"):
        dinputs[i] = dvalues[i] * binary_mask[i]
