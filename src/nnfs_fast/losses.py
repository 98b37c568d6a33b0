"""Losses of the book's framework, on the kernels of ``kernels/losses.pyx``.

``Loss`` is the base class (mean data loss, accumulation over batches, L1/L2 regularization);
each subclass's ``forward(y_pred, y_true)`` returns the per-sample losses (float32, shape (N,))
and ``backward(dvalues, y_true)`` sets ``self.dinputs`` (float32, the shape of dvalues), divided
by N so that it is the gradient of the mean loss. Predictions and targets of any real dtype are
converted to float32 once (float32 arrays of any layout are read in place); class labels are
sparse integer class indices (N,) of any integer dtype or one-hot rows (N, n_classes).

``Activation_Softmax_Loss_CategoricalCrossentropy`` computes the softmax and the cross-entropy
in one fused kernel (``softmax_crossentropy_forward``, also usable on its own) and the combined
gradient ``(softmax - one_hot) / N`` in one more.
"""
import numpy as np

from nnfs_fast.activations import Activation_Softmax
from nnfs_fast.kernels import losses as _k
from nnfs_fast.runtime.openmp import get_num_threads


class Loss:
    """Base class of the losses: mean of the subclass's per-sample ``forward``, accumulation
    over batches and L1/L2 regularization of the trainable layers.

    Attributes:
        trainable_layers: layers whose penalties ``regularization_loss()`` sums (set by
            ``remember_trainable_layers``; empty until then).
        accumulated_sum, accumulated_count: sum and count of per-sample losses since
            ``new_pass()`` (both 0 after construction, so ``calculate`` works without it).
    The data loss is ``np.mean`` of the float32 per-sample losses, an np.float32 (the book's
    value after ``nnfs.init()``); ``accumulated_sum`` adds their ``np.sum``.
    """

    def __init__(self):
        self.trainable_layers = []
        self.new_pass()

    def __repr__(self):
        return f"{type(self).__name__}()"

    def regularization_loss(self, layer=None):
        """L1/L2 penalties: of ``layer`` (chapters 14-17) or, without an argument, the sum over
        ``self.trainable_layers`` (chapters 18+). Each term only when its strength is > 0:
        ``l1 * sum(|W|) + l2 * sum(W * W)`` for weights and biases. 0 when there are none."""
        layers = self.trainable_layers if layer is None else [layer]
        regularization_loss = 0
        for lay in layers:
            if lay.weight_regularizer_l1 > 0:
                regularization_loss += lay.weight_regularizer_l1 * np.sum(np.abs(lay.weights))
            if lay.weight_regularizer_l2 > 0:
                regularization_loss += lay.weight_regularizer_l2 * np.sum(lay.weights *
                                                                          lay.weights)
            if lay.bias_regularizer_l1 > 0:
                regularization_loss += lay.bias_regularizer_l1 * np.sum(np.abs(lay.biases))
            if lay.bias_regularizer_l2 > 0:
                regularization_loss += lay.bias_regularizer_l2 * np.sum(lay.biases *
                                                                        lay.biases)
        return regularization_loss

    def remember_trainable_layers(self, trainable_layers):
        """Store the layers whose penalties ``regularization_loss()`` sums."""
        self.trainable_layers = trainable_layers

    def calculate(self, output, y, *, include_regularization=False):
        """Mean loss of the batch (accumulated for ``calculate_accumulated``); with
        ``include_regularization`` the tuple ``(data_loss, regularization_loss())``."""
        return self._calculate(self.forward(output, y), include_regularization)

    def _calculate(self, sample_losses, include_regularization=False):
        """``calculate`` given the per-sample losses: mean, accumulation, regularization.

        For callers that already have them (the fused softmax + cross-entropy forward).
        """
        sums = _k.sum_and_mean(sample_losses)  # np.sum and np.mean of float32 losses, bit for bit
        if sums is None:  # other dtypes (a user's subclass): NumPy
            sample_losses = np.asarray(sample_losses)
            sums = np.add.reduce(sample_losses), None, len(sample_losses)
        total, data_loss, count = sums
        if count == 0:
            raise ValueError("calculate: the batch is empty (0 samples)")
        if data_loss is None:
            data_loss = np.mean(sample_losses)
        self.accumulated_sum += total
        self.accumulated_count += count
        if not include_regularization:
            return data_loss
        return data_loss, self.regularization_loss()

    def calculate_accumulated(self, *, include_regularization=False):
        """Mean loss over every batch since ``new_pass()``; with ``include_regularization``
        the tuple ``(data_loss, regularization_loss())`` (penalty of the current weights)."""
        if not self.accumulated_count:
            raise ValueError("calculate_accumulated: no losses were calculated since new_pass()")
        data_loss = self.accumulated_sum / self.accumulated_count
        if not include_regularization:
            return data_loss
        return data_loss, self.regularization_loss()

    def new_pass(self):
        """Reset the accumulated sum and count (start of an epoch or evaluation)."""
        self.accumulated_sum = 0
        self.accumulated_count = 0


