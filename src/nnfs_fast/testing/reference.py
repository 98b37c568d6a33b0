"""The float64 oracle: the book's final framework (chapters 18-22) restated in plain NumPy.

Every kernel of nnfs_fast is tested against this module. It follows the same API, attribute
names, formulas and RNG draws as the book, written from the equations for clarity rather than
speed. Differences from the book, all deliberate:

* everything is float64: inputs, parameters and gradients are cast on entry, so the oracle has
  no float32 round-off of its own;
* both chapter-era call forms work: ``forward(inputs)`` and ``forward(inputs, training)``
  (``Layer_Dropout`` defaults to training, like the Ch15 one-argument form), the Ch9-17
  ``Activation_Softmax_Loss_CategoricalCrossentropy.forward(inputs, y_true)`` and
  ``Loss.regularization_loss(layer)`` as well as the Ch18+ forms;
* ``Loss.calculate`` and ``Accuracy.calculate`` work without a prior ``new_pass()``;
* ``Activation_Softmax.backward`` is the vectorised Jacobian product, not a per-sample loop;
* optimizer state is created per attribute, and there is no persistence (save/load).

Kept from the book on purpose: the L1 sub-gradient of +1 at 0, the clipping only in the losses'
forward (and BCE's backward), and ``Loss_MeanAbsoluteError.backward``'s sign
(``+sign(y - y_pred)``, the negative of the true gradient of the mean absolute error; README.md,
"Compatibility notes").
"""
import numpy as np

_EPS_CLIP = 1e-7  # probabilities are clipped to [1e-7, 1 - 1e-7] in the losses


def _f64(x):
    """x as a float64 ndarray (no copy when it already is one)."""
    return np.asarray(x, dtype=np.float64)


def _penalty(param, l1, l2):
    """l1 * sum|param| + l2 * sum(param²), each term only when its strength is > 0."""
    total = 0
    if l1 > 0:
        total += l1 * np.sum(np.abs(param))
    if l2 > 0:
        total += l2 * np.sum(param * param)
    return total


def _penalty_gradient(param, l1, l2):
    """Gradient of ``_penalty``, with the book's sub-gradient sign(0) = +1 for L1."""
    grad = np.zeros_like(param)
    if l1 > 0:
        grad += l1 * np.where(param < 0, -1.0, 1.0)
    if l2 > 0:
        grad += 2 * l2 * param
    return grad


def _class_indices(y_true):
    """Sparse labels (N,) from sparse or one-hot (N, k) labels."""
    y_true = np.asarray(y_true)
    return np.argmax(y_true, axis=1) if y_true.ndim == 2 else y_true


