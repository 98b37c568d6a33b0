"""nnfs_fast.reference (the float64 oracle) against independent checks: finite differences,
hand-computed optimizer steps, the book's learning-rate prints and its training printout."""
import re

import numpy as np
import pytest

from nnfs_fast import datasets
from nnfs_fast import reference as R

FD_TOL = dict(rtol=1e-6, atol=1e-9)


def numerical_gradient(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to the array x (perturbed in place)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + eps
        f_plus = f()
        x[i] = saved - eps
        f_minus = f()
        x[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def rng_state():
    """The global legacy RNG's full state (key, position, cached normal) as a comparable tuple."""
    _, key, pos, has_gauss, gauss = np.random.get_state()
    return key.tobytes(), pos, has_gauss, gauss


def away_from_zero(rng, shape, margin=0.05):
    """Normals with |x| >= margin, so kinks (ReLU, |x|, sign) are not within eps."""
    x = rng.standard_normal(shape)
    return np.where(np.abs(x) < margin, np.copysign(margin, x), x)


# ------------------------------------------------------------------------------------ layers

@pytest.mark.parametrize("regularizers", [
    {}, dict(weight_regularizer_l1=3e-2, weight_regularizer_l2=5e-2,
             bias_regularizer_l1=2e-2, bias_regularizer_l2=4e-2)])
def test_dense_backward_is_the_gradient(rng, regularizers):
    layer = R.Layer_Dense(4, 3, **regularizers)
    layer.weights = away_from_zero(rng, (4, 3))
    layer.biases = away_from_zero(rng, (1, 3))
    X, G = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    loss = R.Loss()

    def objective():  # <output, G> + the layer's penalty, whose gradient backward adds
        layer.forward(X)
        return np.sum(layer.output * G) + loss.regularization_loss(layer)

    objective()
    layer.backward(G)
    np.testing.assert_allclose(layer.dinputs, numerical_gradient(objective, X), **FD_TOL)
    np.testing.assert_allclose(layer.dweights, numerical_gradient(objective, layer.weights),
                               **FD_TOL)
    np.testing.assert_allclose(layer.dbiases, numerical_gradient(objective, layer.biases),
                               **FD_TOL)
    assert layer.dbiases.shape == (1, 3)


def test_dense_l1_subgradient_at_zero_is_plus_one():
    layer = R.Layer_Dense(2, 2, weight_regularizer_l1=0.5, bias_regularizer_l1=0.25)
    layer.set_parameters(np.array([[0.0, -1.0], [2.0, 0.0]]), np.zeros((1, 2)))
    layer.forward(np.zeros((1, 2)))
    layer.backward(np.zeros((1, 2)))
    assert np.array_equal(layer.dweights, [[0.5, -0.5], [0.5, 0.5]])
    assert np.array_equal(layer.dbiases, [[0.25, 0.25]])


def test_dense_init_and_parameters():
    np.random.seed(0)
    layer = R.Layer_Dense(3, 5, bias_regularizer_l2=1e-3)
    np.random.seed(0)
    assert np.array_equal(layer.weights, 0.01 * np.random.randn(3, 5))
    assert layer.weights.dtype == np.float64
    assert layer.biases.shape == (1, 5) and not layer.biases.any()
    assert (layer.weight_regularizer_l1, layer.weight_regularizer_l2,
            layer.bias_regularizer_l1, layer.bias_regularizer_l2) == (0, 0, 0, 1e-3)
    weights, biases = layer.get_parameters()
    assert weights is layer.weights and biases is layer.biases
    layer.set_parameters(np.ones((3, 5), dtype=np.float32), np.zeros((1, 5), dtype=np.float32))
    assert layer.weights.dtype == np.float64 and layer.biases.dtype == np.float64
    layer.forward(np.ones((2, 3), dtype=np.float32))  # Ch3-17 one-argument form
    assert layer.output.dtype == np.float64 and np.array_equal(layer.output, np.full((2, 5), 3.0))
    layer.forward(np.ones((2, 3)), False)  # Ch18+ form
    assert layer.output.shape == (2, 5)


def test_dropout_mask_rng_and_backward(rng):
    layer = R.Layer_Dropout(0.1)
    assert layer.rate == pytest.approx(0.9)  # keep probability, the book's naming
    X, G = rng.standard_normal((40, 7)), rng.standard_normal((40, 7))
    np.random.seed(3)
    layer.forward(X)  # Ch15 one-argument form: always masks
    np.random.seed(3)
    expected_mask = np.random.binomial(1, layer.rate, size=X.shape) / layer.rate
    assert np.array_equal(layer.binary_mask, expected_mask)
    assert set(np.unique(layer.binary_mask)) <= {0.0, 1 / layer.rate}
    assert np.array_equal(layer.output, X * expected_mask)
    layer.backward(G)
    assert np.array_equal(layer.dinputs, G * expected_mask)

    state = rng_state()
    layer.forward(X, training=False)
    assert np.array_equal(layer.output, X) and layer.output is not X
    assert rng_state() == state  # no RNG draw in eval mode


def test_input_layer_passes_the_batch_through():
    layer = R.Layer_Input()
    X = np.arange(6.0).reshape(3, 2)
    layer.forward(X, True)
    assert layer.output is X


# ------------------------------------------------------------------------------- activations

@pytest.mark.parametrize("activation", [R.Activation_ReLU, R.Activation_Softmax,
                                        R.Activation_Sigmoid, R.Activation_Linear])
def test_activation_backward_is_the_gradient(rng, activation):
    act = activation()
    X, G = away_from_zero(rng, (6, 4)), rng.standard_normal((6, 4))

    def objective():
        act.forward(X)
        return np.sum(act.output * G)

    objective()
    act.backward(G)
    np.testing.assert_allclose(act.dinputs, numerical_gradient(objective, X), **FD_TOL)


def test_softmax_backward_equals_the_per_sample_jacobian(rng):
    act = R.Activation_Softmax()
    act.forward(rng.standard_normal((5, 4)))
    G = rng.standard_normal((5, 4))
    act.backward(G)
    for s, d, dinputs in zip(act.output, G, act.dinputs):
        jacobian = np.diagflat(s) - np.outer(s, s)
        np.testing.assert_allclose(dinputs, jacobian @ d, rtol=1e-12, atol=1e-15)


def test_activation_forward_values_and_predictions():
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -2.0, 0.5]])
    relu = R.Activation_ReLU()
    relu.forward(x)
    assert np.array_equal(relu.output, [[0, 0, 2], [3, 0, 0.5]])
    relu.backward(np.ones_like(x))
    assert np.array_equal(relu.dinputs, [[0, 0, 1], [1, 0, 1]])  # zero counts as inactive
    assert relu.predictions(x) is x

    softmax = R.Activation_Softmax()
    softmax.forward(x + 1000)  # max subtraction keeps large logits finite
    e = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax.output, e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    assert np.array_equal(softmax.predictions(softmax.output), [2, 0])

    sigmoid = R.Activation_Sigmoid()
    sigmoid.forward(x)
    np.testing.assert_allclose(sigmoid.output, 1 / (1 + np.exp(-x)), rtol=1e-15)
    assert np.array_equal(sigmoid.predictions(sigmoid.output), [[0, 0, 1], [1, 0, 1]])

    linear = R.Activation_Linear()
    linear.forward(x, False)
    assert linear.output is x and linear.predictions(x) is x


