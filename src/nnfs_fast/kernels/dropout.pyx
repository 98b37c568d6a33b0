# Dropout kernels: the book's Bernoulli mask drawn natively, the mask scaling, the masked
# forward product and the masked gradient.
#
# Design
# ------
# The book draws ``np.random.binomial(1, keep, size)`` (int64 0/1) from NumPy's global legacy
# RandomState, then makes two float64 arrays: mask = draws / keep, output = inputs * mask.
# dropout_forward_rng does all of it in one pass over flat, C-contiguous arrays, storing float32
# and materialising no draws array:
#
#   draw           = the next legacy Binomial(1, keep) variate, made as NumPy makes it
#   binary_mask[i] = draw ? float32(1 / keep) : 0      (= float32(draw / keep))
#   output[i]      = inputs[i] * binary_mask[i]        (float32 product)
#
# and dropout_backward computes dinputs[i] = dvalues[i] * binary_mask[i]. Both allocate their
# outputs (the inputs' shape). The draws are read in place whatever their integer dtype (int64,
# int32 on Windows with NumPy 1): the type is switched on once per chunk, outside the loop.
# Work under PAR_ELEMS elements runs on the calling thread without touching the thread pool;
# larger work is split into one contiguous, cache-line-aligned block per thread
# (kernels/parallel.pxd's run_range). Each element is written by one thread, so results do not
# depend on the thread count, and (one rounding per product) nor on the platform.
#
# The draws are NumPy's own, bit for bit, and leave the RNG as NumPy's call would, because the
# kernel runs NumPy's legacy sampler on NumPy's own state:
#   * Which RandomState: the one np.random.binomial is bound to (np.random.mtrand._rand unless
#     replaced), resolved at every call.
#   * Its C fields (numpy/random/mtrand.pyx, ``cdef class RandomState``, unchanged since NumPy
#     1.17): ``bitgen_t _bitgen`` (a copy of the bit generator's, whose ``next_double`` gives
#     MT19937's 53-bit doubles), ``aug_bitgen_t _aug_state``, ``binomial_t _binomial`` (the
#     sampler's cache) and ``object lock``. legacy_fields() finds them in the object and accepts
#     them only if they hold what they must: a bitgen_t equal to the bit generator's capsule's
#     ("BitGenerator"), an _aug_state pointing at it, and the bit generator's lock right after
#     the binomial_t (laid out as mtrand is compiled, NP_RANDOM_LEGACY: ``long`` integers).
#   * The sampler: numpy/random/src/legacy/legacy-distributions.c (NumPy >= 2.4;
#     distributions.c's random_binomial_inversion before), ``legacy_random_binomial_original``
#     for n = 1: p <= 0.5 takes ``legacy_random_binomial_inversion(n, p)``, p > 0.5 its mirror
#     ``n - inversion(n, 1 - p)`` (n * p <= 30 always, so never BTPE), with no early return for
#     p == 0 or n == 0 (those draw too). draw_forward runs that loop specialised to n = 1 (the
#     derivation is above struct Bernoulli), including its rare branch (X > bound: start again
#     with a new uniform), and consumes exactly the uniforms NumPy's loop does.
#   * The uniforms: the bitgen_t's next_double through its pointer, or, when that pointer is
#     NumPy's MT19937 next_double (whose state layout is checked once, at import), MT19937
#     itself (numpy/random/src/mt19937/mt19937.{h,c}) run inline on that state: the words
#     tempered a block at a time, paired as mt19937_next_double pairs them. Those loops, and
#     the mask made from the uniforms, are kernels/dropout_targets.h's, compiled for the
#     baseline and for AVX2 (the one chosen at import follows the dense kernels' level; the
#     same bits either way): the draws are serial, so their speed is these loops' speed.
#   * The cache: NumPy reads q, qn, bound from _binomial when (n, p) match its key and fills it
#     on a miss. It is shared with RandomState.multinomial, which fills it through the
#     Generator's random_binomial_inversion with qn = exp(n * log1p(-p)) instead of
#     exp(n * log(1 - p)) (e.g. 0.7000000000000001 against 0.7 for p = 0.3), so the draws after
#     a multinomial call depend on the cache: the kernel uses and updates _binomial itself, as
#     NumPy does (once per call, before the first draw: within one locked call every later draw
#     hits; a call of size 0 makes no draw and leaves the cache alone).
#   * Concurrency: the draws run under the bit generator's lock, without the GIL, as
#     RandomState.binomial does (``with self.lock, nogil``), so other threads drawing from
#     np.random see a consistent RNG and the draws are in one piece.
# Where any of this cannot be verified (a RandomState laid out differently, np.random.binomial
# replaced by the user), dropout_forward_rng calls np.random.binomial itself and applies the
# mask with dropout_forward, today's exact path at today's speed.
#
# dropout_forward applies given draws (any integer dtype, read in place: the type is switched
# on once per chunk, outside the loop); dropout_backward computes dinputs[i] = dvalues[i] *
# binary_mask[i]. All allocate their outputs (the inputs' shape). Drawing is serial (one
# stream); the other passes run on the calling thread under PAR_ELEMS elements, without
# touching the thread pool, and larger work is split into one contiguous,
# cache-line-aligned block per thread (kernels/parallel.pxd's run_range). Each element is written by
# one thread, so results do not depend on the thread count.

cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.ref cimport PyObject
from libc.math cimport exp, log, sqrt
from libc.stdint cimport int64_t, uint32_t
from libc.string cimport memcmp

import numpy as np

from nnfs_fast.runtime import dispatch

from nnfs_fast.kernels.parallel cimport PAR_ELEMS, run_range, thresholds
from nnfs_fast.kernels.arrays cimport Ints, as_native, contiguous, int_view, load_ints

cnp.import_array()
globals().update(thresholds())   # PAR_WORK, PAR_ELEMS, ... for tests (kernels/parallel.pxd)


cdef extern from *:
    """
    /* binomial_t as mtrand is compiled (NP_RANDOM_LEGACY: RAND_INT_TYPE is long) */
    #define NP_RANDOM_LEGACY 1
    #include "numpy/random/distributions.h"

    /* numpy/random/src/legacy/legacy-distributions.h */
    typedef struct { bitgen_t *bit_generator; int has_gauss; double gauss; } nnfs_aug_bitgen_t;

    #include "dropout_targets.h"

    /* numpy/random/mtrand.pyx, cdef class RandomState: the C fields from _bitgen to lock */
    typedef struct {
        bitgen_t bitgen;
        nnfs_aug_bitgen_t aug_state;
        binomial_t binomial;
        PyObject *lock;
    } nnfs_legacy_fields;
    """
    ctypedef struct bitgen_t:
        void* state
        double (*next_double)(void* st) noexcept nogil

    ctypedef struct binomial_t:
        int has_binomial
        double psave
        long nsave
        double r
        double q
        double c
        long m

    ctypedef struct aug_bitgen_t "nnfs_aug_bitgen_t":
        bitgen_t* bit_generator

    enum: MT_N "NNFS_MT_N"      # words of the MT19937 state (kernels/dropout_targets.h)

    ctypedef struct mt19937_state "nnfs_mt19937_state":
        uint32_t key[MT_N]
        int pos

    ctypedef struct DropoutOps "nnfs_dropout_ops":
        const char* target
        void (*gen)(mt19937_state* state) noexcept nogil
        void (*temper)(const uint32_t* key, uint32_t* out, Py_ssize_t n) noexcept nogil
        void (*doubles)(const uint32_t* words, double* u, Py_ssize_t n) noexcept nogil
        int (*mask_words)(const uint32_t* words, Py_ssize_t n, double qn, double px1,
                          int mirror, float scale, const float* inputs, float* binary_mask,
                          float* out) noexcept nogil
        void (*masked_product)(const float* values, const float* mask, float* out,
                               Py_ssize_t n) noexcept nogil

    const DropoutOps nnfs_dropout_baseline
    const DropoutOps nnfs_dropout_avx2
    const int NNFS_HAVE_AVX2_TARGET

    ctypedef struct LegacyFields "nnfs_legacy_fields":
        bitgen_t bitgen
        aug_bitgen_t aug_state
        binomial_t binomial
        PyObject* lock

cdef enum:
    CHUNK = 256         # draws converted at a time (forward_range)


cdef struct Args:
    Ints draws              # IN   Bernoulli(keep) draws, 0 or 1
    const float* values     # IN   inputs (forward) or dvalues (backward)
    const float* mask       # IN   binary_mask (backward)
    float* binary_mask      # OUT  binary_mask (forward)
    float* out              # OUT  output (forward) or dinputs (backward)
    float scale             # float32(1 / keep)
    const DropoutOps* ops   # IN   the loops of the whole call (backward; _ops when it began)


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
    a.ops.masked_product(a.values + start, a.mask + start, a.out + start, end - start)


# NumPy's legacy Binomial(1, p) sampler (see the design note) ---------------------------------

