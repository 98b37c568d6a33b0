# The compiled training plan: a Model's whole step (forward, loss, accuracy count, backward,
# optimizer update) as one native call.
#
# Design
# ------
# Model.finalize() describes the layer stack to a TrainingPlan when every layer, the loss, the
# accuracy and the optimizer are the library's own classes (exact types; a subclass or a
# user-defined piece keeps the Python path). A step then costs one Python call instead of
# ~15 kernel calls with their argument checks, allocations and thread-count lookups.
#
#   describe     (finalize) a list of steps: DENSE [with the fused ReLU], RELU, SIGMOID,
#                SOFTMAX, LINEAR, DROPOUT; the loss (the fused softmax + categorical
#                cross-entropy, BCE, MSE, MAE) and the accuracy (categorical, binary,
#                regression)
#   prepare      (once per train/evaluate/predict call, and per epoch when shuffling) X read
#                in place when it is float32 (converted once otherwise), labels copied and
#                checked once (int64 class indices, or float32 targets and their values for
#                the accuracy)
#   step         per batch (predict: the forward pass alone), with the GIL: the parameters,
#                optimizer state and scalars read from the layers and checked
#                (identity-cached: a new array is checked once); then
#                without the GIL: every kernel in order on the plan's buffers; then the book's
#                attributes (layer.output, dweights, ...), the loss and accuracy totals and the
#                optimizer's counters, as the Python path leaves them. Anything the first part
#                cannot take (a deleted or broken attribute, parameters whose widths no
#                longer chain) raises Unavailable before anything changed: the Python path
#                runs that step and raises its own error at its own point of the step.
#
# Every kernel is the one the Python path calls (kernels/gemm/dense.pxi through the active
# level's DenseOps capsule, activations.pyx, losses.pyx, optimizers.pyx, dropout.pyx through
# their .pxd), on the same values in the same order, so the results are bit-identical to the
# Python path; tests/api/test_plan.py compares every attribute after training.
#
# Buffers: one set per batch size (outputs, masks, gradients; dweights and dbiases one per
# layer), reused from step to step. An array handed out as an attribute is written again
# only while nothing but the model's own attributes refers to it (reference counts recorded
# when it is handed out): an array a user or a callback kept is left as it was and the plan
# takes a new one.
# The book's legacy-RNG dropout masks are drawn under the RandomState's lock, held for the
# whole step (dropout.pyx's rng_hold/rng_draw), so the draws are NumPy's, in the book's order.
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.ref cimport Py_REFCNT
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset

import numpy as np

from nnfs_fast.kernels cimport activations as act
from nnfs_fast.kernels cimport dropout as drp
from nnfs_fast.kernels cimport losses as los
from nnfs_fast.kernels cimport optimizers as opt
from nnfs_fast.kernels.arrays cimport View2, as_float32, empty2, is_view2
from nnfs_fast.kernels.gemm.dense_ops cimport DENSE_OPS_CAPSULE, DenseOps
from nnfs_fast.kernels.parallel cimport PAR_ELEMS, RangeFn, run_range
from nnfs_fast.kernels.rows cimport (BINARY_CE, EXP_COST, SUM, ABSOLUTE_ERROR, SQUARED_ERROR,
                                     map_into, min_per_thread, pairwise_sum)
from nnfs_fast.runtime.openmp cimport omp_get_max_threads

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    object PyArray_Scalar(void* data, cnp.dtype descr, object base)

cdef cnp.dtype FLOAT32 = cnp.PyArray_DescrFromType(cnp.NPY_FLOAT32)
cdef cnp.dtype FLOAT64 = cnp.PyArray_DescrFromType(cnp.NPY_FLOAT64)

# step kinds
cdef enum:
    DENSE = 0
    RELU = 1
    SIGMOID = 2
    SOFTMAX = 3
    LINEAR = 4
    DROPOUT = 5

# losses (FUSED: the softmax layer and the categorical cross-entropy in one pass)
cdef enum:
    FUSED = 0
    BCE = 1
    MSE = 2
    MAE = 3

# accuracies
cdef enum:
    CATEGORICAL = 0
    BINARY = 1
    REGRESSION = 2

# optimizers
cdef enum:
    SGD = 0
    MOMENTUM = 1
    CACHE = 2       # Adagrad, RMSprop
    ADAM = 3

# buffer slots of step i: OUT (its output), AUX (dropout mask, or the fused ReLU's masked
# gradient), DIN (its dinputs); then the per-sample losses and the loss gradient
cdef enum:
    OUT = 0
    AUX = 1
    DIN = 2
    SLOTS = 3


cdef struct Step:
    int kind
    bint relu               # DENSE: the following ReLU is fused
    bint want_dinputs       # DENSE: not the first layer (nothing reads a first layer's dinputs)
    int param               # DENSE: index of its Param
    double keep             # DROPOUT: keep probability (read at each step)
    Py_ssize_t width        # output columns (-1 before the first DENSE fixes it)


cdef struct Param:
    View2 w, b
    float* dW
    float* db
    opt.Args wa, ba         # the optimizer's records (weights, biases)
    float wl1, wl2, bl1, bl2