# ------------------------------------------------------------------------------------ losses

def loss_cases(rng):
    """(loss, y_pred, y_true, gradient sign) for every loss; y_pred inside the clip range."""
    probs = rng.uniform(0.05, 1.0, (6, 4))
    probs /= probs.sum(axis=1, keepdims=True)
    sparse = rng.integers(0, 4, 6)
    one_hot = np.eye(4)[sparse]
    sig = rng.uniform(0.05, 0.95, (6, 3))
    binary = rng.integers(0, 2, (6, 3)).astype(float)
    reg_pred, reg_true = rng.standard_normal((6, 2)), rng.standard_normal((6, 2))
    return [
        ("cce sparse", R.Loss_CategoricalCrossentropy(), probs, sparse, 1),
        ("cce one-hot", R.Loss_CategoricalCrossentropy(), probs, one_hot, 1),
        ("bce", R.Loss_BinaryCrossentropy(), sig, binary, 1),
        ("mse", R.Loss_MeanSquaredError(), reg_pred, reg_true, 1),
        # the book's MAE backward is +sign(y - y_pred): the negative of the true gradient
        ("mae", R.Loss_MeanAbsoluteError(), reg_pred, reg_true, -1),
    ]


@pytest.mark.parametrize("case", range(5))
def test_loss_backward_is_the_gradient_of_the_mean_loss(rng, case):
    name, loss, y_pred, y_true, sign = loss_cases(rng)[case]
    loss.backward(y_pred, y_true)
    numerical = numerical_gradient(lambda: loss.calculate(y_pred, y_true), y_pred)
    np.testing.assert_allclose(loss.dinputs, sign * numerical, err_msg=name, **FD_TOL)