cdef void binomial_cache(binomial_t* binomial, long n, double p) noexcept nogil:
    """The cache step of legacy_random_binomial_inversion: (re)fill binomial for (n, p) unless
    it holds them (then NumPy uses the values there, whoever computed them)."""
    cdef double q, np_, bound
    if not binomial.has_binomial or binomial.nsave != n or binomial.psave != p:
        binomial.nsave = n
        binomial.psave = p
        binomial.has_binomial = 1
        binomial.q = q = 1.0 - p
        binomial.r = exp(n * log(q))
        binomial.c = np_ = n * p
        bound = np_ + 10.0 * sqrt(np_ * q + 1)
        binomial.m = <long>(<double>n if n < bound else bound)      # (long)MIN(n, ...)


# legacy_random_binomial_inversion for n = 1 (p <= 0.5), after its cache step:
#
#     X = 0; px = qn; U = next_double();
#     while (U > px) {
#         X++;
#         if (X > bound) { X = 0; px = qn; U = next_double(); }
#         else { U -= px; px = ((n - X + 1) * p * px) / (X * q); }
#     }
#
# With n = 1 the bound is 1 (MIN(1, np + 10 sqrt(...)) and np + 10 sqrt(...) >= 10, whoever
# filled the cache: BTPE, the only writer with another formula, never has n = 1), and the
# second px is ((1 - 1 + 1) * p * qn) / (1 * q) = (p * qn) / q in the same double operations.
# So each uniform U, in sequence, makes one draw or none:
#     U <= qn                    -> X = 0
#     U > qn, U - qn <= px1      -> X = 1
#     U - qn > px1               -> none: the next uniform starts the draw again (the rare
#                                   branch; px1 >= 0, so it implies U > qn)
# and a draw takes as many uniforms as NumPy's loop does.

cdef struct Bernoulli:
    double qn               # the cache's r: exp(log(q)) (or the Generator's exp(log1p(-p)))
    double px1              # (p * qn) / q
    bint mirror             # keep > 0.5: the draw is 1 - X (X drawn with p = 1 - keep)


cdef Bernoulli bernoulli_setup(binomial_t* cache, double keep) noexcept nogil:
    """legacy_random_binomial_original for n = 1 up to the loop: the branch (p <= 0.5: the
    inversion with p; else n - the inversion with 1 - p; n * p <= 30 always, so never BTPE)
    and the cache step."""
    cdef Bernoulli b
    cdef double p
    b.mirror = not keep <= 0.5
    p = 1.0 - keep if b.mirror else keep
    binomial_cache(cache, 1, p)
    b.qn = cache.r
    b.px1 = (p * b.qn) / cache.q
    return b


# MT19937 (numpy/random/src/mt19937/mt19937.{h,c}), on the state of the legacy RandomState's
# bit generator when it is NumPy's MT19937 (see _find_mt19937_next_double). The loops are
# kernels/dropout_targets.h's, for the target chosen at import (_use_target) ----------------

cdef const DropoutOps* _ops = &nnfs_dropout_baseline


def _use_target(name):
    """Run the dropout loops (kernels/dropout_targets.h) compiled for ``name``: "baseline",
    or "avx2" where built and runnable (tests compare both with NumPy)."""
    global _ops
    name = dispatch.checked_loop_target(name, NNFS_HAVE_AVX2_TARGET)
    _ops = &nnfs_dropout_avx2 if name == "avx2" else &nnfs_dropout_baseline


def targets():
    """The targets the dropout loops can run as here: "baseline", and "avx2" where this
    build has them and this CPU runs AVX2 (kernels/targets.h)."""
    return dispatch.loop_targets(NNFS_HAVE_AVX2_TARGET)


def target():
    """The target the dropout loops run as (see kernels/dropout_targets.h)."""
    return _ops.target.decode()


cdef void mt19937_fill(const DropoutOps* ops, mt19937_state* state, uint32_t* out,
                       Py_ssize_t n) noexcept nogil:
    """out[i] = the i-th of the next n mt19937_next(state) (tempered words), the state left as
    those n calls leave it; with ops' loops (the caller's table, not _ops, which another thread
    may switch meanwhile)."""
    cdef Py_ssize_t i = 0, m
    while i < n:
        if state.pos == MT_N:
            ops.gen(state)
        m = min(n - i, <Py_ssize_t>(MT_N - state.pos))
        ops.temper(&state.key[state.pos], out + i, m)
        state.pos += <int>m
        i += m


cdef enum:
    UNIFORMS = 512      # uniforms drawn at a time (draw_forward)


