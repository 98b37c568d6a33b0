"""Numerical robustness of whole training runs (docs/GUARANTEES.md).

* Extreme logits (+-1e4) through softmax + categorical cross-entropy and sigmoid + binary
  cross-entropy give finite losses and gradients, in the Model's fused path and in the
  chapter 9-17 layer-by-layer form (test_activations/test_losses check the kernels alone).
* Normal training raises no NumPy warning: every configuration below runs under
  ``warnings.simplefilter("error")``.
* NaN and Inf in the data are not checked for (that would cost a pass over every batch): they
  propagate, visibly. The reported loss is nan (or inf), the parameters they reach become nan,
  predictions are nan, and nothing warns or raises.
"""
import warnings

import numpy as np
import pytest

from nnfs_fast import (
    Accuracy_Categorical,
    Accuracy_Regression,
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Layer_Dense,
    Layer_Dropout,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanAbsoluteError,
    Loss_MeanSquaredError,
    Model,
    Optimizer_Adagrad,
    Optimizer_Adam,
    Optimizer_RMSprop,
    Optimizer_SGD,
)
from nnfs_fast.datasets import sine_data, spiral_data


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def build(kind, fuse=True):
    np.random.seed(0)
    model = Model(fuse=fuse)
    if kind == "categorical":
        model.add(Layer_Dense(2, 32, weight_regularizer_l1=1e-5, weight_regularizer_l2=5e-4,
                              bias_regularizer_l1=1e-5, bias_regularizer_l2=5e-4))
        model.add(Activation_ReLU())
        model.add(Layer_Dropout(0.1))
        model.add(Layer_Dense(32, 3))
        model.add(Activation_Softmax())
        model.set(loss=Loss_CategoricalCrossentropy(),
                  optimizer=Optimizer_Adam(learning_rate=0.05, decay=5e-5),
                  accuracy=Accuracy_Categorical())
    elif kind == "binary":
        model.add(Layer_Dense(2, 16, weight_regularizer_l2=5e-4))
        model.add(Activation_ReLU())
        model.add(Layer_Dense(16, 1))
        model.add(Activation_Sigmoid())
        model.set(loss=Loss_BinaryCrossentropy(), optimizer=Optimizer_RMSprop(decay=1e-3),
                  accuracy=Accuracy_Categorical(binary=True))
    elif kind == "regression":
        model.add(Layer_Dense(1, 16))
        model.add(Activation_ReLU())
        model.add(Layer_Dense(16, 1))
        model.add(Activation_Linear())
        model.set(loss=Loss_MeanSquaredError(),
                  optimizer=Optimizer_SGD(learning_rate=0.05, decay=1e-3, momentum=0.9),
                  accuracy=Accuracy_Regression())
    elif kind == "mae":
        model.add(Layer_Dense(1, 16))
        model.add(Activation_Sigmoid())
        model.add(Layer_Dense(16, 1))
        model.add(Activation_Linear())
        model.set(loss=Loss_MeanAbsoluteError(), optimizer=Optimizer_Adagrad(decay=1e-4),
                  accuracy=Accuracy_Regression())
    model.finalize()
    return model


def data(kind):
    if kind in ("regression", "mae"):
        return sine_data(200)
    np.random.seed(1)
    X, y = spiral_data(samples=60, classes=3)
    if kind == "binary":
        y = (y == 1).astype(np.int64).reshape(-1, 1)
    return X, y


# ------------------------------------------------------------- no warnings in normal training

@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
@pytest.mark.parametrize("kind", ["categorical", "binary", "regression", "mae"])
def test_training_raises_no_numpy_warning(kind, fuse):
    X, y = data(kind)
    model = build(kind, fuse)
    history = model.train(X, y, epochs=3, batch_size=64, shuffle=True,
                          validation_data=(X, y), verbose=False)
    history.update(model.train(X, y, epochs=2, verbose=False))   # full batch as well
    assert all(np.isfinite(v).all() for v in history.values())
    assert np.isfinite(model.predict(X, batch_size=50)).all()
    model.evaluate(X, y, verbose=False)


def test_chapter_9_to_17_loop_raises_no_numpy_warning():
    """The book's hand-written loop: forward, loss with regularization, backward, update."""
    X, y = data("categorical")
    np.random.seed(0)
    dense1 = Layer_Dense(2, 64, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)
    activation1, dropout1 = Activation_ReLU(), Layer_Dropout(0.1)
    dense2 = Layer_Dense(64, 3)
    loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
    optimizer = Optimizer_Adam(learning_rate=0.05, decay=5e-7)
    for _ in range(30):
        dense1.forward(X)
        activation1.forward(dense1.output)
        dropout1.forward(activation1.output)
        dense2.forward(dropout1.output)
        data_loss = loss_activation.forward(dense2.output, y)
        regularization_loss = (loss_activation.loss.regularization_loss(dense1)
                               + loss_activation.loss.regularization_loss(dense2))
        loss = data_loss + regularization_loss
        predictions = np.argmax(loss_activation.output, axis=1)
        accuracy = np.mean(predictions == y)
        loss_activation.backward(loss_activation.output, y)
        dense2.backward(loss_activation.dinputs)
        dropout1.backward(dense2.dinputs)
        activation1.backward(dropout1.dinputs)
        dense1.backward(activation1.dinputs)
        optimizer.pre_update_params()
        optimizer.update_params(dense1)
        optimizer.update_params(dense2)
        optimizer.post_update_params()
    assert np.isfinite(loss) and 0 <= accuracy <= 1