def test_loss_forward_values():
    probs = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0]])
    cce = R.Loss_CategoricalCrossentropy()
    np.testing.assert_allclose(cce.forward(probs, np.array([0, 2])), [-np.log(0.7), -np.log(1e-7)])
    np.testing.assert_allclose(cce.forward(probs, np.array([[0, 1, 0], [0, 1, 0]])),
                               [-np.log(0.2), -np.log(1 - 1e-7)])
    bce = R.Loss_BinaryCrossentropy()
    np.testing.assert_allclose(bce.forward(np.array([[0.9, 0.2]]), np.array([[1, 0]])),
                               [-(np.log(0.9) + np.log(0.8)) / 2])
    np.testing.assert_allclose(R.Loss_MeanSquaredError().forward(
        np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]])), [2.5])
    np.testing.assert_allclose(R.Loss_MeanAbsoluteError().forward(
        np.array([[1.0, 2.0]]), np.array([[0.0, 4.0]])), [1.5])
    with pytest.raises(ValueError, match="y_true"):
        cce.forward(probs, np.zeros((2, 3, 1)))


def test_loss_accumulation_and_regularization():
    loss = R.Loss_MeanSquaredError()
    y_pred, y_true = np.arange(10.0).reshape(5, 2), np.zeros((5, 2))
    # works without new_pass(); accumulates per-sample sums and counts
    first = loss.calculate(y_pred[:3], y_true[:3])
    assert first == pytest.approx(np.mean(np.mean(y_pred[:3] ** 2, axis=1)))
    loss.calculate(y_pred[3:], y_true[3:])
    assert loss.accumulated_count == 5
    assert loss.calculate_accumulated() == pytest.approx(np.mean(y_pred ** 2))
    loss.new_pass()
    assert (loss.accumulated_sum, loss.accumulated_count) == (0, 0)

    assert loss.regularization_loss() == 0  # no trainable layers yet
    a = R.Layer_Dense(2, 2, weight_regularizer_l1=0.1, bias_regularizer_l2=0.2)
    b = R.Layer_Dense(2, 1, weight_regularizer_l2=0.3, bias_regularizer_l1=0.4)
    a.set_parameters(np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([[1.0, -3.0]]))
    b.set_parameters(np.array([[2.0], [-1.0]]), np.array([[-0.5]]))
    assert loss.regularization_loss(a) == pytest.approx(0.1 * 3.5 + 0.2 * 10)  # Ch14 form
    assert loss.regularization_loss(b) == pytest.approx(0.3 * 5 + 0.4 * 0.5)
    loss.remember_trainable_layers([a, b])
    assert loss.regularization_loss() == pytest.approx(2.35 + 1.7)  # Ch18+ form
    data_loss, reg_loss = loss.calculate(y_pred, y_true, include_regularization=True)
    assert data_loss == pytest.approx(np.mean(y_pred ** 2)) and reg_loss == pytest.approx(4.05)
    assert loss.calculate_accumulated(include_regularization=True)[1] == pytest.approx(4.05)