def _batches(n_samples, batch_size):
    """Row slices of consecutive batches (the last may be short); one slice of everything when
    batch_size is None. No shuffling, like the book."""
    if batch_size is None:
        return [slice(None)]
    n_steps = -(-n_samples // batch_size)
    return [slice(step * batch_size, (step + 1) * batch_size) for step in range(n_steps)]


# ------------------------------------------------------------------------------------ layers

class Layer_Dense:
    """Fully connected layer: output = inputs · weights + biases."""

    def __init__(self, n_inputs, n_neurons, weight_regularizer_l1=0, weight_regularizer_l2=0,
                 bias_regularizer_l1=0, bias_regularizer_l2=0):
        self.weights = 0.01 * _f64(np.random.randn(n_inputs, n_neurons))
        self.biases = np.zeros((1, n_neurons))
        self.weight_regularizer_l1 = weight_regularizer_l1
        self.weight_regularizer_l2 = weight_regularizer_l2
        self.bias_regularizer_l1 = bias_regularizer_l1
        self.bias_regularizer_l2 = bias_regularizer_l2

    def forward(self, inputs, training=False):
        self.inputs = _f64(inputs)
        self.output = self.inputs @ self.weights + self.biases

    def backward(self, dvalues):
        dvalues = _f64(dvalues)
        self.dweights = self.inputs.T @ dvalues + _penalty_gradient(
            self.weights, self.weight_regularizer_l1, self.weight_regularizer_l2)
        self.dbiases = np.sum(dvalues, axis=0, keepdims=True) + _penalty_gradient(
            self.biases, self.bias_regularizer_l1, self.bias_regularizer_l2)
        self.dinputs = dvalues @ self.weights.T

    def get_parameters(self):
        return self.weights, self.biases

    def set_parameters(self, weights, biases):
        self.weights = _f64(weights)
        self.biases = _f64(biases)


class Layer_Dropout:
    """Inverted dropout; the attribute ``rate`` holds the keep probability 1 - rate."""

    def __init__(self, rate):
        self.rate = 1 - rate

    def forward(self, inputs, training=True):
        self.inputs = _f64(inputs)
        if not training:
            self.output = self.inputs.copy()
            return
        self.binary_mask = np.random.binomial(1, self.rate, size=self.inputs.shape) / self.rate
        self.output = self.inputs * self.binary_mask

    def backward(self, dvalues):
        self.dinputs = _f64(dvalues) * self.binary_mask


class Layer_Input:
    """The model's first layer: its output is the input batch."""

    def forward(self, inputs, training=False):
        self.output = _f64(inputs)


# ------------------------------------------------------------------------------- activations

class Activation_ReLU:
    """ReLU: max(0, x); the gradient is zero where x <= 0."""

    def forward(self, inputs, training=False):
        self.inputs = _f64(inputs)
        self.output = np.maximum(0, self.inputs)

    def backward(self, dvalues):
        self.dinputs = np.where(self.inputs <= 0, 0.0, _f64(dvalues))

    def predictions(self, outputs):
        return outputs


class Activation_Softmax:
    """Row-wise softmax: exp(x - max x) / sum exp(x - max x)."""

    def forward(self, inputs, training=False):
        self.inputs = _f64(inputs)
        exp_values = np.exp(self.inputs - np.max(self.inputs, axis=1, keepdims=True))
        self.output = exp_values / np.sum(exp_values, axis=1, keepdims=True)

    def backward(self, dvalues):
        # per sample J·d with J = diag(s) - s sᵀ, i.e. s ⊙ (d - (s·d))
        s, d = self.output, _f64(dvalues)
        self.dinputs = s * (d - np.sum(s * d, axis=1, keepdims=True))

    def predictions(self, outputs):
        return np.argmax(outputs, axis=1)


class Activation_Sigmoid:
    """Logistic sigmoid: 1 / (1 + exp(-x))."""

    def forward(self, inputs, training=False):
        self.inputs = _f64(inputs)
        self.output = 1 / (1 + np.exp(-self.inputs))

    def backward(self, dvalues):
        self.dinputs = _f64(dvalues) * (1 - self.output) * self.output

    def predictions(self, outputs):
        return (outputs > 0.5) * 1


class Activation_Linear:
    """Identity activation (regression output)."""

    def forward(self, inputs, training=False):
        self.inputs = _f64(inputs)
        self.output = self.inputs

    def backward(self, dvalues):
        self.dinputs = _f64(dvalues).copy()

    def predictions(self, outputs):
        return outputs


# ------------------------------------------------------------------------------------ losses

class Loss:
    """Base loss: mean of the subclass's per-sample ``forward``, accumulation, regularization."""

    def __init__(self):
        self.trainable_layers = []
        self.new_pass()

    def regularization_loss(self, layer=None):
        layers = self.trainable_layers if layer is None else [layer]
        return sum((_penalty(lay.weights, lay.weight_regularizer_l1, lay.weight_regularizer_l2)
                    + _penalty(lay.biases, lay.bias_regularizer_l1, lay.bias_regularizer_l2)
                    for lay in layers), 0)

    def remember_trainable_layers(self, trainable_layers):
        self.trainable_layers = trainable_layers

    def calculate(self, output, y, *, include_regularization=False):
        sample_losses = self.forward(output, y)
        data_loss = np.mean(sample_losses)
        self.accumulated_sum += np.sum(sample_losses)
        self.accumulated_count += len(sample_losses)
        if not include_regularization:
            return data_loss
        return data_loss, self.regularization_loss()

    def calculate_accumulated(self, *, include_regularization=False):
        data_loss = self.accumulated_sum / self.accumulated_count
        if not include_regularization:
            return data_loss
        return data_loss, self.regularization_loss()

    def new_pass(self):
        self.accumulated_sum = 0
        self.accumulated_count = 0


class Loss_CategoricalCrossentropy(Loss):
    """-log of the predicted probability of the true class (sparse or one-hot labels)."""

    def forward(self, y_pred, y_true):
        y_pred = np.clip(_f64(y_pred), _EPS_CLIP, 1 - _EPS_CLIP)
        y_true = np.asarray(y_true)
        if y_true.ndim == 1:
            correct_confidences = y_pred[np.arange(len(y_pred)), y_true]
        elif y_true.ndim == 2:
            correct_confidences = np.sum(y_pred * y_true, axis=1)
        else:
            raise ValueError(f"y_true: expected sparse (N,) or one-hot (N, k) labels, "
                             f"got shape {y_true.shape}")
        return -np.log(correct_confidences)

    def backward(self, dvalues, y_true):
        dvalues = _f64(dvalues)
        samples, labels = dvalues.shape
        y_true = np.asarray(y_true)
        if y_true.ndim == 1:
            y_true = np.eye(labels)[y_true]
        self.dinputs = -y_true / dvalues / samples


class Activation_Softmax_Loss_CategoricalCrossentropy:
    """Softmax followed by categorical cross-entropy, with the gradient (softmax - onehot) / N."""

    def __init__(self):
        self.activation = Activation_Softmax()
        self.loss = Loss_CategoricalCrossentropy()

    def forward(self, inputs, y_true):
        self.activation.forward(inputs)
        self.output = self.activation.output
        return self.loss.calculate(self.output, y_true)

    def backward(self, dvalues, y_true):
        samples = len(dvalues)
        self.dinputs = np.array(dvalues, dtype=np.float64)
        self.dinputs[np.arange(samples), _class_indices(y_true)] -= 1
        self.dinputs /= samples


class Loss_BinaryCrossentropy(Loss):
    """Mean over outputs of -(y log p + (1 - y) log(1 - p)), p clipped to [1e-7, 1 - 1e-7]."""

    def forward(self, y_pred, y_true):
        p = np.clip(_f64(y_pred), _EPS_CLIP, 1 - _EPS_CLIP)
        y = _f64(y_true)
        return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), axis=-1)

    def backward(self, dvalues, y_true):
        samples, outputs = np.shape(dvalues)
        p = np.clip(_f64(dvalues), _EPS_CLIP, 1 - _EPS_CLIP)
        y = _f64(y_true)
        self.dinputs = -(y / p - (1 - y) / (1 - p)) / outputs / samples