cdef class _Buffers:
    """The arrays of one batch size: slot -> C-contiguous float32 array (or None)."""
    cdef Py_ssize_t n
    cdef list arrays
    cdef float** ptr
    cdef Py_ssize_t* refs   # reference counts when handed out (0: never handed out)
    cdef Py_ssize_t n_slots
    cdef list published     # (slot, object, attribute name): where _publish put each array
    cdef bint recorded      # published is complete (the same every step: recorded once)

    def __cinit__(self, Py_ssize_t n, Py_ssize_t n_slots):
        self.n = n
        self.n_slots = n_slots
        self.arrays = [None] * n_slots
        self.published = []
        self.recorded = False
        self.ptr = <float**>malloc(n_slots * sizeof(float*) + 1)
        self.refs = <Py_ssize_t*>malloc(n_slots * sizeof(Py_ssize_t) + 1)
        if self.ptr == NULL or self.refs == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        for i in range(n_slots):
            self.ptr[i] = NULL
            self.refs[i] = 0

    def __dealloc__(self):
        free(self.ptr)
        free(self.refs)

    cdef int need(self, Py_ssize_t slot, Py_ssize_t rows, Py_ssize_t cols) except -1:
        """An array (rows, cols) in ``slot``: the one there unless someone outside the model
        kept it (its reference count grew since it was handed out), else a new one."""
        a = self.arrays[slot]
        if a is not None and (self.refs[slot] == 0
                              or Py_REFCNT(a) - 1 <= self.refs[slot]) \
                and _has_shape(a, rows, cols):
            return 0
        a = empty2(rows, cols) if cols >= 0 else _empty1(rows)
        self.arrays[slot] = a
        self.ptr[slot] = <float*>cnp.PyArray_DATA(<cnp.ndarray>a)
        self.refs[slot] = 0
        return 0

    cdef int publish(self, Py_ssize_t slot, obj, str name) except -1:
        """obj.<name> = the array of slot (recorded for still_published)."""
        setattr(obj, name, self.arrays[slot])
        if not self.recorded:
            self.published.append((slot, obj, name))
        return 0

    cdef int still_published(self) except -1:
        """Mark for replacement every array of which an attribute it was handed out to now
        holds something else (e.g. predict's Python forward replaced layer.output): the
        attribute's reference is gone, so a user's reference would not raise the count
        above the one recorded."""
        cdef Py_ssize_t slot
        for slot, obj, name in self.published:
            if getattr(obj, name, None) is not self.arrays[slot]:
                self.refs[slot] = -1
        return 0

    cdef void handed_out(self):
        """Record every array's reference count (after the attributes were set)."""
        cdef Py_ssize_t i
        for i in range(self.n_slots):
            a = self.arrays[i]
            if a is not None:
                self.refs[i] = Py_REFCNT(a) - 1     # without ``a`` itself


cdef inline bint _has_shape(a, Py_ssize_t rows, Py_ssize_t cols):
    """Whether a (one of _Buffers' arrays) is (rows, cols), or (rows,) when cols < 0: the
    widths of a batch size's buffers change when a layer's parameters are replaced by ones
    of another shape."""
    cdef cnp.ndarray x = <cnp.ndarray>a
    if cols < 0:
        return cnp.PyArray_NDIM(x) == 1 and cnp.PyArray_DIM(x, 0) == rows
    return (cnp.PyArray_NDIM(x) == 2 and cnp.PyArray_DIM(x, 0) == rows
            and cnp.PyArray_DIM(x, 1) == cols)


cdef inline cnp.ndarray _empty1(Py_ssize_t n):
    cdef cnp.npy_intp dims[1]
    dims[0] = n
    return cnp.PyArray_EMPTY(1, dims, cnp.NPY_FLOAT32, 0)


cdef inline View2 _view(float* data, Py_ssize_t rows, Py_ssize_t cols) noexcept nogil:
    cdef View2 v
    v.data, v.rows, v.cols, v.rs, v.cs = data, rows, cols, cols, 1
    return v


cdef struct DataView:
    View2 xv                # X: float32 (N, F), any strides
    const int64_t* lab      # FUSED: class indices (N,), checked
    const float* targets    # BCE, MSE, MAE: float32 (N, K) C-contiguous
    const void* truth       # the accuracy's y (N, K) C-contiguous: float64, or float32 when
    bint truth32            # truth32 (REGRESSION)
    Py_ssize_t n_out        # K: the last Dense's width when prepared (the step checks it)


cdef class Data:
    """A train or evaluate call's data, as TrainingPlan.prepare checked and converted it."""
    cdef DataView v
    cdef object X, labels, targets, truth   # the arrays v points into
    cdef readonly Py_ssize_t n_rows

    @property
    def n_out(self):
        """The outputs per sample (the last Dense's width when prepared)."""
        return self.v.n_out