@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_cce_combined(rng, one_hot):
    logits = rng.standard_normal((6, 4))
    y = rng.integers(0, 4, 6)
    if one_hot:
        y = np.eye(4)[y]
    combined = R.Activation_Softmax_Loss_CategoricalCrossentropy()
    loss_value = combined.forward(logits, y)  # Ch9-17 form returns the loss

    softmax, cce = R.Activation_Softmax(), R.Loss_CategoricalCrossentropy()
    softmax.forward(logits)
    assert np.array_equal(combined.output, softmax.output)
    assert loss_value == cce.calculate(softmax.output, y)

    combined.backward(combined.output, y)  # (softmax - onehot) / N
    cce.backward(softmax.output, y)
    softmax.backward(cce.dinputs)
    np.testing.assert_allclose(combined.dinputs, softmax.dinputs, rtol=1e-10, atol=1e-15)
    numerical = numerical_gradient(lambda: combined.forward(logits, y), logits)
    np.testing.assert_allclose(combined.dinputs, numerical, **FD_TOL)


# -------------------------------------------------------------------------------- optimizers

def one_weight_layer():
    layer = R.Layer_Dense(1, 1)
    layer.set_parameters(np.array([[1.0]]), np.array([[-1.0]]))
    layer.dweights, layer.dbiases = np.array([[0.5]]), np.array([[-0.25]])
    return layer


def two_steps(optimizer):
    layer = one_weight_layer()
    for _ in range(2):
        optimizer.pre_update_params()
        optimizer.update_params(layer)
        optimizer.post_update_params()
    return layer


def test_sgd_steps():
    layer = two_steps(R.Optimizer_SGD())  # lr 1: w = 1 - 2 * 0.5
    assert layer.weights[0, 0] == 0.0 and layer.biases[0, 0] == -0.5
    sgd = R.Optimizer_SGD(learning_rate=1.0, decay=0.5, momentum=0.9)
    layer = two_steps(sgd)
    # step 0: lr 1, u = -0.5; step 1: lr 1/(1+0.5) = 2/3, u = 0.9*(-0.5) - (2/3)*0.5
    u1 = 0.9 * -0.5 - (2 / 3) * 0.5
    assert layer.weight_momentums[0, 0] == pytest.approx(u1, rel=1e-15)
    assert layer.weights[0, 0] == pytest.approx(1 - 0.5 + u1, rel=1e-15)
    assert layer.bias_momentums[0, 0] == pytest.approx(0.9 * 0.25 + (2 / 3) * 0.25, rel=1e-15)
    assert sgd.current_learning_rate == pytest.approx(2 / 3) and sgd.iterations == 2


def test_adagrad_steps():
    layer = two_steps(R.Optimizer_Adagrad())  # lr 1, eps 1e-7; cache 0.25 then 0.5
    expected = 1 - 0.5 / (0.5 + 1e-7) - 0.5 / (np.sqrt(0.5) + 1e-7)
    assert layer.weights[0, 0] == pytest.approx(expected, rel=1e-14)
    assert layer.weight_cache[0, 0] == 0.5 and layer.bias_cache[0, 0] == 0.125


def test_rmsprop_steps():
    layer = two_steps(R.Optimizer_RMSprop())  # lr 0.001, rho 0.9: cache 0.025 then 0.0475
    expected = 1 - 0.001 * 0.5 / (np.sqrt(0.025) + 1e-7) - 0.001 * 0.5 / (np.sqrt(0.0475) + 1e-7)
    assert layer.weight_cache[0, 0] == pytest.approx(0.0475, rel=1e-14)
    assert layer.weights[0, 0] == pytest.approx(expected, rel=1e-14)


