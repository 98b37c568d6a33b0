"""Losses of the book's framework, on the kernels of ``_losses.pyx``.

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

from nnfs_fast import _losses as _k
from nnfs_fast._openmp import get_num_threads
from nnfs_fast._validation import as_float32_2d
from nnfs_fast.activations import Activation_Softmax

_F32 = np.float32
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _labels(y_true, shape, as_indices=False):
    """Class labels for predictions of ``shape`` (N, n_classes): ``(indices, None)`` for sparse
    labels (intp, C-contiguous) or ``(None, one_hot)`` for one-hot rows (float32); with
    ``as_indices`` one-hot rows are turned into indices by argmax (the book's combined
    backward). The range 0 <= index < n_classes is checked by the kernels."""
    n_samples, n_classes = shape
    y = np.asarray(y_true)
    if y.ndim == 2:
        if y.shape != shape:
            raise ValueError(f"y_true: expected one-hot labels of shape {shape}, got {y.shape}")
        if as_indices:
            return np.argmax(y, axis=1), None
        return None, as_float32_2d(y, "y_true", n_classes, n_samples)
    if y.ndim != 1:
        raise ValueError(f"y_true: expected class indices of shape ({n_samples},) or one-hot "
                         f"labels of shape {shape}, got shape {y.shape}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"y_true: class indices must be integers, got dtype {y.dtype}")
    if y.shape[0] != n_samples:
        raise ValueError(f"y_true: expected {n_samples} class indices (one per sample), got "
                         f"shape {y.shape}")
    return np.ascontiguousarray(y, dtype=np.intp), None


def _targets(y_true, like):
    """Per-output targets as float32 of the shape of ``like`` (the predictions)."""
    if np.ndim(y_true) != 2:
        raise ValueError(f"y_true: expected targets of shape {like.shape}, like the "
                         f"predictions, got shape {np.shape(y_true)} (1-D labels need "
                         f"y.reshape(-1, 1), as in the book)")
    return as_float32_2d(y_true, "y_true", like.shape[1], like.shape[0])


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
        sample_losses = np.asarray(sample_losses)
        count = len(sample_losses)
        if count == 0:
            raise ValueError("calculate: the batch is empty (0 samples)")
        total = np.add.reduce(sample_losses)  # what np.sum and np.mean add up, bit for bit
        if sample_losses.dtype in _FLOATS:
            data_loss = total / sample_losses.dtype.type(count)  # = np.mean, without its overhead
        else:
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
        P = as_float32_2d(y_pred, "y_pred")
        labels, one_hot = _labels(y_true, P.shape)
        sample_losses = np.empty(P.shape[0], dtype=_F32)
        _k.crossentropy_forward(P, labels, one_hot, sample_losses, get_num_threads())
        return sample_losses

    def backward(self, dvalues, y_true):
        """dvalues: (N, n_classes) predicted probabilities -> self.dinputs."""
        G = as_float32_2d(dvalues, "dvalues")
        labels, one_hot = _labels(y_true, G.shape)
        dinputs = np.empty(G.shape, dtype=_F32)
        _k.crossentropy_backward(G, labels, one_hot, dinputs, get_num_threads())
        self.dinputs = dinputs


def softmax_crossentropy_forward(inputs, y_true):
    """Softmax of ``inputs`` and each sample's categorical cross-entropy, in one kernel pass.

    Returns ``(output, sample_losses)``: output (N, n_classes) float32, the rows of
    ``Activation_Softmax.forward(inputs)``, and sample_losses (N,) float32, those of
    ``Loss_CategoricalCrossentropy.forward(output, y_true)`` -- the same numbers, computed while
    each row is in cache. ``Model`` uses it for a softmax output layer trained with
    categorical cross-entropy, then ``loss._calculate(sample_losses, include_regularization)``
    for the mean and the accumulation. y_true: (N,) integer class indices or (N, n_classes).
    """
    X = as_float32_2d(inputs, "inputs")
    labels, one_hot = _labels(y_true, X.shape)
    output = np.empty(X.shape, dtype=_F32)
    sample_losses = np.empty(X.shape[0], dtype=_F32)
    _k.softmax_crossentropy_forward(X, labels, one_hot, output, sample_losses,
                                    get_num_threads())
    return output, sample_losses


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
        G = as_float32_2d(dvalues, "dvalues")
        labels, _ = _labels(y_true, G.shape, as_indices=True)
        dinputs = np.empty(G.shape, dtype=_F32)
        _k.softmax_crossentropy_backward(G, labels, dinputs, get_num_threads())
        self.dinputs = dinputs


class _MeanOverOutputsLoss(Loss):
    """A loss averaged over the outputs of each sample: ``forward`` gives
    ``mean_j term(y_pred[i, j], y_true[i, j])`` per sample; ``backward`` the book's gradient.
    Subclasses name the kind of ``_losses.sample_losses``. Shapes: y_pred, y_true, dvalues,
    dinputs (N, n_outputs); float64 targets (``sine_data``) are converted to float32 once."""

    _kind = None

    def forward(self, y_pred, y_true):
        """-> per-sample losses, float32 (N,)."""
        P = as_float32_2d(y_pred, "y_pred")
        sample_losses = np.empty(P.shape[0], dtype=_F32)
        _k.sample_losses(self._kind, P, _targets(y_true, P), sample_losses, get_num_threads())
        return sample_losses

    def backward(self, dvalues, y_true):
        """dvalues: (N, n_outputs) predictions -> self.dinputs."""
        G = as_float32_2d(dvalues, "dvalues")
        dinputs = np.empty(G.shape, dtype=_F32)
        _k.mean_loss_backward(self._kind, G, _targets(y_true, G), dinputs, get_num_threads())
        self.dinputs = dinputs


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
