"""Accuracy classes of the book (Ch18-19): ``Accuracy``, ``Accuracy_Categorical``,
``Accuracy_Regression``. Plain NumPy: one comparison per batch is not a hot path.

``calculate(predictions, y)`` returns the batch accuracy and adds to the running totals that
``calculate_accumulated()`` divides and ``new_pass()`` resets. Unlike the book, the totals
start at 0 in the constructor, so ``calculate`` also works before the first ``new_pass()``.
"""
import numpy as np


def _same_shape(owner, predictions, y):
    """predictions and y as arrays of one shape (NumPy would broadcast (N,) against (N, 1)
    into an (N, N) comparison and report a meaningless accuracy)."""
    predictions, y = np.asarray(predictions), np.asarray(y)
    if predictions.shape != y.shape:
        raise ValueError(f"{owner}.compare: predictions shape {predictions.shape} and y shape "
                         f"{y.shape} differ (reshape y, e.g. y.reshape(-1, 1) for binary "
                         "outputs)")
    return predictions, y


class Accuracy:
    """Base class: accuracy = mean(compare(predictions, y)), accumulated over batches.

    Attributes:
        accumulated_sum: correct comparisons since ``new_pass()``;
        accumulated_count: compared rows (``len`` of each comparison array) since then.
    """

    def __init__(self):
        self.new_pass()

    def __repr__(self):
        return f"{type(self).__name__}()"

    def calculate(self, predictions, y):
        """Accuracy of one batch; also adds it to the accumulated totals. An empty batch is
        refused (its mean is undefined; NumPy would warn and return nan)."""
        comparisons = self.compare(predictions, y)
        if not len(comparisons):
            raise ValueError(f"{type(self).__name__}.calculate: the batch is empty "
                             "(0 predictions)")
        correct = int(np.count_nonzero(comparisons))   # = np.sum of the booleans, cheaper
        self.accumulated_sum += correct
        self.accumulated_count += len(comparisons)
        return np.float64(correct / comparisons.size)  # = np.mean(comparisons)

    def calculate_accumulated(self):
        """Accuracy over every batch since ``new_pass()``."""
        if not self.accumulated_count:
            raise ZeroDivisionError(f"{type(self).__name__}.calculate_accumulated: nothing "
                                    "accumulated since new_pass(); call calculate() first")
        return self.accumulated_sum / self.accumulated_count

    def new_pass(self):
        """Reset the accumulated totals (start of an epoch or evaluation)."""
        self.accumulated_sum = 0
        self.accumulated_count = 0


class Accuracy_Categorical(Accuracy):
    """Classification accuracy: ``predictions == y``.

    Args:
        binary: True for binary logistic outputs, where predictions and y are both (N, k) 0/1
            arrays compared elementwise; False (default): predictions are class indices (N,)
            and y is sparse (N,), a column of class indices (N, 1), or one-hot
            (N, n_classes) (converted with argmax).
    The book's code would turn an (N, 1) column into argmax = 0 for every row, and compare
    one-hot labels of the wrong width without a word: here a column is read as the class
    indices it holds (a one-hot row of one class would be meaningless), and one-hot labels
    narrower than the predicted classes raise ValueError.
    """

    def __init__(self, *, binary=False):
        super().__init__()
        self.binary = binary

    def __repr__(self):
        return f"Accuracy_Categorical(binary={self.binary!r})" if self.binary else \
            "Accuracy_Categorical()"

    def init(self, y):
        """Nothing to set up (kept for the Model API)."""

    def compare(self, predictions, y):
        """Boolean array: which predictions equal the labels."""
        y = np.asarray(y)
        n_classes = None
        if not self.binary and y.ndim == 2:
            if y.shape[1] == 1:
                y = y[:, 0]
            else:
                n_classes = y.shape[1]
                y = np.argmax(y, axis=1)
        predictions, y = _same_shape("Accuracy_Categorical", predictions, y)
        if n_classes is not None and predictions.size and predictions.max() >= n_classes:
            i = int(np.argmax(predictions >= n_classes))
            raise ValueError(f"Accuracy_Categorical.compare: y is one-hot with {n_classes} "
                             f"columns, but predictions hold class {predictions[i]} at "
                             f"position {i}; one-hot y needs one column per class")
        return predictions == y


class Accuracy_Regression(Accuracy):
    """Regression accuracy: ``|predictions - y| < precision``, precision = std(y) / 250.

    Attributes:
        precision: None until ``init(y)`` sets it from the training targets.
    """

    def __init__(self):
        super().__init__()
        self.precision = None

    def init(self, y, reinit=False):
        """Set ``precision = np.std(y) / 250`` (population std) unless already set."""
        if self.precision is None or reinit:
            self.precision = np.std(y) / 250

    def compare(self, predictions, y):
        """Boolean array: which predictions are within ``precision`` of the targets."""
        if self.precision is None:
            raise ValueError("Accuracy_Regression.compare: precision is not set; call "
                             "init(y) with the training targets first")
        predictions, y = _same_shape("Accuracy_Regression", predictions, y)
        return np.absolute(predictions - y) < self.precision