class Loss_MeanSquaredError(Loss):
    """L2 loss: mean over outputs of (y - y_pred)²."""

    def forward(self, y_pred, y_true):
        return np.mean((_f64(y_true) - _f64(y_pred)) ** 2, axis=-1)

    def backward(self, dvalues, y_true):
        samples, outputs = np.shape(dvalues)
        self.dinputs = -2 * (_f64(y_true) - _f64(dvalues)) / outputs / samples


class Loss_MeanAbsoluteError(Loss):
    """L1 loss: mean over outputs of |y - y_pred| (backward keeps the book's sign, see above)."""

    def forward(self, y_pred, y_true):
        return np.mean(np.abs(_f64(y_true) - _f64(y_pred)), axis=-1)

    def backward(self, dvalues, y_true):
        samples, outputs = np.shape(dvalues)
        self.dinputs = np.sign(_f64(y_true) - _f64(dvalues)) / outputs / samples


# -------------------------------------------------------------------------------- optimizers

# (parameter, gradient, momentum state, cache state) attribute names on a trainable layer
_SLOTS = (("weights", "dweights", "weight_momentums", "weight_cache"),
          ("biases", "dbiases", "bias_momentums", "bias_cache"))


def _state(layer, name, like):
    """The optimizer state array ``layer.<name>``, created as zeros on first use."""
    if not hasattr(layer, name):
        setattr(layer, name, np.zeros_like(like))
    return getattr(layer, name)


class _Optimizer:
    """Learning-rate decay lr / (1 + decay · iterations) and the step counter."""

    def __init__(self, learning_rate, decay):
        self.learning_rate = learning_rate
        self.current_learning_rate = learning_rate
        self.decay = decay
        self.iterations = 0

    def pre_update_params(self):
        if self.decay:
            self.current_learning_rate = self.learning_rate * (
                1. / (1. + self.decay * self.iterations))

    def post_update_params(self):
        self.iterations += 1


class Optimizer_SGD(_Optimizer):
    """SGD, optionally with momentum: u = momentum · u - lr · g; p += u."""

    def __init__(self, learning_rate=1., decay=0., momentum=0.):
        super().__init__(learning_rate, decay)
        self.momentum = momentum

    def update_params(self, layer):
        for param, grad, momentums, _ in _SLOTS:
            p, g = getattr(layer, param), getattr(layer, grad)
            if self.momentum:
                u = _state(layer, momentums, p)
                u[...] = self.momentum * u - self.current_learning_rate * g
                p += u
            else:
                p += -self.current_learning_rate * g