def test_adam_steps():
    # with a constant gradient g, bias correction gives m_hat = g and v_hat = g² at every step
    adam = R.Optimizer_Adam(learning_rate=0.01, decay=0.1)
    layer = two_steps(adam)
    step = lambda lr, g: lr * g / (abs(g) + 1e-7)  # noqa: E731
    assert layer.weights[0, 0] == pytest.approx(1 - step(0.01, 0.5) - step(0.01 / 1.1, 0.5),
                                                rel=1e-14)
    assert layer.biases[0, 0] == pytest.approx(-1 + step(0.01, 0.25) + step(0.01 / 1.1, 0.25),
                                               rel=1e-14)
    assert layer.weight_momentums[0, 0] == pytest.approx(0.095, rel=1e-14)
    assert layer.weight_cache[0, 0] == pytest.approx(0.00049975, rel=1e-14)
    assert (adam.learning_rate, adam.decay, adam.epsilon, adam.beta_1, adam.beta_2,
            adam.iterations) == (0.01, 0.1, 1e-7, 0.9, 0.999, 2)


def test_optimizer_defaults():
    assert vars(R.Optimizer_SGD()) == dict(learning_rate=1.0, current_learning_rate=1.0,
                                           decay=0.0, iterations=0, momentum=0.0)
    assert vars(R.Optimizer_Adagrad()) == dict(learning_rate=1.0, current_learning_rate=1.0,
                                               decay=0.0, iterations=0, epsilon=1e-7)
    assert vars(R.Optimizer_RMSprop()) == dict(learning_rate=0.001, current_learning_rate=0.001,
                                               decay=0.0, iterations=0, epsilon=1e-7, rho=0.9)
    assert vars(R.Optimizer_Adam()) == dict(learning_rate=0.001, current_learning_rate=0.001,
                                            decay=0.0, iterations=0, epsilon=1e-7, beta_1=0.9,
                                            beta_2=0.999)


# The printed lr at "epoch e" of the chapter loops is the rate of
# update k = e - 1;
# Fashion-MNIST epoch 10, step s: k = 9 * 469 + s.
LR_PRINTS = [
    (R.Optimizer_Adam, dict(learning_rate=0.05, decay=5e-7), 9799, "0.04975621940303483"),
    (R.Optimizer_Adam, dict(learning_rate=0.05, decay=5e-7), 9899, "0.049753743844839965"),
    (R.Optimizer_Adam, dict(learning_rate=0.05, decay=5e-7), 9999, "0.04975126853296942"),
    (R.Optimizer_Adam, dict(learning_rate=0.02, decay=5e-7), 9999, "0.019900507413187767"),
    (R.Optimizer_Adam, dict(learning_rate=0.05, decay=5e-5), 9999, "0.03333444448148271"),
    (R.Optimizer_Adam, dict(learning_rate=0.001, decay=5e-7), 9999, "0.0009950253706593885"),
    (R.Optimizer_Adam, dict(learning_rate=0.005, decay=1e-3), 9999, "0.00045458678061641964"),
    (R.Optimizer_SGD, dict(decay=1e-3), 9999, "0.09091735612328393"),
    (R.Optimizer_Adagrad, dict(decay=1e-4), 9999, "0.5000250012500626"),
    (R.Optimizer_RMSprop, dict(learning_rate=0.02, decay=1e-5), 9999, "0.018181983472577025"),
    (R.Optimizer_Adam, dict(learning_rate=0.02, decay=1e-5), 9999, "0.018181983472577025"),
    (R.Optimizer_RMSprop, dict(decay=1e-4), 9999, "0.0005000250012500625"),
    (R.Optimizer_Adam, dict(decay=1e-3), 9 * 469, "0.0001915341888527102"),
    (R.Optimizer_Adam, dict(decay=1e-3), 9 * 469 + 100, "0.00018793459875963167"),
    (R.Optimizer_Adam, dict(decay=1e-3), 9 * 469 + 468, "0.00017577781683951485"),
]


@pytest.mark.parametrize("optimizer, kwargs, k, printed", LR_PRINTS)
def test_learning_rate_schedule_prints_like_the_book(optimizer, kwargs, k, printed):
    opt = optimizer(**kwargs)
    opt.iterations = k
    opt.pre_update_params()
    assert str(opt.current_learning_rate) == printed


