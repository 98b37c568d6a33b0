"""Layers of the book's framework: ``Layer_Dense`` (on the kernels of ``kernels/gemm/dense.pxi``),
``Layer_Dropout`` (``kernels/dropout.pyx``) and ``Layer_Input``."""
import numbers

import numpy as np

from nnfs_fast._validation import as_float32_2d, as_float32_c, check_size, check_strength
from nnfs_fast.kernels import dropout as _dropout
from nnfs_fast.runtime.dispatch import kernels
from nnfs_fast.runtime.openmp import get_num_threads

_F32 = np.float32


class Layer_Dense:
    """Fully connected layer: ``output = inputs . weights + biases``.

    Args:
        n_inputs, n_neurons: layer sizes.
        weight_regularizer_l1, weight_regularizer_l2, bias_regularizer_l1, bias_regularizer_l2:
            regularization strengths (added to the gradients when > 0).
    Attributes:
        weights: (n_inputs, n_neurons) float32, ``0.01 * np.random.randn(...)`` from NumPy's
            global legacy RNG (the book's draw); biases: (1, n_neurons) float32 zeros.
        inputs, output (n_samples, n_neurons), dweights, dbiases, dinputs: set by
            ``forward``/``backward`` as in the book.
    Inputs of another dtype are converted to float32 (one copy); float32 inputs of any
    layout are used in place.
    """

    def __init__(self, n_inputs, n_neurons, weight_regularizer_l1=0, weight_regularizer_l2=0,
                 bias_regularizer_l1=0, bias_regularizer_l2=0):
        check_size(n_inputs, "n_inputs")
        check_size(n_neurons, "n_neurons")
        regularizers = self._regularizers(weight_regularizer_l1, weight_regularizer_l2,
                                          bias_regularizer_l1, bias_regularizer_l2)
        self._assign(_F32(0.01) * np.asarray(np.random.randn(n_inputs, n_neurons), dtype=_F32),
                     np.zeros((1, n_neurons), dtype=_F32), regularizers)

    @classmethod
    def _from_arrays(cls, weights, biases, weight_regularizer_l1=0, weight_regularizer_l2=0,
                     bias_regularizer_l1=0, bias_regularizer_l2=0):
        """A layer holding ``weights`` (n_inputs, n_neurons) and ``biases`` (1, n_neurons),
        both float32 ndarrays, as they are (no copy), without the constructor's random draw:
        loading a model neither draws float64 weights of the full size nor moves NumPy's
        global RNG. Raises TypeError/ValueError for other dtypes, shapes or regularizers."""
        regularizers = cls._regularizers(weight_regularizer_l1, weight_regularizer_l2,
                                         bias_regularizer_l1, bias_regularizer_l2)
        for name, array in (("weights", weights), ("biases", biases)):
            if not isinstance(array, np.ndarray) or array.dtype != _F32:
                raise TypeError(f"Layer_Dense: {name} must be a float32 ndarray, got "
                                f"{getattr(array, 'dtype', type(array).__name__)}")
        if weights.ndim != 2 or 0 in weights.shape:
            raise ValueError(f"Layer_Dense: weights must have shape (n_inputs, n_neurons) with "
                             f"both >= 1, got {weights.shape}")
        if biases.shape != (1, weights.shape[1]):
            raise ValueError(f"Layer_Dense: biases must have shape (1, {weights.shape[1]}) to "
                             f"match weights {weights.shape}, got {biases.shape}")
        layer = cls.__new__(cls)
        layer._assign(weights, biases, regularizers)
        return layer

    def _assign(self, weights, biases, regularizers):
        """Set the parameters and the four regularization strengths (the book's attributes)."""
        self.weights = weights
        self.biases = biases
        (self.weight_regularizer_l1, self.weight_regularizer_l2,
         self.bias_regularizer_l1, self.bias_regularizer_l2) = regularizers

    @staticmethod
    def _regularizers(*values):
        """The four regularization strengths (weight l1, l2, bias l1, l2), each checked to be
        a finite real >= 0."""
        for name, value in zip(("weight_regularizer_l1", "weight_regularizer_l2",
                                "bias_regularizer_l1", "bias_regularizer_l2"), values):
            check_strength(value, name)
        return values

    def __repr__(self):
        n_in, n_out = np.shape(self.weights)
        regs = "".join(f", {k}={getattr(self, k)}" for k in (
            "weight_regularizer_l1", "weight_regularizer_l2", "bias_regularizer_l1",
            "bias_regularizer_l2") if getattr(self, k))
        return f"Layer_Dense(n_inputs={n_in}, n_neurons={n_out}{regs})"

    def _parameters32(self):
        """The weights and biases as float32 2-D arrays: user-assigned ones of another dtype,
        lists or 1-D biases are converted (one copy each, or a reshaped view). Assigns
        nothing; raises TypeError/ValueError naming the attribute."""
        weights = as_float32_2d(self.weights, "weights")
        biases = self.biases
        if np.ndim(biases) != 2:
            biases = np.reshape(biases, (1, -1))
        return weights, as_float32_2d(biases, "biases", weights.shape[1])

    def forward(self, inputs, training=False):
        """inputs: (n_samples, n_inputs) -> self.output (n_samples, n_neurons) float32."""
        self.output = self._forward(inputs, False)
        self.inputs = inputs

    # The Python entry of the book's per-layer loop, paid on every call: one C-level check,
    # ``parameters_ready``, then the kernel with the attributes as they are. Parameters the
    # kernel cannot take (float64, lists, 1-D biases, unaligned) are converted first by
    # ``_parameters32`` and replace the attributes only once the kernel has accepted them, so
    # a call refused for its other arguments (e.g. inputs of the wrong width) leaves the layer
    # as it was. No closure or helper call per step: the two entries below spell this out.

    def _forward(self, inputs, relu):
        """inputs (n_samples, n_inputs) -> a new float32 (n_samples, n_neurons) array, through
        a fused ReLU when relu."""
        weights, biases = self.weights, self.biases
        ready = kernels.parameters_ready(weights, biases)
        if not ready:
            weights, biases = self._parameters32()
        output = kernels.dense_forward(inputs, weights, biases, relu, get_num_threads())
        if not ready:
            self.weights, self.biases = weights, biases
        return output

    def backward(self, dvalues):
        """dvalues: (n_samples, n_neurons) -> dweights, dbiases, dinputs."""
        self._backward(dvalues, None, None)

    def _backward(self, dvalues, relu_output, dvalues_masked, want_dinputs=True):
        """Gradients; with relu_output (a fused ReLU's output) dvalues are masked first, into
        dvalues_masked (allocated when None), which is returned. Without want_dinputs (a
        model's first layer, whose input gradient nothing reads) dinputs is set to None."""
        weights, biases = self.weights, self.biases
        ready = kernels.parameters_ready(weights, biases)
        if not ready:
            weights, biases = self._parameters32()
        self.dweights, self.dbiases, self.dinputs, dvalues_masked = kernels.dense_backward(
            self.inputs, weights, biases, dvalues, relu_output, dvalues_masked,
            self.weight_regularizer_l1, self.weight_regularizer_l2,
            self.bias_regularizer_l1, self.bias_regularizer_l2, want_dinputs,
            get_num_threads())
        if not ready:
            self.weights, self.biases = weights, biases
        return dvalues_masked

    def get_parameters(self):
        """(weights, biases): the live arrays."""
        return self.weights, self.biases

    def set_parameters(self, weights, biases):
        """Assign weights (n_inputs, n_neurons) and biases (1, n_neurons) (the objects
        themselves, as the book does; their shapes are checked first)."""
        w_shape, b_shape = np.shape(weights), np.shape(biases)
        if len(w_shape) != 2:
            raise ValueError(f"weights: expected a 2-D array (n_inputs, n_neurons), got shape "
                             f"{w_shape}")
        if b_shape not in ((1, w_shape[1]), (w_shape[1],)):
            raise ValueError(f"biases: expected shape (1, {w_shape[1]}) to match weights "
                             f"{w_shape}, got {b_shape}")
        self.weights = weights
        self.biases = biases