# ----------------------------------------------------------------------- extreme logits

LOGITS = np.array([[1e4, -1e4, 0], [-1e4, 1e4, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]],
                  np.float32)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_softmax_crossentropy_with_logits_of_1e4_stays_finite(fuse):
    """A model whose output logits are +-1e4 (saturated softmax): finite loss, finite
    gradients, finite parameters after the step; the wrong class costs -log(1e-7)."""
    np.random.seed(0)
    model = Model(fuse=fuse)
    model.add(Layer_Dense(3, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_SGD(),
              accuracy=Accuracy_Categorical())
    model.finalize()
    dense = model.layers[0]
    dense.weights[...] = np.eye(3, dtype=np.float32)      # logits = X
    y = np.array([0, 0, 2, 1])                             # right, wrong, uniform, tie
    history = model.train(LOGITS, y, verbose=False)
    sample_losses = model.loss.forward(model.layers[-1].output, y)
    np.testing.assert_allclose(sample_losses, [1.1920929e-07, -np.log(np.float32(1e-7)),
                                               np.log(3), np.log(2)], rtol=1e-6)
    assert np.isfinite(history["loss"]).all()
    assert np.isfinite(dense.dweights).all() and np.isfinite(dense.dbiases).all()
    assert np.isfinite(model.layers[-1].dinputs).all() and np.isfinite(dense.weights).all()


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_sigmoid_binary_crossentropy_with_logits_of_1e4_stays_finite(fuse):
    """Sigmoid outputs of exactly 0 and 1 are clipped to [1e-7, 1 - 1e-7] by the loss and
    its gradient: finite loss, finite gradients."""
    np.random.seed(0)
    model = Model(fuse=fuse)
    model.add(Layer_Dense(3, 3))
    model.add(Activation_Sigmoid())
    model.set(loss=Loss_BinaryCrossentropy(), optimizer=Optimizer_SGD(),
              accuracy=Accuracy_Categorical(binary=True))
    model.finalize()
    dense = model.layers[0]
    dense.weights[...] = np.eye(3, dtype=np.float32)
    y = np.array([[1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 1]])
    history = model.train(LOGITS, y, verbose=False)
    output = model.layers[-1].output
    assert set(np.unique(output)) == {0, 0.5, 1}           # saturated (and one 0), no NaN
    assert np.isfinite(history["loss"]).all()
    assert 0 < history["data_loss"][0] < 17                # at most -log(1e-7) per output
    assert np.isfinite(model.layers[-1].dinputs).all()
    assert np.isfinite(dense.dweights).all() and np.isfinite(dense.weights).all()


def test_huge_inputs_train_without_warnings():
    """Inputs scaled by 1e4 saturate everything; training stays finite and quiet."""
    X, y = data("categorical")
    model = build("categorical")
    history = model.train(X * 1e4, y, epochs=5, verbose=False)
    assert np.isfinite(history["loss"]).all()


# ----------------------------------------------------------------- NaN and Inf propagate

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "unfused"])
def test_non_finite_inputs_show_up_as_nan_loss(bad, fuse, capsys):
    X, y = data("categorical")
    X = X.copy()
    X[7, 0] = bad
    model = build("categorical", fuse)
    history = model.train(X, y, epochs=2, verbose=True)
    assert np.isnan(history["loss"]).all() and np.isnan(history["data_loss"]).all()
    assert "loss: nan" in capsys.readouterr().out          # printed, as the book would
    first = model.trainable_layers[0]
    assert np.isnan(first.weights).any()                   # the update carried it
    assert np.isnan(model.predict(X[:5])).all()            # and now every prediction


@pytest.mark.parametrize("kind", ["regression", "binary"])
def test_non_finite_targets_show_up_as_nan_loss(kind):
    X, y = data(kind)
    y = y.astype(np.float64)
    y[3, 0] = np.nan
    model = build(kind)
    if kind == "regression":
        model.accuracy.init(np.nan_to_num(y))
    history = model.train(X, y, epochs=1, verbose=False)
    assert np.isnan(history["data_loss"][0])


def test_overflowing_loss_is_reported_as_inf():
    """Squared errors beyond float32's range: inf, not an exception or a warning."""
    loss = Loss_MeanSquaredError().calculate(np.array([[1e30]], np.float32),
                                             np.array([[-1e30]]))
    assert loss == np.inf


def test_non_finite_logits_in_the_fused_loss():
    """NaN or +inf logits make that sample's softmax row and loss NaN (NumPy's softmax does
    the same: inf - inf); -inf logits are a probability of 0, clipped by the loss."""
    combined = Activation_Softmax_Loss_CategoricalCrossentropy()
    logits = np.array([[np.nan, 1, 2], [np.inf, 0, 0], [-np.inf, 0, 0], [1, 2, 3]], np.float32)
    mean = combined.forward(logits, np.array([0, 0, 0, 2]))
    losses = combined.loss.forward(combined.output, np.array([0, 0, 0, 2]))
    assert np.isnan(mean)
    assert np.isnan(losses[:2]).all()
    np.testing.assert_allclose(losses[2:], [-np.log(np.float32(1e-7)),
                                            -np.log(np.exp(3) / np.exp([1, 2, 3]).sum())],
                               rtol=1e-6)
