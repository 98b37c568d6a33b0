"""Layers of the book's framework: ``Layer_Dense`` (on the kernels of ``_dense.pxi``)."""
import numpy as np

from nnfs_fast._dispatch import kernels
from nnfs_fast._openmp import get_num_threads
from nnfs_fast._validation import as_float32_2d

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
        self.weights = _F32(0.01) * np.asarray(np.random.randn(n_inputs, n_neurons), dtype=_F32)
        self.biases = np.zeros((1, n_neurons), dtype=_F32)
        self.weight_regularizer_l1 = weight_regularizer_l1
        self.weight_regularizer_l2 = weight_regularizer_l2
        self.bias_regularizer_l1 = bias_regularizer_l1
        self.bias_regularizer_l2 = bias_regularizer_l2

    def __repr__(self):
        n_in, n_out = np.shape(self.weights)
        regs = "".join(f", {k}={getattr(self, k)}" for k in (
            "weight_regularizer_l1", "weight_regularizer_l2", "bias_regularizer_l1",
            "bias_regularizer_l2") if getattr(self, k))
        return f"Layer_Dense(n_inputs={n_in}, n_neurons={n_out}{regs})"

    def _parameters32(self):
        """weights and biases as float32 (converted once, in place of the attribute)."""
        if not (isinstance(self.weights, np.ndarray) and self.weights.dtype == _F32
                and self.weights.ndim == 2):
            self.weights = as_float32_2d(self.weights, "weights")
        n_out = self.weights.shape[1]
        if not (isinstance(self.biases, np.ndarray) and self.biases.dtype == _F32
                and self.biases.shape == (1, n_out)):
            self.biases = as_float32_2d(np.reshape(self.biases, (1, -1)), "biases", n_out)
        return self.weights, self.biases

    def forward(self, inputs, training=False):
        """inputs: (n_samples, n_inputs) -> self.output (n_samples, n_neurons) float32."""
        self.inputs = inputs
        self.output = self._forward(inputs, relu=False)

    def _forward(self, inputs, relu):
        W, b = self._parameters32()
        X = as_float32_2d(inputs, "inputs", W.shape[0])
        out = np.empty((X.shape[0], W.shape[1]), dtype=_F32)
        kernels.dense_forward(X, W, b, out, relu, get_num_threads())
        return out

    def backward(self, dvalues):
        """dvalues: (n_samples, n_neurons) -> dweights, dbiases, dinputs."""
        self._backward(dvalues, None, None)

    def _backward(self, dvalues, relu_output, dvalues_masked):
        W, b = self._parameters32()
        X = as_float32_2d(self.inputs, "inputs", W.shape[0])
        G = as_float32_2d(dvalues, "dvalues", W.shape[1], X.shape[0])
        self.dweights = np.empty(W.shape, dtype=_F32)
        self.dbiases = np.empty(b.shape, dtype=_F32)
        self.dinputs = np.empty(X.shape, dtype=_F32)
        kernels.dense_backward(
            X, W, b, G, self.dweights, self.dbiases, self.dinputs, relu_output, dvalues_masked,
            self.weight_regularizer_l1, self.weight_regularizer_l2,
            self.bias_regularizer_l1, self.bias_regularizer_l2, get_num_threads())

    def get_parameters(self):
        """(weights, biases): the live arrays."""
        return self.weights, self.biases

    def set_parameters(self, weights, biases):
        """Assign weights (n_inputs, n_neurons) and biases (1, n_neurons)."""
        self.weights = weights
        self.biases = biases