class Optimizer_Adagrad(_Optimizer):
    """Adagrad: cache += g²; p += -lr · g / (sqrt(cache) + epsilon)."""

    def __init__(self, learning_rate=1., decay=0., epsilon=1e-7):
        super().__init__(learning_rate, decay)
        self.epsilon = epsilon

    def update_params(self, layer):
        for param, grad, _, cache in _SLOTS:
            p, g = getattr(layer, param), getattr(layer, grad)
            c = _state(layer, cache, p)
            c += g ** 2
            p += -self.current_learning_rate * g / (np.sqrt(c) + self.epsilon)


class Optimizer_RMSprop(_Optimizer):
    """RMSprop: cache = rho · cache + (1 - rho) · g²; p += -lr · g / (sqrt(cache) + epsilon)."""

    def __init__(self, learning_rate=0.001, decay=0., epsilon=1e-7, rho=0.9):
        super().__init__(learning_rate, decay)
        self.epsilon = epsilon
        self.rho = rho

    def update_params(self, layer):
        for param, grad, _, cache in _SLOTS:
            p, g = getattr(layer, param), getattr(layer, grad)
            c = _state(layer, cache, p)
            c[...] = self.rho * c + (1 - self.rho) * g ** 2
            p += -self.current_learning_rate * g / (np.sqrt(c) + self.epsilon)


class Optimizer_Adam(_Optimizer):
    """Adam with bias correction by step t = iterations + 1; epsilon outside the square root."""

    def __init__(self, learning_rate=0.001, decay=0., epsilon=1e-7, beta_1=0.9, beta_2=0.999):
        super().__init__(learning_rate, decay)
        self.epsilon = epsilon
        self.beta_1 = beta_1
        self.beta_2 = beta_2

    def update_params(self, layer):
        t = self.iterations + 1
        for param, grad, momentums, cache in _SLOTS:
            p, g = getattr(layer, param), getattr(layer, grad)
            m, v = _state(layer, momentums, p), _state(layer, cache, p)
            m[...] = self.beta_1 * m + (1 - self.beta_1) * g
            v[...] = self.beta_2 * v + (1 - self.beta_2) * g ** 2
            m_hat = m / (1 - self.beta_1 ** t)
            v_hat = v / (1 - self.beta_2 ** t)
            p += -self.current_learning_rate * m_hat / (np.sqrt(v_hat) + self.epsilon)


# ---------------------------------------------------------------------------------- accuracy

class Accuracy:
    """Base accuracy: mean of the subclass's ``compare``, with accumulation over batches."""

    def __init__(self):
        self.new_pass()

    def calculate(self, predictions, y):
        comparisons = self.compare(predictions, y)
        self.accumulated_sum += np.sum(comparisons)
        self.accumulated_count += len(comparisons)
        return np.mean(comparisons)

    def calculate_accumulated(self):
        return self.accumulated_sum / self.accumulated_count

    def new_pass(self):
        self.accumulated_sum = 0
        self.accumulated_count = 0


class Accuracy_Categorical(Accuracy):
    """Fraction of predicted classes equal to the labels (one-hot labels are argmax-ed)."""

    def __init__(self, *, binary=False):
        super().__init__()
        self.binary = binary

    def init(self, y):
        pass

    def compare(self, predictions, y):
        if not self.binary:
            y = _class_indices(y)
        return predictions == y


class Accuracy_Regression(Accuracy):
    """Fraction of predictions within precision = std(y) / 250 of the target."""

    def __init__(self):
        super().__init__()
        self.precision = None

    def init(self, y, reinit=False):
        if self.precision is None or reinit:
            self.precision = np.std(y) / 250

    def compare(self, predictions, y):
        return np.absolute(predictions - y) < self.precision


# ------------------------------------------------------------------------------------- model