cdef class TrainingPlan:
    """One Model's step as one native call (see the module's design note).

    Built by ``Model.finalize`` from ``describe``'s list; ``set_data`` then ``step`` per batch.
    """
    cdef Step* steps
    cdef Param* params
    cdef int n_steps, n_params, loss, accuracy, optimizer
    cdef readonly object layers         # the model's layers, in order
    cdef object dense                   # the Layer_Dense objects, in order
    cdef list w_seen, b_seen            # the parameter arrays last checked, per Param
    cdef list state_seen                # the optimizer state arrays last checked, per Param
    cdef _Buffers grads                 # slot 2j: Param j's dweights, 2j + 1: its dbiases
    cdef dict buffers                   # (n, training) -> _Buffers
    cdef object keep_seen               # per DROPOUT step: the rate object last checked
    cdef DataView data                  # the data of the running step
    cdef readonly bint has_dropout
    cdef list relus                     # per step: the fused ReLU after a Dense, or None
    cdef object grad_owner              # its ``dinputs``: the loss gradient (softmax+CE, loss)
    cdef bint busy                      # a step is running (another thread must not enter)

    def __cinit__(self):
        self.steps = NULL
        self.params = NULL

    def __dealloc__(self):
        free(self.steps)
        free(self.params)

    def __init__(self, list steps, int loss, int accuracy, grad_owner):
        """steps: [(kind, layer, relu, want_dinputs)] in order, kind a STEP_CODES value; a
        DENSE step with relu (the Activation_ReLU object after it, else None) stands for the
        pair; loss, accuracy: LOSS_CODES, ACCURACY_CODES values; grad_owner: the object whose
        ``dinputs`` the loss gradient is (the model's softmax + cross-entropy object, or its
        loss), set with the other attributes."""
        self.grad_owner = grad_owner
        cdef int i, j = 0
        self.n_steps = len(steps)
        self.steps = <Step*>malloc(self.n_steps * sizeof(Step) + 1)
        self.n_params = sum(1 for s in steps if s[0] == DENSE)
        self.params = <Param*>malloc(self.n_params * sizeof(Param) + 1)
        if self.steps == NULL or self.params == NULL:
            raise MemoryError()
        self.layers = [s[1] for s in steps]
        self.relus = [s[2] for s in steps]
        self.busy = False
        self.dense = []
        self.has_dropout = False
        for i, (kind, layer, relu, want_dinputs) in enumerate(steps):
            self.steps[i].kind = kind
            self.steps[i].relu = relu is not None
            self.steps[i].want_dinputs = want_dinputs
            self.steps[i].param = -1
            self.steps[i].keep = 1
            if kind == DENSE:
                self.steps[i].param = j
                self.dense.append(layer)
                j += 1
            self.has_dropout |= kind == DROPOUT
        self.loss, self.accuracy, self.optimizer = loss, accuracy, -1
        self.w_seen = [None] * self.n_params
        self.b_seen = [None] * self.n_params
        self.state_seen = [None] * self.n_params
        self.grads = _Buffers(0, 2 * self.n_params)
        self.keep_seen = [None] * self.n_steps
        self.buffers = {}

    # ------------------------------------------------------------------------------- data

    def prepare(self, X, y):
        """The Data of X (N, n_inputs) and y (None for predict) for step() and predict(), or
        None when the plan cannot take them (then the caller runs the Python path): X read in
        place when float32, converted once otherwise; y copied and checked once (with the
        loss's messages; the caller reads the labels nowhere else during the call)."""
        try:        # X's errors are the Python path's to raise, where it raises them
            X = as_float32(X, "X")
        except (TypeError, ValueError):
            return None
        if cnp.PyArray_NDIM(<cnp.ndarray>X) != 2:
            return None
        if self.steps[0].kind == DROPOUT and not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>X):
            X = np.ascontiguousarray(X)
        if not is_view2(X):
            return None
        cdef cnp.ndarray x = <cnp.ndarray>X
        cdef Py_ssize_t N = cnp.PyArray_DIM(x, 0)
        cdef Py_ssize_t n_out = _dim(self.dense[len(self.dense) - 1].weights, 1)
        if cnp.PyArray_DIM(x, 1) != _dim(self.dense[0].weights, 0) or n_out < 0:
            return None
        cdef Data d = Data()
        d.X = X
        d.v.xv.data = <float*>cnp.PyArray_DATA(x)
        d.v.xv.rows, d.v.xv.cols = N, cnp.PyArray_DIM(x, 1)
        d.v.xv.rs = cnp.PyArray_STRIDE(x, 0) // 4
        d.v.xv.cs = cnp.PyArray_STRIDE(x, 1) // 4
        d.n_rows = N
        d.v.n_out = n_out
        cdef los.Labels t
        if y is None:
            return d
        y = np.asarray(y)
        if self.loss == FUSED:
            if y.ndim != 1 or len(y) != N or y.dtype.kind not in "iu":
                return None
            d.labels = los.labels(y, N, n_out, False, &t)
            d.v.lab = t.sparse
            return d
        if y.ndim != 2 or y.shape != (N, n_out) or y.dtype.kind not in "fiub":
            return None
        d.targets = np.ascontiguousarray(y, dtype=np.float32)
        d.v.targets = <const float*>cnp.PyArray_DATA(<cnp.ndarray>d.targets)
        if self.accuracy == REGRESSION:
            if y.dtype == np.float32:
                d.v.truth32 = True
            elif y.dtype == np.float64:
                d.v.truth32 = False
            else:
                return None
            d.truth = np.ascontiguousarray(y)
        else:
            d.truth = np.ascontiguousarray(y, dtype=np.float64)
        d.v.truth = cnp.PyArray_DATA(<cnp.ndarray>d.truth)
        return d

    # ------------------------------------------------------------------------------- step

    def step(self, Data data, Py_ssize_t start, Py_ssize_t n, bint training, optimizer,
             precision, loss, accuracy, batch_X):
        """Rows [start, start + n) of data (from prepare): forward (training: with dropout),
        the loss and the accuracy count; with training also backward and the update of
        ``optimizer`` (after its pre_update_params; its post_update_params is called here, last).
        Adds to loss's
        and accuracy's accumulated totals, sets the book's attributes (batch_X: the first
        layer's inputs) and returns (data_loss np.float32, accuracy np.float64), as
        Model.train's Python path computes them. Raises Unavailable, having changed nothing
        but conversions the Python path makes too, when this step needs that path."""
        self._enter(data, start, n, "train" if training else "evaluate")
        try:
            return self._step(start, n, training, optimizer, precision, loss, accuracy,
                              batch_X)
        finally:
            self.busy = False

    cdef _step(self, Py_ssize_t start, Py_ssize_t n, bint training, optimizer, precision,
               loss, accuracy, batch_X):
        cdef int nt = max(1, omp_get_max_threads())
        cdef DenseOps* ops = _dense_ops()
        cdef double prec = 0
        cdef float zero = 0
        cdef _Buffers buf
        try:
            self._read_parameters(training)
            if self.accuracy == REGRESSION:
                prec = self._precision(precision)
            buf = self._buffers(n, training)
            if training:
                self._read_optimizer(optimizer)
                optimizer.iterations + 1       # what post_update_params adds, after the run
            # the totals the step adds to after the run (the Python path: in its forward)
            loss.accumulated_sum + PyArray_Scalar(&zero, FLOAT32, None)
            loss.accumulated_count + n
            accuracy.accumulated_sum + n
            accuracy.accumulated_count + n
        except _Unavailable:
            raise
        except Exception as exc:
            # an attribute the Python path refuses (a deleted parameter, a rate of NaN, a
            # hyper-parameter of the wrong type, ...): that path raises its own error at its
            # own point of the step (after the forward's attributes and dropout draws)
            raise _Unavailable(f"{type(exc).__name__}: {exc}") from exc
        cdef drp.RngHold rng
        lock = None
        if training and self.has_dropout:
            lock = drp.rng_hold(&rng)
            if lock is None:
                raise _Unavailable("the legacy RandomState's layout was not recognized")
        cdef int err = 0
        cdef float total = 0
        cdef Py_ssize_t correct = 0
        try:
            with nogil:
                err = self._run(ops, buf, start, n, training, nt, &rng, prec, &total,
                                &correct)
        finally:
            if lock is not None:
                lock.release()
        if err:
            raise MemoryError("TrainingPlan.step: could not allocate packing buffers")
        self._publish(buf, batch_X, training)
        buf.handed_out()        # after _publish: its locals no longer count
        if training:
            self.grads.handed_out()
        cdef float count = n
        data_loss = PyArray_Scalar(&total, FLOAT32, None)
        loss.accumulated_sum += data_loss
        loss.accumulated_count += n
        cdef float mean = total / count
        cdef Py_ssize_t size = n * (1 if self.accuracy == CATEGORICAL else self.data.n_out)
        accuracy.accumulated_sum += correct
        accuracy.accumulated_count += n
        cdef double acc = <double>correct / <double>size
        if training:
            optimizer.post_update_params()      # last, as in the Python path's step
        return PyArray_Scalar(&mean, FLOAT32, None), PyArray_Scalar(&acc, FLOAT64, None)

    def predict(self, Data data, Py_ssize_t start, Py_ssize_t n, out, batch_X):
        """The model's outputs for rows [start, start + n) of data (inference: no dropout),
        written to rows [start, start + n) of out, a C-contiguous float32 (N, n_outputs)
        array; sets the layers' inputs and outputs as Model.forward does."""
        cdef cnp.ndarray o = <cnp.ndarray?>out
        if (cnp.PyArray_TYPE(o) != cnp.NPY_FLOAT32
                or not cnp.PyArray_IS_C_CONTIGUOUS(o) or cnp.PyArray_NDIM(o) != 2
                or cnp.PyArray_DIM(o, 0) != data.n_rows or cnp.PyArray_DIM(o, 1) != data.v.n_out
                or not cnp.PyArray_ISWRITEABLE(o)):
            raise ValueError(f"predict: expected a writable C-contiguous float32 array of shape "
                             f"{(data.n_rows, data.v.n_out)}, got {out.shape} {out.dtype}")
        self._enter(data, start, n, "predict")
        cdef int nt = max(1, omp_get_max_threads())
        cdef DenseOps* ops
        cdef _Buffers buf
        cdef int err
        cdef float* dest = <float*>cnp.PyArray_DATA(o) + start * data.v.n_out
        try:
            ops = _dense_ops()
            try:
                self._read_parameters(False)
                buf = self._buffers(n, False)
            except _Unavailable:
                raise
            except Exception as exc:    # the Python path's to raise (see _step)
                raise _Unavailable(f"{type(exc).__name__}: {exc}") from exc
            with nogil:
                err = self._run(ops, buf, start, n, False, nt, NULL, 0, NULL, NULL, dest)
            if err:
                raise MemoryError("TrainingPlan.predict: could not allocate packing buffers")
            self._publish(buf, batch_X, False)
            buf.handed_out()
        finally:
            self.busy = False

    cdef int _enter(self, Data data, Py_ssize_t start, Py_ssize_t n, str method) except -1:
        """Begin a step of ``method`` on rows [start, start + n) of data: one step at a time
        per plan (another thread's step would share its buffers)."""
        if start < 0 or n < 1 or start + n > data.n_rows:
            raise ValueError(f"{method}: rows [{start}, {start + n}) outside the data "
                             f"({data.n_rows} rows)")
        if self.busy:
            raise RuntimeError(f"Model.{method}: this model is already running a step in "
                               f"another thread; a model runs in one thread at a time")
        self.busy = True
        self.data = data.v
        return 0

    cdef double _precision(self, precision) except? -1:
        """Accuracy_Regression's precision as the value NumPy compares with: an np.float32
        with float32 targets, an np.float64 with float64 ones (Accuracy_Regression.init);
        anything else leaves the plan (its NumPy promotion depends on the version)."""
        if self.data.truth32 and isinstance(precision, np.float32):
            return <double><float>precision
        if not self.data.truth32 and isinstance(precision, np.float64):
            return <double>precision
        raise _Unavailable(f"precision of type {type(precision).__name__}")

    cdef int _read_parameters(self, bint training) except -1:
        """Fill the Params from the layers: arrays checked when they are new (identity
        cache, and the data, shape and strides recorded: an in-place ``a.shape = ...`` keeps
        the identity), regularization strengths and dropout keep probabilities read each
        step. Raises Unavailable when the widths do not chain (X, each Dense, the prepared
        targets): the Python path raises its error, or trains with the new widths."""
        cdef int j, i
        cdef Param* p
        cdef Py_ssize_t width = self.data.xv.cols
        if training:
            self.grads.still_published()
        for j in range(self.n_params):
            layer = self.dense[j]
            w, b = layer.weights, layer.biases
            p = &self.params[j]
            if (w is not self.w_seen[j] or b is not self.b_seen[j]
                    or not _unchanged(&p.w, w) or not _unchanged(&p.b, b)):
                self._check_parameters(j, layer, width)
            if p.w.rows != width:
                raise _Unavailable(f"Dense {j}: weights {p.w.rows} rows, inputs {width} wide")
            width = p.w.cols
            if training:        # dweights, dbiases: reused unless kept (as every buffer)
                self.grads.need(2 * j, p.w.rows, p.w.cols)
                self.grads.need(2 * j + 1, 1, p.w.cols)
                p.dW, p.db = self.grads.ptr[2 * j], self.grads.ptr[2 * j + 1]
                p.wa.grad, p.ba.grad = p.dW, p.db
            p.wl1 = layer.weight_regularizer_l1
            p.wl2 = layer.weight_regularizer_l2
            p.bl1 = layer.bias_regularizer_l1
            p.bl2 = layer.bias_regularizer_l2
        if width != self.data.n_out:
            raise _Unavailable(f"outputs {width} wide, prepared for {self.data.n_out}")
        if training:
            for i in range(self.n_steps):
                if self.steps[i].kind == DROPOUT:
                    layer = self.layers[i]
                    rate = layer.rate
                    if rate is not self.keep_seen[i]:
                        self.steps[i].keep = layer._keep()
                        self.keep_seen[i] = rate
        return 0

    cdef int _check_parameters(self, int j, layer, Py_ssize_t width) except -1:
        """Param j from the layer's weights (width rows: its inputs' width) and biases,
        converted as Layer_Dense._kernel converts them (and assigned) when the kernels would
        not take them as they are. Raises
        Unavailable, having assigned nothing, for parameters the Python path refuses with
        its own message (or takes: another width)."""
        w, b = layer.weights, layer.biases
        if not (_ready(w) and _ready(b)):
            # what the Python path ends with: Layer_Dense._parameters32's conversions, then
            # the optimizer's C-contiguous copies (optimizers.py's float32_attr)
            w, b = layer._parameters32()
            w, b = np.ascontiguousarray(w), np.ascontiguousarray(b)
            if not (_ready(w) and _ready(b)):
                raise _Unavailable("parameters not writable")
            if cnp.PyArray_DIM(<cnp.ndarray>w, 0) != width:
                raise _Unavailable("weights of another width")
            layer.weights, layer.biases = w, b
        cdef cnp.ndarray W = <cnp.ndarray>w, B = <cnp.ndarray>b
        cdef Py_ssize_t rows = cnp.PyArray_DIM(W, 0), cols = cnp.PyArray_DIM(W, 1)
        if cnp.PyArray_DIM(B, 0) != 1 or cnp.PyArray_DIM(B, 1) != cols:
            raise _Unavailable("biases of another width")   # the Python path's message
        cdef Param* p = &self.params[j]
        p.w.data, p.w.rows, p.w.cols = <float*>cnp.PyArray_DATA(W), rows, cols
        p.w.rs, p.w.cs = cnp.PyArray_STRIDE(W, 0) // 4, cnp.PyArray_STRIDE(W, 1) // 4
        p.b = _view(<float*>cnp.PyArray_DATA(B), 1, cols)
        self.w_seen[j], self.b_seen[j] = w, b
        self.state_seen[j] = None           # the optimizer's records point at the parameters
        return 0

    cdef int _read_optimizer(self, optimizer) except -1:
        """The optimizer's records of every Param: state arrays (checked when new, created
        when missing by optimizer._prepare_state, the book's rule) and the scalars of
        optimizer._kernel_call()."""
        cdef int j, k, pair0, pair1
        cdef Param* p
        cdef opt.Args hyper
        cdef tuple scalars, names
        memset(&hyper, 0, sizeof(hyper))
        code, names, scalars = optimizer._kernel_call()
        kind = OPTIMIZER_CODES[code]
        if kind != self.optimizer:
            self.optimizer = kind
            self.state_seen = [None] * self.n_params
        hyper.lr = scalars[0]
        if self.optimizer == MOMENTUM:
            hyper.momentum = scalars[1]
        elif self.optimizer == CACHE:
            hyper.rho, hyper.one_minus_rho, hyper.epsilon = scalars[1], scalars[2], scalars[3]
        elif self.optimizer == ADAM:
            hyper.beta_1, hyper.one_minus_beta_1 = scalars[1], scalars[2]
            hyper.beta_2, hyper.one_minus_beta_2 = scalars[3], scalars[4]
            hyper.momentum_correction, hyper.cache_correction = scalars[5], scalars[6]
            hyper.epsilon = scalars[7]
        for j in range(self.n_params):
            layer = self.dense[j]
            p = &self.params[j]
            seen = self.state_seen[j]
            fresh = seen is None
            if not fresh:
                for k in range(len(names)):
                    if getattr(layer, names[k], None) is not (<tuple>seen)[k]:
                        fresh = True
                        break
            if fresh or layer.weights is not self.w_seen[j] \
                    or layer.biases is not self.b_seen[j]:
                state = optimizer._prepare_state(layer)
                if layer.weights is not self.w_seen[j] or layer.biases is not self.b_seen[j]:
                    # replaced since _read_parameters (another thread): the buffers were
                    # sized for the old ones
                    raise _Unavailable("parameters replaced during the step")
                self._point_state(p, state)
                if (opt.written_overlap(&p.wa, &pair0, &pair1)
                        or opt.written_overlap(&p.ba, &pair0, &pair1)):
                    # state sharing memory with its parameter or other state: the Python
                    # path refuses it (kernels/optimizers.pyx's separate), with its message
                    raise _Unavailable("optimizer state shares memory")
                self.state_seen[j] = state
            _set_scalars(&p.wa, &hyper)
            _set_scalars(&p.ba, &hyper)
        return 0

    cdef int _point_state(self, Param* p, tuple state) except -1:
        """The optimizer records of p: parameters, gradients and the state arrays (weights'
        then biases': momentums and/or cache, each C-contiguous float32 of the parameter's
        shape: optimizer._prepare_state made sure)."""
        p.wa.param, p.wa.grad, p.wa.n = p.w.data, p.dW, p.w.rows * p.w.cols
        p.ba.param, p.ba.grad, p.ba.n = p.b.data, p.db, p.b.cols
        p.wa.momentums = p.wa.cache = p.ba.momentums = p.ba.cache = NULL
        if self.optimizer == MOMENTUM:
            p.wa.momentums, p.ba.momentums = _data(state[0]), _data(state[1])
        elif self.optimizer == CACHE:
            p.wa.cache, p.ba.cache = _data(state[0]), _data(state[1])
        elif self.optimizer == ADAM:
            p.wa.momentums, p.ba.momentums = _data(state[0]), _data(state[1])
            p.wa.cache, p.ba.cache = _data(state[2]), _data(state[3])
        return 0

    cdef _Buffers _buffers(self, Py_ssize_t n, bint training):
        """The buffer set for n rows (with the backward's arrays when training)."""
        key = (n, training)
        cdef _Buffers buf = self.buffers.get(key)
        if buf is None:
            if len(self.buffers) >= 8:
                self.buffers.clear()
            buf = _Buffers(n, SLOTS * self.n_steps + 2)
            self.buffers[key] = buf
        buf.still_published()
        cdef int i
        cdef Py_ssize_t width = self.data.xv.cols, in_width
        cdef Step* s
        for i in range(self.n_steps):
            s = &self.steps[i]
            in_width = width
            if s.kind == DENSE:
                width = self.params[s.param].w.cols
            s.width = width
            if s.kind == LINEAR or (s.kind == SOFTMAX and i == self.n_steps - 1
                                    and self.loss == FUSED):
                if s.kind == SOFTMAX:
                    buf.need(SLOTS * i + OUT, n, width)
                continue
            if s.kind == DROPOUT:
                if training:
                    buf.need(SLOTS * i + OUT, n, width)
                    buf.need(SLOTS * i + AUX, n, width)
                    buf.need(SLOTS * i + DIN, n, in_width)
                continue
            buf.need(SLOTS * i + OUT, n, width)
            if training:
                if s.kind == DENSE and s.relu:
                    buf.need(SLOTS * i + AUX, n, width)
                if s.kind != DENSE or s.want_dinputs:
                    buf.need(SLOTS * i + DIN, n, in_width)
        buf.need(SLOTS * self.n_steps, n, -1)                      # per-sample losses
        if training:
            buf.need(SLOTS * self.n_steps + 1, n, width)           # the loss gradient
        return buf

    # ------------------------------------------------------------------------ the native step

    cdef int _run(self, DenseOps* ops, _Buffers buf, Py_ssize_t start, Py_ssize_t n,
                  bint training, int nt, drp.RngHold* rng, double precision, float* total,
                  Py_ssize_t* correct, float* dest=NULL) noexcept nogil:
        """Forward, loss, accuracy count [, backward, update] on rows [start, start + n);
        with dest (predict): forward only, the outputs copied to dest (n x n_out).
        Returns 0, or -1 when a product could not allocate its packing buffers."""
        cdef DataView* data = &self.data
        cdef View2 cur = data.xv, prev, d, none
        cdef int i, j, L = self.n_steps
        cdef Step* s
        cdef Param* p
        cdef float** ptr = buf.ptr
        cdef float* losses = ptr[SLOTS * L]
        cdef float* grad = ptr[SLOTS * L + 1]
        cdef los.RowArgs r
        cdef act.RowArgs ra
        cdef float fn = n
        none.data = NULL
        none.rs = none.cs = 0
        cur.data = cur.data + start * cur.rs
        cur.rows = n
        # forward
        for i in range(L):
            s = &self.steps[i]
            if s.kind == DENSE:
                p = &self.params[s.param]
                if ops.forward(&cur, &p.w, p.b.data, s.relu, ptr[SLOTS * i + OUT], nt):
                    return -1
            elif s.kind == RELU:
                map_into(act.relu_row, 1, cur, cur, 0, 0, ptr[SLOTS * i + OUT], nt)
            elif s.kind == SIGMOID:
                map_into(act.sigmoid_row, EXP_COST, cur, cur, 0, 0, ptr[SLOTS * i + OUT], nt)
            elif s.kind == SOFTMAX:
                if i == L - 1 and self.loss == FUSED:
                    break       # with the loss, below
                ra.a = cur
                ra.out = ptr[SLOTS * i + OUT]
                run_range(act.softmax_range, &ra, n, nt, min_per_thread(EXP_COST * cur.cols))
            elif s.kind == LINEAR:
                continue
            elif s.kind == DROPOUT:
                if not training:
                    continue        # the output is the input (the Python path: a copy)
                drp.rng_draw(rng, s.keep, cur.data, ptr[SLOTS * i + AUX],
                             ptr[SLOTS * i + OUT], n * cur.cols)
            cur = _view(ptr[SLOTS * i + OUT], n, s.width)
        if dest != NULL:            # predict: the outputs (a last softmax computed alone)
            if self.loss == FUSED:
                ra.a = cur
                ra.out = ptr[SLOTS * (L - 1) + OUT]
                run_range(act.softmax_range, &ra, n, nt, min_per_thread(EXP_COST * cur.cols))
                cur = _view(ra.out, n, cur.cols)
            for i in range(n):
                memcpy(dest + i * cur.cols, cur.data + i * cur.rs, cur.cols * sizeof(float))
            return 0
        # loss: per-sample losses, their sum and mean; r.p = the predictions' view
        r.p = cur
        if self.loss == FUSED:
            r.t.sparse = data.lab + start
            r.t.onehot.data = NULL
        else:
            r.q = _view(<float*>data.targets + start * data.n_out, n, data.n_out)
        r.losses = losses
        if self.loss == FUSED:
            r.out = ptr[SLOTS * (L - 1) + OUT]
            run_range(los.softmax_crossentropy_range, &r, n, nt,
                      min_per_thread(EXP_COST * cur.cols))
            r.p = _view(r.out, n, cur.cols)
        else:
            r.kind = (BINARY_CE if self.loss == BCE else
                      SQUARED_ERROR if self.loss == MSE else ABSOLUTE_ERROR)
            run_range(los.sample_losses_range, &r, n, nt,
                      min_per_thread((2 * EXP_COST if self.loss == BCE else 2) * cur.cols))
        total[0] = pairwise_sum(SUM, losses, 1, losses, 1, n)
        correct[0] = self._count_correct(r.p, start, precision)
        if not training:
            return 0
        # backward: the loss gradient, then the layers in reverse
        if self.loss == FUSED:
            r.kind = los.SOFTMAX_CROSSENTROPY
            r.out = grad
            run_range(los.sparse_grad_range, &r, n, nt, min_per_thread(3 * r.p.cols))
        else:
            map_into(los.bce_grad_row if self.loss == BCE else
                     los.mse_grad_row if self.loss == MSE else los.mae_grad_row,
                     4, r.p, r.q, <float>r.p.cols, fn, grad, nt)
        d = _view(grad, n, r.p.cols)
        for i in range(L - 1, -1, -1):
            s = &self.steps[i]
            if s.kind == SOFTMAX and i == L - 1 and self.loss == FUSED:
                continue
            prev = self._input_of(i, buf, start, n)
            if s.kind == DENSE:
                p = &self.params[s.param]
                if s.relu:
                    cur = _view(ptr[SLOTS * i + OUT], n, s.width)
                else:
                    cur = none
                if ops.backward(&prev, &p.w, &p.b, &d, &cur, ptr[SLOTS * i + AUX], p.dW, p.db,
                                ptr[SLOTS * i + DIN] if s.want_dinputs else NULL,
                                p.wl1, p.wl2, p.bl1, p.bl2, nt):
                    return -1
            elif s.kind == RELU:
                map_into(act.relu_grad_row, 1, prev, d, 0, 0, ptr[SLOTS * i + DIN], nt)
            elif s.kind == SIGMOID:
                map_into(act.sigmoid_grad_row, 2, _view(ptr[SLOTS * i + OUT], n, s.width), d,
                         0, 0, ptr[SLOTS * i + DIN], nt)
            elif s.kind == SOFTMAX:
                ra.a = _view(ptr[SLOTS * i + OUT], n, s.width)
                ra.b = d
                ra.out = ptr[SLOTS * i + DIN]
                run_range(act.softmax_grad_range, &ra, n, nt, min_per_thread(4 * s.width))
            elif s.kind == LINEAR:
                continue
            elif s.kind == DROPOUT:
                drp.masked_product(d.data, ptr[SLOTS * i + AUX], ptr[SLOTS * i + DIN],
                                   n * s.width, nt)
            d = _view(ptr[SLOTS * i + DIN], n, prev.cols)
        # update
        for j in range(self.n_params):
            p = &self.params[j]
            _update(self.optimizer, &p.wa, nt)
            _update(self.optimizer, &p.ba, nt)
        return 0

    cdef inline View2 _input_of(self, int i, _Buffers buf, Py_ssize_t start,
                                Py_ssize_t n) noexcept nogil:
        """The view of step i's inputs: the previous step's output (through LINEAR steps and
        dropout in inference, which pass their input on), or the batch of X."""
        cdef View2 v
        cdef int k = i - 1
        while k >= 0 and self.steps[k].kind == LINEAR:
            k -= 1
        if k < 0:
            v = self.data.xv
            v.data = v.data + start * v.rs
            v.rows = n
            return v
        return _view(buf.ptr[SLOTS * k + OUT], n, self.steps[k].width)

    cdef Py_ssize_t _count_correct(self, View2 p, Py_ssize_t start,
                                   double precision) noexcept nogil:
        """The accuracy's count of correct comparisons: argmax == label (categorical),
        (p > 0.5) == y (binary), |p - y| < precision (regression)."""
        cdef Py_ssize_t i, j, c = 0, best, K = p.cols
        cdef float v, m
        cdef const double* y64
        cdef const float* y32
        cdef double t
        cdef DataView* data = &self.data
        if self.accuracy == CATEGORICAL:
            for i in range(p.rows):
                best = 0
                m = p.data[i * p.rs]
                if m == m:
                    for j in range(1, K):
                        v = p.data[i * p.rs + j]
                        if v != v:              # np.argmax: the first NaN
                            best = j
                            break
                        if v > m:
                            m = v
                            best = j
                c += best == data.lab[start + i]
            return c
        if self.accuracy == BINARY:
            y64 = <const double*>data.truth + start * K
            for i in range(p.rows * K):
                t = 1.0 if p.data[i] > 0.5 else 0.0
                c += t == y64[i]
            return c
        if data.truth32:
            y32 = <const float*>data.truth + start * K
            for i in range(p.rows * K):
                v = p.data[i] - y32[i]
                c += <double>(v if v >= 0 else -v) < precision
            return c
        y64 = <const double*>data.truth + start * K
        for i in range(p.rows * K):
            t = <double>p.data[i] - y64[i]
            c += (t if t >= 0 else -t) < precision
        return c

    # ------------------------------------------------------------------- the book's attributes

    cdef int _publish(self, _Buffers buf, batch_X, bint training) except -1:
        """Set the attributes the Python path leaves: each layer's inputs and output, and
        after a training step its dinputs (dweights, dbiases for Dense; binary_mask for
        dropout; a fused ReLU's too). Buffers are handed out through buf.publish."""
        cdef int i, L = self.n_steps
        cdef Py_ssize_t cur = -1, d     # the slot of the array passed on (-1: batch_X)
        cdef Step* s
        if not buf.recorded:
            buf.published = []
        if training and not self.grads.recorded:
            self.grads.published = []
        for i in range(L):
            s = &self.steps[i]
            layer = self.layers[i]
            _hand(buf, cur, batch_X, layer, "inputs")
            if s.kind == LINEAR or (s.kind == DROPOUT and not training):
                _hand(buf, cur, batch_X, layer, "output")
                continue
            buf.publish(SLOTS * i + OUT, layer, "output")
            if s.kind == DENSE:
                if s.relu:
                    buf.publish(SLOTS * i + OUT, self.relus[i], "inputs")
                    buf.publish(SLOTS * i + OUT, self.relus[i], "output")
            elif s.kind == DROPOUT:
                buf.publish(SLOTS * i + AUX, layer, "binary_mask")
            cur = SLOTS * i + OUT
        if training:
            d = SLOTS * L + 1
            buf.publish(d, self.grad_owner, "dinputs")
            for i in range(L - 1, -1, -1):
                s = &self.steps[i]
                layer = self.layers[i]
                if s.kind == LINEAR or (s.kind == SOFTMAX and i == L - 1
                                        and self.loss == FUSED):
                    buf.publish(d, layer, "dinputs")
                    continue
                if s.kind == DENSE:
                    j = s.param
                    self.grads.publish(2 * j, layer, "dweights")
                    self.grads.publish(2 * j + 1, layer, "dbiases")
                    if s.relu:
                        buf.publish(SLOTS * i + AUX, self.relus[i], "dinputs")
                    if not s.want_dinputs:
                        layer.dinputs = None
                        continue
                d = SLOTS * i + DIN
                buf.publish(d, layer, "dinputs")
        buf.recorded = True
        if training:
            self.grads.recorded = True
        return 0