cdef struct DrawArgs:
    LegacyFields* rs        # IN/OUT  the RandomState's bit generator and binomial cache
    mt19937_state* mt       # IN/OUT  its MT19937 state, or NULL (uniforms through next_double)
    double keep             # IN      Bernoulli probability, in (0, 1]
    const float* inputs     # IN
    float* binary_mask      # OUT
    float* out              # OUT
    Py_ssize_t n            # elements
    float scale             # float32(1 / keep)


cdef void draw_forward(DrawArgs* a) noexcept nogil:
    """Elements [0, n) in sequence: draw = np.random.binomial(1, keep), then the mask and the
    output. Uniforms come UNIFORMS at a time, never more than the draws left need (each makes
    at most one draw), so exactly NumPy's are consumed. With MT19937 inline, a batch without
    a rare-branch uniform (nearly all) goes from words to outputs in one vectorised pass
    (mask_words); otherwise its uniforms are applied one at a time."""
    cdef Bernoulli b
    cdef uint32_t words[2 * UNIFORMS]
    cdef double U[UNIFORMS]
    cdef Py_ssize_t i = 0, j, m
    cdef float scale = a.scale, mk
    cdef const DropoutOps* ops = _ops  # one target for the whole call (_use_target)
    if a.n == 0:        # NumPy makes no call: the cache stays as it is
        return
    b = bernoulli_setup(&a.rs.binomial, a.keep)
    while i < a.n:
        m = min(<Py_ssize_t>UNIFORMS, a.n - i)
        if a.mt != NULL:
            mt19937_fill(ops, a.mt, words, 2 * m)
            if not ops.mask_words(words, m, b.qn, b.px1, b.mirror, scale,
                                  a.inputs + i, a.binary_mask + i, a.out + i):
                i += m
                continue
            ops.doubles(words, U, m)      # the outputs [i, i + m) are all rewritten below
        else:
            for j in range(m):
                U[j] = a.rs.bitgen.next_double(a.rs.bitgen.state)
        for j in range(m):
            if U[j] - b.qn > b.px1:
                continue
            mk = scale if (U[j] > b.qn) != b.mirror else 0
            a.binary_mask[i] = mk
            a.out[i] = a.inputs[i] * mk
            i += 1


cdef LegacyFields* legacy_fields(object rs, object bit_generator, object lock) except? NULL:
    """The C fields of RandomState ``rs`` (see the design note), or NULL if its memory does not
    hold them as NumPy 1.17-2.x lays them out for ``bit_generator`` and its ``lock``."""
    capsule = getattr(bit_generator, "capsule", None)
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        return NULL
    cdef const bitgen_t* bitgen = <const bitgen_t*>PyCapsule_GetPointer(capsule, "BitGenerator")
    cdef char* base = <char*><PyObject*>rs
    cdef Py_ssize_t off, end = type(rs).__basicsize__ - <Py_ssize_t>sizeof(LegacyFields)
    cdef LegacyFields* f
    for off in range(sizeof(PyObject), end + 1, sizeof(void*)):
        f = <LegacyFields*>(base + off)
        if (f.lock == <PyObject*>lock and f.aug_state.bit_generator == &f.bitgen
                and memcmp(&f.bitgen, bitgen, sizeof(bitgen_t)) == 0):
            return f
    return NULL


cdef double (*_mt19937_next_double)(void* st) noexcept nogil


def _find_mt19937_next_double():
    """Set _mt19937_next_double to NumPy's MT19937 next_double if the state it reads is laid out
    as mt19937_state: checked on a private MT19937 (no lock to take) against its public state,
    the 624 keys and the position. Any bitgen_t with that next_double has such a state."""
    global _mt19937_next_double
    cdef const bitgen_t* bitgen
    cdef const mt19937_state* state
    probe = np.random.MT19937(20240601)
    probe.random_raw(5)                     # a position inside the block
    capsule = probe.capsule
    if not PyCapsule_IsValid(capsule, "BitGenerator"):
        return
    bitgen = <const bitgen_t*>PyCapsule_GetPointer(capsule, "BitGenerator")
    state = <const mt19937_state*>bitgen.state
    public = probe.state["state"]
    key = np.ascontiguousarray(public["key"], dtype=np.uint32)
    if (key.shape == (MT_N,) and state.pos == public["pos"]
            and memcmp(state.key, cnp.PyArray_DATA(key), sizeof(state.key)) == 0):
        _mt19937_next_double = bitgen.next_double


_mt19937_next_double = NULL
_find_mt19937_next_double()


_use_target(dispatch.loop_target(NNFS_HAVE_AVX2_TARGET))