class Model:
    """A sequence of layers trained with a loss, an optimizer and an accuracy (chapters 18-22)."""

    def __init__(self):
        self.layers = []
        self.softmax_classifier_output = None
        self.loss = self.optimizer = self.accuracy = None

    def add(self, layer):
        self.layers.append(layer)

    def set(self, *, loss=None, optimizer=None, accuracy=None):
        if loss is not None:
            self.loss = loss
        if optimizer is not None:
            self.optimizer = optimizer
        if accuracy is not None:
            self.accuracy = accuracy

    def finalize(self):
        self.input_layer = Layer_Input()
        for i, layer in enumerate(self.layers):
            layer.prev = self.layers[i - 1] if i > 0 else self.input_layer
            layer.next = self.layers[i + 1] if i + 1 < len(self.layers) else self.loss
        self.trainable_layers = [layer for layer in self.layers if hasattr(layer, "weights")]
        self.output_layer_activation = self.layers[-1]
        if self.loss is not None:
            self.loss.remember_trainable_layers(self.trainable_layers)
        if (isinstance(self.layers[-1], Activation_Softmax)
                and isinstance(self.loss, Loss_CategoricalCrossentropy)):
            self.softmax_classifier_output = Activation_Softmax_Loss_CategoricalCrossentropy()

    def train(self, X, y, *, epochs=1, batch_size=None, print_every=1, validation_data=None):
        self.accuracy.init(y)
        batches = _batches(len(X), batch_size)
        for epoch in range(1, epochs + 1):
            print(f"epoch: {epoch}")
            self.loss.new_pass()
            self.accuracy.new_pass()
            for step, rows in enumerate(batches):
                batch_X, batch_y = X[rows], y[rows]
                output = self.forward(batch_X, training=True)
                data_loss, regularization_loss = self.loss.calculate(
                    output, batch_y, include_regularization=True)
                loss = data_loss + regularization_loss
                predictions = self.output_layer_activation.predictions(output)
                accuracy = self.accuracy.calculate(predictions, batch_y)
                self.backward(output, batch_y)
                self.optimizer.pre_update_params()
                for layer in self.trainable_layers:
                    self.optimizer.update_params(layer)
                self.optimizer.post_update_params()
                if not step % print_every or step == len(batches) - 1:
                    print(f"step: {step}, acc: {accuracy:.3f}, loss: {loss:.3f} ("
                          f"data_loss: {data_loss:.3f}, reg_loss: {regularization_loss:.3f}), "
                          f"lr: {self.optimizer.current_learning_rate}")
            data_loss, regularization_loss = self.loss.calculate_accumulated(
                include_regularization=True)
            loss = data_loss + regularization_loss
            accuracy = self.accuracy.calculate_accumulated()
            print(f"training, acc: {accuracy:.3f}, loss: {loss:.3f} ("
                  f"data_loss: {data_loss:.3f}, reg_loss: {regularization_loss:.3f}), "
                  f"lr: {self.optimizer.current_learning_rate}")
            if validation_data is not None:
                self.evaluate(*validation_data, batch_size=batch_size)

    def evaluate(self, X_val, y_val, *, batch_size=None):
        self.loss.new_pass()
        self.accuracy.new_pass()
        for rows in _batches(len(X_val), batch_size):
            batch_X, batch_y = X_val[rows], y_val[rows]
            output = self.forward(batch_X, training=False)
            self.loss.calculate(output, batch_y)
            predictions = self.output_layer_activation.predictions(output)
            self.accuracy.calculate(predictions, batch_y)
        validation_loss = self.loss.calculate_accumulated()
        validation_accuracy = self.accuracy.calculate_accumulated()
        print(f"validation, acc: {validation_accuracy:.3f}, loss: {validation_loss:.3f}")

    def predict(self, X, *, batch_size=None):
        return np.vstack([self.forward(X[rows], training=False)
                          for rows in _batches(len(X), batch_size)])

    def forward(self, X, training):
        self.input_layer.forward(X, training)
        for layer in self.layers:
            layer.forward(layer.prev.output, training)
        return self.layers[-1].output

    def backward(self, output, y):
        if self.softmax_classifier_output is not None:
            self.softmax_classifier_output.backward(output, y)
            self.layers[-1].dinputs = self.softmax_classifier_output.dinputs
            layers = self.layers[:-1]
        else:
            self.loss.backward(output, y)
            layers = self.layers
        for layer in reversed(layers):
            layer.backward(layer.next.dinputs)

    def get_parameters(self):
        return [layer.get_parameters() for layer in self.trainable_layers]

    def set_parameters(self, parameters):
        for parameter_set, layer in zip(parameters, self.trainable_layers):
            layer.set_parameters(*parameter_set)