# ---------------------------------------------------------------------------------- accuracy

def test_accuracy_classes():
    acc = R.Accuracy_Categorical()
    predictions = np.array([0, 2, 1, 1])
    assert acc.calculate(predictions, np.array([0, 2, 2, 1])) == 0.75
    assert acc.calculate(predictions, np.eye(3)[[0, 0, 0, 0]]) == 0.25  # one-hot labels
    assert acc.calculate_accumulated() == 0.5
    acc.new_pass()
    assert (acc.accumulated_sum, acc.accumulated_count) == (0, 0)

    binary = R.Accuracy_Categorical(binary=True)
    binary.init(None)
    assert binary.calculate(np.array([[1], [0], [1]]), np.array([[1], [1], [1]])) == 2 / 3

    regression = R.Accuracy_Regression()
    assert regression.precision is None
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    regression.init(y)
    assert regression.precision == np.std(y) / 250
    regression.init(y * 100)  # kept unless reinit
    assert regression.precision == np.std(y) / 250
    regression.init(y * 100, reinit=True)
    assert regression.precision == np.std(y * 100) / 250
    assert regression.calculate(y + np.array([[0], [1], [0], [0.5]]), y * 1.0) == 0.5


# ------------------------------------------------------------------------------------- model

def spiral_model():
    datasets.init()
    X, y = datasets.spiral_data(samples=20, classes=3)
    X_val, y_val = datasets.spiral_data(samples=10, classes=3)
    model = R.Model()
    model.add(R.Layer_Dense(2, 16, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4))
    model.add(R.Activation_ReLU())
    model.add(R.Layer_Dense(16, 3))
    model.add(R.Activation_Softmax())
    model.set(loss=R.Loss_CategoricalCrossentropy(),
              optimizer=R.Optimizer_Adam(learning_rate=0.05, decay=5e-5),
              accuracy=R.Accuracy_Categorical())
    model.finalize()
    return model, X, y, X_val, y_val


def chapter_style_lines(epochs, batch_size, print_every):
    """The lines Model.train must print, from a hand-written chapter-style loop."""
    datasets.init()
    X, y = datasets.spiral_data(samples=20, classes=3)
    X_val, y_val = datasets.spiral_data(samples=10, classes=3)
    dense1 = R.Layer_Dense(2, 16, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)
    relu = R.Activation_ReLU()
    dense2 = R.Layer_Dense(16, 3)
    head = R.Activation_Softmax_Loss_CategoricalCrossentropy()
    optimizer = R.Optimizer_Adam(learning_rate=0.05, decay=5e-5)

    def forward(batch_X, batch_y):
        dense1.forward(batch_X)
        relu.forward(dense1.output)
        dense2.forward(relu.output)
        return head.forward(dense2.output, batch_y)

    lines = []
    for epoch in range(1, epochs + 1):
        lines.append(f"epoch: {epoch}")
        losses, hits = [], []
        starts = range(0, len(X), batch_size)
        for step, start in enumerate(starts):
            batch_X, batch_y = X[start:start + batch_size], y[start:start + batch_size]
            data_loss = forward(batch_X, batch_y)
            reg_loss = (head.loss.regularization_loss(dense1)
                        + head.loss.regularization_loss(dense2))
            predictions = np.argmax(head.output, axis=1)
            losses.append(-np.log(np.clip(head.output, 1e-7, 1 - 1e-7)[range(len(batch_y)),
                                                                       batch_y]))
            hits.append(predictions == batch_y)
            head.backward(head.output, batch_y)
            dense2.backward(head.dinputs)
            relu.backward(dense2.dinputs)
            dense1.backward(relu.dinputs)
            optimizer.pre_update_params()
            optimizer.update_params(dense1)
            optimizer.update_params(dense2)
            optimizer.post_update_params()
            if not step % print_every or step == len(starts) - 1:
                lines.append(f"step: {step}, acc: {np.mean(hits[-1]):.3f}, "
                             f"loss: {data_loss + reg_loss:.3f} (data_loss: {data_loss:.3f}, "
                             f"reg_loss: {reg_loss:.3f}), lr: {optimizer.current_learning_rate}")
        data_loss = np.sum(np.concatenate(losses)) / len(X)
        reg_loss = head.loss.regularization_loss(dense1) + head.loss.regularization_loss(dense2)
        lines.append(f"training, acc: {np.mean(np.concatenate(hits)):.3f}, "
                     f"loss: {data_loss + reg_loss:.3f} (data_loss: {data_loss:.3f}, "
                     f"reg_loss: {reg_loss:.3f}), lr: {optimizer.current_learning_rate}")
        val_losses, val_hits = [], []
        for start in range(0, len(X_val), batch_size):
            batch_X, batch_y = X_val[start:start + batch_size], y_val[start:start + batch_size]
            forward(batch_X, batch_y)
            val_losses.append(-np.log(np.clip(head.output, 1e-7, 1 - 1e-7)[
                range(len(batch_y)), batch_y]))
            val_hits.append(np.argmax(head.output, axis=1) == batch_y)
        lines.append(f"validation, acc: {np.mean(np.concatenate(val_hits)):.3f}, "
                     f"loss: {np.mean(np.concatenate(val_losses)):.3f}")
    return lines


