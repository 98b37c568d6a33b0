# The dropout kernels for the training plan (kernels/plan.pyx): the book's masks drawn natively
# from NumPy's legacy RandomState under its lock, and the masked product; dropout.pyx defines
# them (see its design note).

ctypedef struct RngHold:
    void* fields            # the RandomState's C fields (dropout.pyx's LegacyFields)
    void* mt                # its MT19937 state when it runs inline, else NULL

# with the GIL: the lock of the RandomState behind np.random.binomial, acquired, and *h filled
# for rng_draw; None (nothing acquired) where the native sampler cannot be used
cdef object rng_hold(RngHold* h)
# binary_mask[i] = np.random.binomial(1, keep) / keep (float32), out[i] = inputs[i] * mask[i]
# for i < n, in sequence; the lock rng_hold returned must be held
cdef void rng_draw(const RngHold* h, double keep, const float* inputs, float* binary_mask,
                   float* out, Py_ssize_t n) noexcept nogil
# out[i] = values[i] * binary_mask[i] for i < n (dropout's backward)
cdef void masked_product(const float* values, const float* binary_mask, float* out,
                         Py_ssize_t n, int n_threads) noexcept nogil