def mt19937_inline():
    """True if MT19937 runs inline here (NumPy's MT19937 state layout checked out), False if
    its uniforms come through next_double's pointer (the same values, ~2.5x slower)."""
    return _mt19937_next_double != NULL


cdef bint same_dims(object a, object b):
    """Whether the ndarrays ``a`` and ``b`` have the same dimensions, read at C level (a
    subclass's ``shape`` attribute can say anything; the loops use these)."""
    cdef cnp.ndarray x = <cnp.ndarray>a, y = <cnp.ndarray>b
    cdef int d
    if cnp.PyArray_NDIM(x) != cnp.PyArray_NDIM(y):
        return False
    for d in range(cnp.PyArray_NDIM(x)):
        if cnp.PyArray_DIM(x, d) != cnp.PyArray_DIM(y, d):
            return False
    return True


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
    if not cnp.PyArray_Check(D) or not same_dims(D, inputs):
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


cdef object rng_hold(RngHold* h):
    rs = getattr(np.random.binomial, "__self__", None)
    if not isinstance(rs, np.random.RandomState):
        return None
    bit_generator = rs._bit_generator
    lock = getattr(bit_generator, "lock", None)
    if lock is None:
        return None
    cdef LegacyFields* f
    lock.acquire()
    try:
        f = legacy_fields(rs, bit_generator, lock)
    except BaseException:
        lock.release()
        raise
    if f == NULL:
        lock.release()
        return None
    h.fields = f
    h.mt = NULL
    if f.bitgen.next_double == _mt19937_next_double != NULL:
        h.mt = f.bitgen.state
    return lock


cdef void rng_draw(const RngHold* h, double keep, const float* inputs, float* binary_mask,
                   float* out, Py_ssize_t n) noexcept nogil:
    cdef DrawArgs a
    a.rs = <LegacyFields*>h.fields
    a.mt = <mt19937_state*>h.mt
    a.keep = keep
    a.scale = <float>(1.0 / keep)
    a.inputs, a.binary_mask, a.out, a.n = inputs, binary_mask, out, n
    draw_forward(&a)


def dropout_forward_rng(inputs, double keep, int n_threads=1):
    """inputs: a C-contiguous float32 array -> (binary_mask, output), new float32 arrays of
    inputs' shape: binary_mask = np.random.binomial(1, keep, size=inputs.shape) / keep
    (float32(1 / keep) or 0) and output = inputs * binary_mask, drawn natively from the
    RandomState behind np.random.binomial (same draws, same RNG state and binomial cache
    afterwards; see the design note). keep is checked before anything is drawn; n_threads
    serves the fallback's masking pass only (drawing is serial)."""
    cdef const float* x = contiguous(inputs, "inputs")
    if not 0 < keep <= 1:
        raise ValueError(f"keep: expected a probability in (0, 1], got {keep}")
    cdef Py_ssize_t n = cnp.PyArray_SIZE(<cnp.ndarray>inputs)
    cdef RngHold h
    lock = rng_hold(&h)
    if lock is None:
        return dropout_forward(np.random.binomial(1, keep, size=inputs.shape), inputs, keep,
                               n_threads)
    try:
        binary_mask, output = empty_like(inputs), empty_like(inputs)
        with nogil:
            rng_draw(&h, keep, x, <float*>cnp.PyArray_DATA(binary_mask),
                     <float*>cnp.PyArray_DATA(output), n)
    finally:
        lock.release()
    return binary_mask, output


def dropout_backward(dvalues, binary_mask, int n_threads=1):
    """dvalues, binary_mask: C-contiguous float32 arrays of one shape -> dinputs = dvalues *
    binary_mask, a new float32 array of that shape."""
    cdef Args a
    a.mask = contiguous(binary_mask, "binary_mask")
    a.values = contiguous(dvalues, "dvalues")
    if not same_dims(dvalues, binary_mask):
        raise ValueError(f"dvalues: expected shape {binary_mask.shape} (the binary_mask's), "
                         f"got {dvalues.shape}")
    dinputs = empty_like(binary_mask)
    with nogil:
        masked_product(a.values, a.mask, <float*>cnp.PyArray_DATA(dinputs),
                       cnp.PyArray_SIZE(<cnp.ndarray>dinputs), n_threads)
    return dinputs


cdef void masked_product(const float* values, const float* binary_mask, float* out,
                         Py_ssize_t n, int n_threads) noexcept nogil:
    cdef Args a
    a.values, a.mask, a.out, a.ops = values, binary_mask, out, _ops
    run_range(backward_range, &a, n, n_threads, PAR_ELEMS // 2)