def test_model_train_prints_the_book_lines(capsys):
    model, X, y, X_val, y_val = spiral_model()
    # 60 samples in batches of 16: steps 0..3, printed at 0, 2 and the last (3)
    assert model.train(X, y, epochs=2, batch_size=16, print_every=2,
                       validation_data=(X_val, y_val)) is None
    lines = capsys.readouterr().out.splitlines()
    assert lines == chapter_style_lines(epochs=2, batch_size=16, print_every=2)

    number = r"-?\d+\.\d{3}"
    step = (rf"step: \d+, acc: {number}, loss: {number} \(data_loss: {number}, "
            rf"reg_loss: {number}\), lr: [0-9.e-]+")
    patterns = [r"epoch: 1", step.replace(r"\d+", "0", 1), step.replace(r"\d+", "2", 1),
                step.replace(r"\d+", "3", 1), "training" + step[len(r"step: \d+"):],
                rf"validation, acc: {number}, loss: {number}"]
    for line, pattern in zip(lines, patterns):
        assert re.fullmatch(pattern, line), line
    assert lines[6] == "epoch: 2" and len(lines) == 12
    assert lines[-3].endswith(f"lr: {0.05 * (1. / (1. + 5e-5 * 7))}")


def test_model_full_batch_train_prints_one_step_per_epoch(capsys):
    model, X, y, _, _ = spiral_model()
    model.train(X, y, epochs=3, print_every=100)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "epoch: 1", "step: 0", "training", "epoch: 2", "step: 0", "training",
        "epoch: 3", "step: 0", "training"]
    assert model.optimizer.iterations == 3


def test_model_finalize_links_and_shortcut():
    model, *_ = spiral_model()
    dense1, relu, dense2, softmax = model.layers
    assert isinstance(model.input_layer, R.Layer_Input)
    assert dense1.prev is model.input_layer and softmax.next is model.loss
    assert relu.prev is dense1 and relu.next is dense2
    assert model.trainable_layers == [dense1, dense2]
    assert model.loss.trainable_layers is model.trainable_layers
    assert model.output_layer_activation is softmax
    assert isinstance(model.softmax_classifier_output,
                      R.Activation_Softmax_Loss_CategoricalCrossentropy)

    regression = R.Model()
    regression.add(R.Layer_Dense(1, 4))
    regression.add(R.Activation_Linear())
    regression.set(loss=R.Loss_MeanSquaredError())
    regression.finalize()
    assert regression.softmax_classifier_output is None


