"""Activation functions of the book's framework, on the kernels of ``kernels/activations.pyx``.

Each class has the book's surface: ``forward(inputs)`` or ``forward(inputs, training)`` sets
``self.inputs`` and ``self.output``, ``backward(dvalues)`` sets ``self.dinputs``, and
``predictions(outputs)`` turns outputs into predictions. The kernels check and convert their
arguments: inputs of any real dtype are converted to float32 once (float32 arrays of any layout
are read in place); every ``output`` and ``dinputs`` is a new C-contiguous float32 array, so
references kept from earlier calls stay valid. Results do not depend on the thread count.
"""
import numpy as np

from nnfs_fast._validation import as_float32_2d
from nnfs_fast.kernels import activations as _k
from nnfs_fast.runtime.openmp import get_num_threads


class Activation_ReLU:
    """Rectified linear unit: ``output = max(0, inputs)`` (NaN propagates).

    backward: ``dinputs = dvalues`` with zeros where ``inputs <= 0`` (zero counts as
    inactive). Shapes: inputs, output, dvalues, dinputs (n_samples, n_units), float32.
    """

    def __repr__(self):
        return "Activation_ReLU()"

    def forward(self, inputs, training=False):
        """inputs: (n_samples, n_units) -> self.output, same shape, float32."""
        self.inputs = inputs
        self.output = _k.relu_forward(inputs, get_num_threads())

    def backward(self, dvalues):
        """dvalues: (n_samples, n_units) -> self.dinputs."""
        self.dinputs = _k.relu_backward(self.inputs, dvalues, get_num_threads())

    def predictions(self, outputs):
        """The outputs themselves."""
        return outputs


class Activation_Softmax:
    """Row-wise softmax: ``exp(x - max(x)) / sum(exp(x - max(x)))`` for each sample.

    backward: for each sample i, ``dinputs[i] = (diag(s) - s s^T) . dvalues[i]`` with s the
    output row, computed for the whole batch in one pass as ``s * (d - s.d)``.
    Shapes: inputs, output, dvalues, dinputs (n_samples, n_classes), float32.
    """

    def __repr__(self):
        return "Activation_Softmax()"

    def forward(self, inputs, training=False):
        """inputs: (n_samples, n_classes) logits -> self.output, rows summing to 1."""
        self.inputs = inputs
        self.output = _k.softmax_forward(inputs, get_num_threads())

    def backward(self, dvalues):
        """dvalues: (n_samples, n_classes) -> self.dinputs."""
        self.dinputs = _k.softmax_backward(self.output, dvalues, get_num_threads())

    def predictions(self, outputs):
        """Class indices: ``np.argmax(outputs, axis=1)``."""
        return np.argmax(outputs, axis=1)


class Activation_Sigmoid:
    """Logistic sigmoid: ``output = 1 / (1 + exp(-inputs))``.

    Computed as ``e / (1 + e)`` with ``e = exp(inputs)`` for negative inputs, so it never
    overflows (no warning, no inf for inputs down to -1e4 or -inf). backward:
    ``dinputs = dvalues * (1 - output) * output``. Shapes: (n_samples, n_outputs), float32.
    """

    def __repr__(self):
        return "Activation_Sigmoid()"

    def forward(self, inputs, training=False):
        """inputs: (n_samples, n_outputs) -> self.output in [0, 1]."""
        self.inputs = inputs
        self.output = _k.sigmoid_forward(inputs, get_num_threads())

    def backward(self, dvalues):
        """dvalues: (n_samples, n_outputs) -> self.dinputs."""
        self.dinputs = _k.sigmoid_backward(self.output, dvalues, get_num_threads())

    def predictions(self, outputs):
        """``(outputs > 0.5) * 1``: an int array of outputs' shape."""
        return (outputs > 0.5) * 1


class Activation_Linear:
    """Identity activation (regression outputs): ``output`` is the ``inputs`` object itself.

    backward: ``dinputs`` is a float32 C-contiguous copy of ``dvalues``.
    """

    def __repr__(self):
        return "Activation_Linear()"

    def forward(self, inputs, training=False):
        """self.inputs = self.output = inputs (no copy, no conversion, as the book)."""
        self.inputs = inputs
        self.output = inputs

    def backward(self, dvalues):
        """dvalues: (n_samples, n_outputs) -> self.dinputs, a float32 copy."""
        G = as_float32_2d(dvalues, "dvalues")
        self.dinputs = G.copy(order="C") if G is dvalues else np.ascontiguousarray(G)

    def predictions(self, outputs):
        """The outputs themselves."""
        return outputs