class Loss_CategoricalCrossentropy(Loss):
    """Categorical cross-entropy: ``-log(clip(y_pred[i, y_i]))`` per sample, predictions
    clipped to [1e-7, 1 - 1e-7]; one-hot labels: ``-log(sum_j clip(y_pred[i, j]) y[i, j])``.

    backward: ``dinputs = -y_true / dvalues / N`` with one-hot targets (sparse labels are not
    expanded), no clipping. Shapes: y_pred, dvalues (N, n_classes); y_true (N,) integers in
    [0, n_classes) or (N, n_classes).
    """

    def forward(self, y_pred, y_true):
        """-> per-sample losses, float32 (N,)."""
        return _k.crossentropy_forward(y_pred, y_true, get_num_threads())

    def backward(self, dvalues, y_true):
        """dvalues: (N, n_classes) predicted probabilities -> self.dinputs."""
        self.dinputs = _k.crossentropy_backward(dvalues, y_true, get_num_threads())


def softmax_crossentropy_forward(inputs, y_true):
    """Softmax of ``inputs`` and each sample's categorical cross-entropy, in one kernel pass.

    Returns ``(output, sample_losses)``: output (N, n_classes) float32, the rows of
    ``Activation_Softmax.forward(inputs)``, and sample_losses (N,) float32, those of
    ``Loss_CategoricalCrossentropy.forward(output, y_true)`` -- the same numbers, computed while
    each row is in cache. ``Model`` uses it for a softmax output layer trained with
    categorical cross-entropy, then ``loss._calculate(sample_losses, include_regularization)``
    for the mean and the accumulation. y_true: (N,) integer class indices or (N, n_classes).
    """
    return _k.softmax_crossentropy_forward(inputs, y_true, get_num_threads())


class Activation_Softmax_Loss_CategoricalCrossentropy:
    """Softmax followed by categorical cross-entropy, with the combined gradient.

    Chapters 9-17: ``forward(inputs, y_true)`` sets ``self.output`` (and ``activation.inputs``/
    ``activation.output``, as the book's ``activation.forward``) and returns the mean loss
    (accumulated in ``self.loss``, as ``loss.calculate``). Chapters 18+ (inside ``Model``):
    ``backward(dvalues, y_true)`` with dvalues the softmax outputs sets
    ``dinputs = (dvalues - one_hot(y_true)) / N``. Shapes: (N, n_classes) float32; y_true (N,)
    integer class indices or (N, n_classes) one-hot (argmax is used).

    Attributes: activation (Activation_Softmax), loss (Loss_CategoricalCrossentropy), output,
    dinputs.
    """

    def __init__(self):
        self.activation = Activation_Softmax()
        self.loss = Loss_CategoricalCrossentropy()

    def __repr__(self):
        return "Activation_Softmax_Loss_CategoricalCrossentropy()"

    def forward(self, inputs, y_true):
        """inputs: (N, n_classes) logits -> self.output; returns the mean loss (np.float32)."""
        output, sample_losses = softmax_crossentropy_forward(inputs, y_true)
        self.activation.inputs = inputs
        self.activation.output = output
        self.output = output
        return self.loss._calculate(sample_losses)

    def backward(self, dvalues, y_true):
        """dvalues: (N, n_classes) softmax outputs -> self.dinputs."""
        self.dinputs = _k.softmax_crossentropy_backward(dvalues, y_true, get_num_threads())


class _MeanOverOutputsLoss(Loss):
    """A loss averaged over the outputs of each sample: ``forward`` gives
    ``mean_j term(y_pred[i, j], y_true[i, j])`` per sample; ``backward`` the book's gradient.
    Subclasses name the kind of ``_losses.sample_losses``. Shapes: y_pred, y_true, dvalues,
    dinputs (N, n_outputs); float64 targets (``sine_data``) are converted to float32 once."""

    _kind = None

    def forward(self, y_pred, y_true):
        """-> per-sample losses, float32 (N,)."""
        return _k.sample_losses(self._kind, y_pred, y_true, get_num_threads())

    def backward(self, dvalues, y_true):
        """dvalues: (N, n_outputs) predictions -> self.dinputs."""
        self.dinputs = _k.mean_loss_backward(self._kind, dvalues, y_true, get_num_threads())


class Loss_BinaryCrossentropy(_MeanOverOutputsLoss):
    """Binary cross-entropy: per sample, the mean over outputs of
    ``-(y log p + (1 - y) log(1 - p))`` with p clipped to [1e-7, 1 - 1e-7].

    backward: ``-(y / p - (1 - y) / (1 - p)) / n_outputs / N``, p clipped the same way.
    """

    _kind = _k.BINARY_CROSSENTROPY


class Loss_MeanSquaredError(_MeanOverOutputsLoss):
    """Mean squared error (L2 loss): per sample, the mean over outputs of ``(y - y_pred)**2``.

    backward: ``-2 * (y - y_pred) / n_outputs / N``.
    """

    _kind = _k.SQUARED


class Loss_MeanAbsoluteError(_MeanOverOutputsLoss):
    """Mean absolute error (L1 loss): per sample, the mean over outputs of ``|y - y_pred|``.

    backward: ``np.sign(y - y_pred) / n_outputs / N`` (0 where equal): the book's formula,
    kept as is although the derivative of ``|y - y_pred|`` is its negative.
    """

    _kind = _k.ABSOLUTE