cdef inline int _hand(_Buffers buf, Py_ssize_t slot, batch_X, obj, str name) except -1:
    """obj.<name> = the array of slot, or batch_X when slot is -1."""
    if slot < 0:
        setattr(obj, name, batch_X)
    else:
        buf.publish(slot, obj, name)
    return 0


class _Unavailable(Exception):
    """The plan cannot run this step; the model runs the Python path instead."""


cdef inline bint _ready(a):
    """An aligned native float32 2-D C-contiguous writable ndarray."""
    return (is_view2(a) and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)
            and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a))


cdef inline bint _unchanged(const View2* v, a):
    """Whether ``a`` (checked before, v read from it) still has v's data, shape and
    strides and is writable: its identity alone misses ``a.shape = ...`` or
    ``a.resize(..., refcheck=False)`` made in place."""
    if not _ready(a):
        return False
    cdef cnp.ndarray x = <cnp.ndarray>a
    return (<float*>cnp.PyArray_DATA(x) == v.data and cnp.PyArray_DIM(x, 0) == v.rows
            and cnp.PyArray_DIM(x, 1) == v.cols)


cdef inline Py_ssize_t _dim(a, int axis):
    """np.shape(a)[axis] of a 2-D parameter, else -1."""
    shape = np.shape(a)
    return shape[axis] if len(shape) == 2 else -1