@pytest.mark.parametrize("head", ["softmax+cce", "sigmoid+bce"])
def test_model_backward_is_the_gradient_of_the_loss(rng, head):
    np.random.seed(7)
    model = R.Model()
    model.add(R.Layer_Dense(3, 5, weight_regularizer_l2=1e-2))
    model.add(R.Activation_Sigmoid())
    if head == "softmax+cce":
        model.add(R.Layer_Dense(5, 4))
        model.add(R.Activation_Softmax())
        model.set(loss=R.Loss_CategoricalCrossentropy())
        y = rng.integers(0, 4, 8)
    else:
        model.add(R.Layer_Dense(5, 2))
        model.add(R.Activation_Sigmoid())
        model.set(loss=R.Loss_BinaryCrossentropy())
        y = rng.integers(0, 2, (8, 2))
    model.finalize()
    X = rng.standard_normal((8, 3))
    dense1 = model.layers[0]
    dense1.weights = rng.standard_normal((3, 5))

    def objective():  # data loss + the L2 penalty, whose gradient Dense.backward adds
        return model.loss.calculate(model.forward(X, training=False), y,
                                    include_regularization=True)

    output = model.forward(X, training=True)
    model.backward(output, y)
    numerical = numerical_gradient(lambda: sum(objective()), dense1.weights)
    np.testing.assert_allclose(dense1.dweights, numerical, **FD_TOL)
    numerical = numerical_gradient(lambda: sum(objective()), X)
    np.testing.assert_allclose(dense1.dinputs, numerical, **FD_TOL)


def test_model_predict_evaluate_and_parameters(capsys):
    model, X, y, X_val, y_val = spiral_model()
    predictions = model.predict(X_val)
    assert predictions.shape == (30, 3) and predictions.dtype == np.float64
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-12)
    assert np.array_equal(model.predict(X_val, batch_size=7), predictions)
    classes = model.output_layer_activation.predictions(predictions)
    assert classes.shape == (30,)

    model.evaluate(X_val, y_val, batch_size=8)
    line = capsys.readouterr().out.strip()
    loss = np.mean(-np.log(np.clip(predictions, 1e-7, 1 - 1e-7)[range(30), y_val]))
    accuracy = np.mean(classes == y_val)
    assert line == f"validation, acc: {accuracy:.3f}, loss: {loss:.3f}"

    parameters = model.get_parameters()
    assert len(parameters) == 2
    assert parameters[0][0] is model.layers[0].weights
    other, *_ = spiral_model()
    other.set_parameters([(w * 2, b + 1) for w, b in parameters])
    assert np.array_equal(other.layers[2].weights, parameters[1][0] * 2)
    assert np.array_equal(other.layers[2].biases, parameters[1][1] + 1)

    inference = R.Model()  # Ch22: set with only some arguments, e.g. for loaded parameters
    for layer in model.layers:
        inference.add(layer)
    inference.set(loss=R.Loss_CategoricalCrossentropy(), accuracy=R.Accuracy_Categorical())
    inference.finalize()
    assert inference.optimizer is None
    inference.evaluate(X_val, y_val)
    assert capsys.readouterr().out.strip() == line


def test_model_draws_dropout_masks_in_training_only():
    np.random.seed(0)
    X, y = np.random.randn(12, 2), np.random.randint(0, 3, 12)
    model = R.Model()
    model.add(R.Layer_Dense(2, 8))
    model.add(R.Activation_ReLU())
    model.add(R.Layer_Dropout(0.25))
    model.add(R.Layer_Dense(8, 3))
    model.add(R.Activation_Softmax())
    model.set(loss=R.Loss_CategoricalCrossentropy(), optimizer=R.Optimizer_SGD(),
              accuracy=R.Accuracy_Categorical())
    model.finalize()
    state = rng_state()
    model.predict(X)
    model.evaluate(X, y)
    assert rng_state() == state
    model.forward(X, training=True)
    np.random.set_state(("MT19937", np.frombuffer(state[0], np.uint32), *state[1:]))
    mask = np.random.binomial(1, 0.75, size=(12, 8)) / 0.75
    assert np.array_equal(model.layers[2].binary_mask, mask)