class Layer_Dropout:
    """Inverted dropout: ``output = inputs * binary_mask`` while training.

    ``binary_mask = np.random.binomial(1, keep, size=inputs.shape) / keep``: the book's draws
    from NumPy's global legacy RNG, made natively by NumPy's own legacy sampler on that RNG
    (``_dropout.dropout_forward_rng``), so a seeded run gets the book's masks and leaves the RNG
    in the same state as the book's call.

    Args:
        rate: fraction of inputs to drop, in [0, 1).
    Attributes:
        rate: the *keep* probability ``1 - rate`` (the book stores it under this name).
        inputs: the array passed to ``forward``.
        binary_mask, output: the inputs' shape, **float32** (the book's are float64, int64
            draws / a Python float): mask = float32(1 / keep) or 0 and output = inputs * mask
            in float32, within two float32 roundings of the book's values.
        dinputs: float32, ``dvalues * binary_mask``.
    ``forward(inputs)`` (Ch15-17) and ``forward(inputs, training)`` (Ch18+) both work; with
    ``training`` falsy the output is a float32 copy of the inputs and no random numbers are
    drawn. Drawing, scaling and masking run in one pass. A ``rate`` attribute set to an invalid
    keep probability is refused before anything is drawn.
    """

    def __init__(self, rate):
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"Layer_Dropout: rate (the fraction to drop) must be a real number "
                            f"in [0, 1), got {rate!r} ({type(rate).__name__})")
        if not 0 <= rate < 1:
            raise ValueError(f"Layer_Dropout: rate (the fraction to drop) must be in [0, 1), "
                             f"got {rate!r}")
        self.rate = 1 - rate

    def __repr__(self):
        return f"Layer_Dropout(rate={1 - self.rate:.12g})"

    def _keep(self):
        """The ``rate`` attribute (the keep probability) as a float in (0, 1]."""
        keep = self.rate
        if isinstance(keep, bool) or not isinstance(keep, numbers.Real):
            raise TypeError(f"Layer_Dropout: rate (the keep probability 1 - dropout rate, as "
                            f"the book stores it) must be a real number in (0, 1], got "
                            f"{keep!r} ({type(keep).__name__})")
        if not 0 < keep <= 1:
            raise ValueError(f"Layer_Dropout: rate (the keep probability 1 - dropout rate, as "
                             f"the book stores it) must be in (0, 1], got {keep!r}")
        return float(keep)

    def forward(self, inputs, training=True):
        """inputs: any shape -> self.output, float32, same shape."""
        keep = self._keep() if training else None
        X = as_float32_c(inputs, "inputs")
        self.inputs = inputs
        if not training:
            self.output = X.copy() if X is inputs else X
            return
        self.binary_mask, self.output = _dropout.dropout_forward_rng(X, keep, get_num_threads())

    def backward(self, dvalues):
        """dvalues: the output's shape -> self.dinputs = dvalues * binary_mask, float32."""
        if not hasattr(self, "binary_mask"):
            raise AttributeError("Layer_Dropout.backward: no binary_mask yet; call "
                                 "forward(inputs, training=True) first")
        mask = self.binary_mask = as_float32_c(self.binary_mask, "binary_mask")
        self.dinputs = _dropout.dropout_backward(as_float32_c(dvalues, "dvalues"), mask,
                                                 get_num_threads())


class Layer_Input:
    """The first layer of a ``Model``: ``output`` is the input array itself (no copy)."""

    def __repr__(self):
        return "Layer_Input()"

    def forward(self, inputs, training=False):
        """Set ``self.output = inputs``."""
        self.output = inputs