cdef inline float* _data(a):
    return <float*>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline void _set_scalars(opt.Args* a, const opt.Args* hyper) noexcept nogil:
    a.lr, a.momentum, a.rho, a.one_minus_rho = hyper.lr, hyper.momentum, hyper.rho, \
        hyper.one_minus_rho
    a.beta_1, a.one_minus_beta_1, a.beta_2, a.one_minus_beta_2 = \
        hyper.beta_1, hyper.one_minus_beta_1, hyper.beta_2, hyper.one_minus_beta_2
    a.momentum_correction, a.cache_correction, a.epsilon = \
        hyper.momentum_correction, hyper.cache_correction, hyper.epsilon


cdef inline void _update(int kind, opt.Args* a, int nt) noexcept nogil:
    cdef RangeFn fn = (opt.sgd_range if kind == SGD else
                       opt.sgd_momentum_range if kind == MOMENTUM else
                       opt.cache_range if kind == CACHE else opt.adam_range)
    run_range(fn, a, a.n, nt, PAR_ELEMS // 2)


cdef object _ops_module = None
cdef DenseOps* _ops = NULL


cdef DenseOps* _dense_ops() except NULL:
    """The active level's dense passes (runtime/dispatch.py's kernels module)."""
    global _ops_module, _ops
    from nnfs_fast.runtime import dispatch
    module = dispatch.kernels
    if module is not _ops_module:
        capsule = module.dense_ops()
        if not PyCapsule_IsValid(capsule, DENSE_OPS_CAPSULE):
            raise RuntimeError(f"{module.__name__}.dense_ops(): not a DenseOps capsule")
        _ops = <DenseOps*>PyCapsule_GetPointer(capsule, DENSE_OPS_CAPSULE)
        _ops_module = module
    return _ops


STEP_CODES = {"dense": DENSE, "relu": RELU, "sigmoid": SIGMOID, "softmax": SOFTMAX,
              "linear": LINEAR, "dropout": DROPOUT}
LOSS_CODES = {"fused": FUSED, "bce": BCE, "mse": MSE, "mae": MAE}
ACCURACY_CODES = {"categorical": CATEGORICAL, "binary": BINARY, "regression": REGRESSION}
OPTIMIZER_CODES = {"sgd": SGD, "momentum": MOMENTUM, "cache": CACHE, "adam": ADAM}
Unavailable = _Unavailable
