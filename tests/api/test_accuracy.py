"""Accuracy classes against hand computations and the float64 oracle: sparse, one-hot and
binary labels, regression precision, accumulation over batches, and the error messages."""
import numpy as np
import pytest

from nnfs_fast import reference
from nnfs_fast.accuracy import Accuracy, Accuracy_Categorical, Accuracy_Regression


def test_categorical_sparse_labels():
    acc = Accuracy_Categorical()
    predictions = np.array([0, 2, 1, 1, 0])
    y = np.array([0, 2, 2, 1, 1], dtype=np.uint8)
    assert acc.calculate(predictions, y) == 3 / 5
    np.testing.assert_array_equal(acc.compare(predictions, y), [1, 1, 0, 1, 0])


def test_categorical_one_hot_labels_use_argmax():
    acc = Accuracy_Categorical()
    predictions = np.array([1, 0, 2])
    y = np.eye(3, dtype=np.float32)[[1, 2, 2]]
    assert acc.calculate(predictions, y) == 2 / 3


def test_categorical_column_of_labels_is_read_as_class_indices():
    """(N, 1) labels, e.g. a column read from a CSV file: the book's argmax would make every
    label 0 (here: accuracy 2/5 instead of 4/5)."""
    acc = Accuracy_Categorical()
    predictions = np.array([0, 2, 1, 1, 0])
    y = np.array([[0], [2], [1], [1], [2]], dtype=np.float32)
    assert acc.calculate(predictions, y) == 4 / 5
    np.testing.assert_array_equal(acc.compare(predictions, y), acc.compare(predictions, y[:, 0]))


def test_categorical_one_hot_narrower_than_the_classes_is_refused():
    acc = Accuracy_Categorical()
    with pytest.raises(ValueError, match=r"y is one-hot with 2 columns, but predictions hold "
                                         r"class 2 at position 1; one-hot y needs one column "
                                         r"per class"):
        acc.calculate(np.array([1, 2, 0]), np.eye(2)[[1, 1, 0]])
    assert (acc.accumulated_sum, acc.accumulated_count) == (0, 0)


def test_categorical_binary_compares_elementwise():
    """Binary (N, k) outputs: mean over all elements, but rows counted in the totals."""
    acc = Accuracy_Categorical(binary=True)
    predictions = np.array([[1, 0], [0, 0], [1, 1]])
    y = np.array([[1, 1], [0, 0], [1, 0]])
    assert acc.calculate(predictions, y) == 4 / 6
    assert (acc.accumulated_sum, acc.accumulated_count) == (4, 3)   # the book's len() of rows


def test_accumulates_over_batches_and_new_pass_resets():
    acc = Accuracy_Categorical()
    assert acc.calculate(np.array([1, 1, 0]), np.array([1, 0, 0])) == 2 / 3   # no new_pass()
    assert acc.calculate(np.array([2]), np.array([2])) == 1.0
    assert acc.calculate_accumulated() == 3 / 4
    acc.new_pass()
    assert (acc.accumulated_sum, acc.accumulated_count) == (0, 0)
    acc.calculate(np.array([0, 1]), np.array([1, 1]))
    assert acc.calculate_accumulated() == 1 / 2


def test_matches_reference_over_batches():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 100)
    probs = rng.random((100, 3))
    ours, ref = Accuracy_Categorical(), reference.Accuracy_Categorical()
    for acc in (ours, ref):
        acc.new_pass()
        batch_values = [acc.calculate(np.argmax(probs[i:i + 32], axis=1), y[i:i + 32])
                        for i in range(0, 100, 32)]
        acc.values = batch_values
    assert ours.values == ref.values
    assert ours.calculate_accumulated() == ref.calculate_accumulated()


def test_regression_precision_and_compare():
    y = np.sin(np.linspace(0, 6, 200)).reshape(-1, 1)
    acc = Accuracy_Regression()
    assert acc.precision is None
    acc.init(y)
    assert acc.precision == np.std(y) / 250
    first = acc.precision
    acc.init(y * 10)                                   # kept unless reinit
    assert acc.precision == first
    acc.init(y * 10, reinit=True)
    assert acc.precision == np.std(y * 10) / 250
    predictions = y + np.where(np.arange(200) % 4 == 0, 2 * acc.precision, 0.0).reshape(-1, 1)
    assert acc.calculate(predictions, y) == 0.75
    ref = reference.Accuracy_Regression()
    ref.init(y * 10)
    assert ref.calculate(predictions, y) == 0.75


def test_regression_float32_predictions_against_float64_targets():
    """Ch17: float32 layer outputs, float64 sine targets."""
    y = np.linspace(-1, 1, 50).reshape(-1, 1)
    acc = Accuracy_Regression()
    acc.init(y)
    assert acc.calculate(y.astype(np.float32), y) == 1.0


def test_repr():
    assert repr(Accuracy_Categorical()) == "Accuracy_Categorical()"
    assert repr(Accuracy_Categorical(binary=True)) == "Accuracy_Categorical(binary=True)"
    assert repr(Accuracy_Regression()) == "Accuracy_Regression()"


def test_binary_is_keyword_only():
    with pytest.raises(TypeError):
        Accuracy_Categorical(True)


def test_shape_mismatch_is_an_error_not_a_broadcast():
    with pytest.raises(ValueError, match=r"Accuracy_Categorical.compare: predictions shape "
                                         r"\(4, 1\) and y shape \(4,\) differ"):
        Accuracy_Categorical(binary=True).calculate(np.zeros((4, 1)), np.zeros(4))
    acc = Accuracy_Regression()
    acc.init(np.arange(4.0))
    with pytest.raises(ValueError, match=r"Accuracy_Regression.compare: .* differ"):
        acc.calculate(np.zeros((4, 1)), np.zeros(4))


def test_regression_needs_init():
    with pytest.raises(ValueError, match=r"precision is not set; call init\(y\)"):
        Accuracy_Regression().calculate(np.zeros((2, 1)), np.zeros((2, 1)))


def test_calculate_accumulated_before_any_batch():
    with pytest.raises(ZeroDivisionError, match="nothing accumulated since new_pass"):
        Accuracy_Categorical().calculate_accumulated()


def test_user_subclass_of_accuracy():
    """The book's extension point: a subclass supplies compare()."""
    class Accuracy_Within(Accuracy):
        def compare(self, predictions, y):
            return np.abs(predictions - y) <= 1

    acc = Accuracy_Within()
    assert acc.calculate(np.array([1, 5, 3]), np.array([2, 2, 3])) == 2 / 3
    assert acc.calculate_accumulated() == 2 / 3
