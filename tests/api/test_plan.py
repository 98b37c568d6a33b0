"""The compiled training plan (issue 12): ``Model(compiled=True)`` runs each training batch
(forward, loss and accuracy counts, backward, optimizer updates) in one native call.

The contract checked here: for every supported combination of layers, loss, optimizer,
accuracy, data and ``train`` arguments the compiled run is BIT-IDENTICAL to the Python path
(``compiled=False``): the printed lines, the returned history, the book's attributes after
training (every layer's inputs, output, dinputs, dweights, dbiases, binary_mask, the optimizer
state on the layers, the optimizer's iterations and current_learning_rate, the loss's and the
accuracy's accumulated sums and counts), NumPy's global RNG state afterwards, and what
``evaluate`` and ``predict`` return. A model holding anything but the library's own exact
classes runs the Python path (``plan_status()`` says why) and trains the same. A refused call
raises the Python path's error before any update.

Every comparison is exact (``np.testing.assert_array_equal``, ``==``): no tolerance. Buffers of
the plan may be reused between steps, so attributes are compared by value, from copies.
"""
import copy
import functools
import pickle
import threading

import numpy as np
import pytest

import nnfs_fast
from conftest import layout
from nnfs_fast.accuracy import Accuracy_Categorical, Accuracy_Regression
from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.callbacks import Callback, LearningRateScheduler
from nnfs_fast.datasets import sine_data, spiral_data, vertical_data
from nnfs_fast.layers import Layer_Dense, Layer_Dropout
from nnfs_fast.losses import (
    Loss,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanAbsoluteError,
    Loss_MeanSquaredError,
)
from nnfs_fast.model import Model
from nnfs_fast.optimizers import Optimizer_Adagrad, Optimizer_Adam, Optimizer_RMSprop, Optimizer_SGD

pytestmark = [
    # training raises no NumPy warning (docs/GUARANTEES.md, Numerics); the plan neither
    pytest.mark.filterwarnings("error"),
]

# ------------------------------------------------------------------------------------ data


def _drawn(make, *args, seed=0):
    """make(*args) under np.random.seed(seed), leaving the global RNG as it was."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return make(*args)
    finally:
        np.random.set_state(state)


def spiral(samples=50, classes=3, seed=0):
    """X (samples*classes, 2) float32, y (samples*classes,) uint8."""
    return _drawn(spiral_data, samples, classes, seed=seed)


def sine(samples=100):
    """X, y (samples, 1) float64: the regression data of the book (no RNG use)."""
    return sine_data(samples)


def wide(n=512, features=32, classes=10):
    """Data big enough for the kernels to split work between threads (kernels/parallel.pxd:
    PAR_FLOPS, PAR_ELEMS): X (n, features) float32, y (n,) int64; no global RNG use."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((n, features)).astype(np.float32)
    y = np.argmax(X @ rng.standard_normal((features, classes)), axis=1)
    return X, y


# ---------------------------------------------------------------------------------- models


def dense(n_inputs, n_neurons, **regularizers):
    return functools.partial(Layer_Dense, n_inputs, n_neurons, **regularizers)


def dropout(rate):
    return functools.partial(Layer_Dropout, rate)


def adam():
    return Optimizer_Adam(learning_rate=0.02, decay=1e-3)


def build(layers, loss=Loss_CategoricalCrossentropy, optimizer=adam,
          accuracy=Accuracy_Categorical, **model_kwargs):
    """A builder: ``make(compiled)`` adds ``layers`` (zero-argument factories, called in
    order: Layer_Dense draws its weights from the global RNG), sets ``loss()``,
    ``optimizer()`` and ``accuracy()``, and finalizes."""
    def make(compiled):
        model = Model(compiled=compiled, **model_kwargs)
        for factory in layers:
            model.add(factory())
        model.set(loss=loss(), optimizer=optimizer(), accuracy=accuracy())
        model.finalize()
        return model
    return make


FUSED = [dense(2, 16), Activation_ReLU, dense(16, 3), Activation_Softmax]
CLASSIFIER = [dense(2, 16), Activation_ReLU, dropout(0.1), dense(16, 16), Activation_ReLU,
              dense(16, 3), Activation_Softmax]
REGRESSION = [dense(1, 16), Activation_ReLU, dense(16, 16), Activation_ReLU, dense(16, 1),
              Activation_Linear]
BINARY = [dense(2, 16), Activation_ReLU, dense(16, 1), Activation_Sigmoid]
WIDE = [dense(32, 128), Activation_ReLU, dropout(0.3), dense(128, 128), Activation_ReLU,
        dense(128, 10), Activation_Softmax]


def all_regularizers(strength):
    return {name: strength for name in ("weight_regularizer_l1", "weight_regularizer_l2",
                                        "bias_regularizer_l1", "bias_regularizer_l2")}


# ------------------------------------------------------------------- what a run records


class Recorder(Callback):
    """Records every hook with its logs, and the first layer's parameters after each batch
    and epoch (what a callback such as ModelCheckpoint reads in the middle of training)."""

    def __init__(self):
        self.seen = []

    def _parameters(self):
        layer = self.model.trainable_layers[0]
        return layer.weights.copy(), layer.biases.copy()

    def on_epoch_begin(self, epoch, logs):
        self.seen.append(("epoch_begin", epoch, dict(logs)))

    def on_batch_end(self, step, logs):
        self.seen.append(("batch_end", step, dict(logs), self._parameters()))

    def on_epoch_end(self, epoch, logs):
        self.seen.append(("epoch_end", epoch, dict(logs), self._parameters()))


class StopAt(Callback):
    """Sets model.stop_training after step ``step`` of epoch ``epoch``."""

    def __init__(self, epoch, step):
        self.at = (epoch, step)
        self.epoch = None

    def on_epoch_begin(self, epoch, logs):
        self.epoch = epoch

    def on_batch_end(self, step, logs):
        if (self.epoch, step) == self.at:
            self.model.stop_training = True


def train(X, y, callbacks=None, **kwargs):
    """An action: ``model.train(X, y, **kwargs)``; returns (history, what each Recorder saw).
    ``callbacks`` is a factory of the list (each run gets new callback objects)."""
    def run(model):
        made = callbacks() if callbacks else None
        history = model.train(X, y, callbacks=made, **kwargs)
        return history, [cb.seen for cb in made or () if isinstance(cb, Recorder)]
    return f"train({', '.join(kwargs)})", run


def evaluate(X, y, **kwargs):
    return f"evaluate({kwargs})", lambda model: model.evaluate(X, y, **kwargs)


def predict(X, **kwargs):
    return f"predict({kwargs})", lambda model: model.predict(X, **kwargs)


def change(label, fn):
    """An action that changes the model between two train calls (returns None)."""
    return label, lambda model: fn(model)


MISSING = "<attribute missing>"


def _frozen(value):
    """A copy of an attribute that later steps cannot change: arrays copied, other objects
    (prev/next layers, the loss) by class name, lists and tuples element by element."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if value is None or isinstance(value, (bool, int, float, str, np.generic)):
        return value
    return f"<{type(value).__name__}>"


def _public(obj):
    """The object's public attributes (the book's), frozen."""
    return {k: _frozen(v) for k, v in vars(obj).items() if not k.startswith("_")}


def snapshot(model):
    """Everything training leaves behind: each layer's public attributes, the optimizer's and
    the accuracy's, the loss's accumulated totals and gradient, the global RNG state. The
    training data itself (the first layer's inputs, the input layer's output) is compared by
    value as float64: the Python path keeps the caller's array, whatever its dtype."""
    state = {"rng": np.random.get_state(), "stop_training": model.stop_training,
             "input_layer": {k: np.array(v, dtype=np.float64) if isinstance(v, np.ndarray)
                             else _frozen(v) for k, v in vars(model.input_layer).items()}}
    for i, layer in enumerate(model.layers):
        attributes = _public(layer)
        if i == 0 and isinstance(attributes.get("inputs"), np.ndarray):
            attributes["inputs"] = np.array(layer.inputs, dtype=np.float64)
        state[f"layers[{i}] {type(layer).__name__}"] = attributes
    state["loss"] = {k: _frozen(getattr(model.loss, k, MISSING))
                     for k in ("accumulated_sum", "accumulated_count", "dinputs")}
    if model.softmax_classifier_output is not None:
        state["softmax_classifier_output"] = _public(model.softmax_classifier_output)
    state["optimizer"] = _public(model.optimizer)
    state["accuracy"] = _public(model.accuracy)
    return state


def _kept_by_refusal(model):
    """What a refused call must leave as it was (docs/GUARANTEES.md, "A refused call changes
    nothing"): parameters, optimizer state on the layers, the optimizer's attributes
    (iterations, current_learning_rate) and, for checks made before training starts, the
    global RNG."""
    names = ("weights", "biases", "weight_momentums", "bias_momentums", "weight_cache",
             "bias_cache")
    return {"rng": np.random.get_state(), "optimizer": _public(model.optimizer),
            "layers": [{k: _frozen(getattr(layer, k)) for k in names if hasattr(layer, k)}
                       for layer in model.trainable_layers]}


def assert_same(a, b, what):
    """a == b exactly: arrays by shape, dtype and value; dicts and sequences item by item;
    scalars by type and value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), \
            f"{what}: {type(a).__name__} vs {type(b).__name__}"
        assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
        assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs {b.dtype}"
        np.testing.assert_array_equal(a, b, err_msg=what, strict=True)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f"{what}: keys {sorted(a)} vs {sorted(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{what}.{key}" if what else str(key))
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{what}: {a!r} vs {b!r}"
        for i, (x, z) in enumerate(zip(a, b)):
            assert_same(x, z, f"{what}[{i}]")
    else:
        assert type(a) is type(b), f"{what}: {a!r} ({type(a).__name__}) vs {b!r} " \
                                   f"({type(b).__name__})"
        assert a == b or (a != a and b != b), f"{what}: {a!r} vs {b!r}"


def _run(capsys, make, compiled, actions, seed, threads, refusals=True):
    """Build the model under np.random.seed(seed) (and ``threads`` kernel threads when
    given), run the actions; returns the model and one record per action. ``refusals``:
    check that a call raising an error changed nothing (False for errors raised in the
    middle of training, after earlier steps)."""
    before_threads = nnfs_fast.get_num_threads()
    try:
        if threads is not None:
            nnfs_fast.set_num_threads(threads)
        np.random.seed(seed)
        model = make(compiled)
        capsys.readouterr()
        records = [("plan_status", model.plan_status())]
        for label, action in actions:
            before = _kept_by_refusal(model)
            try:
                outcome = action(model)
            except Exception as exc:  # noqa: BLE001 - compared with the other path's
                outcome = ("raised", type(exc).__name__, str(exc))
                assert_same(_kept_by_refusal(model) if refusals else before, before,
                            f"compiled={compiled}: state after the refused {label}")
            records.append((label, {"outcome": _frozen(outcome),
                                    "stdout": capsys.readouterr().out,
                                    "state": snapshot(model)}))
        return model, records
    finally:
        nnfs_fast.set_num_threads(before_threads)


def assert_paths_agree(capsys, make, actions, *, seed=0, threads=(None, None),
                       status="compiled", refusals=True):
    """Run ``actions`` on the model ``make`` builds, once with compiled=True and once with
    compiled=False (threads: the kernel thread counts of the two runs), and assert that
    every record agrees. ``status``: what the compiled model's plan_status() must be
    ("compiled", a "python: ..." prefix, or None: not checked); refusals: as _run's. Returns
    the compiled model and its records."""
    compiled_model, compiled_records = _run(capsys, make, True, actions, seed, threads[0],
                                            refusals)
    _, python_records = _run(capsys, make, False, actions, seed, threads[1], refusals)
    got_status = compiled_records[0][1]
    if status is None:
        pass
    elif status == "compiled":
        assert got_status == "compiled", f"plan_status() of the compiled=True model: " \
                                         f"{got_status!r}"
    else:
        assert got_status.startswith(status) and len(got_status) > len("python: "), \
            f"plan_status() of the compiled=True model: {got_status!r}, expected {status}..."
    assert python_records[0][1].startswith("python: "), \
        f"plan_status() of a compiled=False model: {python_records[0][1]!r}"
    for (label, got), (_, want) in zip(compiled_records[1:], python_records[1:]):
        assert got["stdout"] == want["stdout"], f"{label}: printed lines differ"
        assert_same(got["outcome"], want["outcome"], f"{label} returned")
        assert_same(got["state"], want["state"], f"after {label}")
    return compiled_model, compiled_records


def fit_and_check(capsys, make, X, y, *, seed=0, threads=(None, None), status="compiled",
                  **kwargs):
    """assert_paths_agree for train(X, y, **kwargs), then evaluate and predict on X."""
    return assert_paths_agree(capsys, make, [
        train(X, y, **kwargs), evaluate(X, y, batch_size=kwargs.get("batch_size")),
        predict(X, batch_size=kwargs.get("batch_size"))], seed=seed, threads=threads,
        status=status)


# --------------------------------------------------------------------- layers and losses

TRAIN = dict(epochs=3, batch_size=32, print_every=2)   # 150 samples: 4 batches + one of 22

LAYER_STACKS = {
    "dense-relu fused": FUSED,
    "one dense (first and last)": [dense(2, 3), Activation_Softmax],
    "dropout 0.1 then standalone relu": [dense(2, 16), dropout(0.1), Activation_ReLU,
                                         dense(16, 3), Activation_Softmax],
    "dropout 0.5 then standalone relu": [dense(2, 16), dropout(0.5), Activation_ReLU,
                                         dense(16, 3), Activation_Softmax],
    "dropout 0.7 then standalone relu": [dense(2, 16), dropout(0.7), Activation_ReLU,
                                         dense(16, 3), Activation_Softmax],
    "fused pair, dropout, fused pair": CLASSIFIER,
    "dropout on the inputs": [dropout(0.1), dense(2, 16), Activation_ReLU, dense(16, 3),
                              Activation_Softmax],
    "sigmoid hidden": [dense(2, 16), Activation_Sigmoid, dense(16, 3), Activation_Softmax],
    "linear hidden": [dense(2, 16), Activation_Linear, dense(16, 3), Activation_Softmax],
    "relu after relu": [dense(2, 16), Activation_ReLU, Activation_ReLU, dense(16, 3),
                        Activation_Softmax],
    **{f"{name}": [dense(2, 16, **{name: 5e-3}), Activation_ReLU,
                   dense(16, 3, **{name: 1e-3}), Activation_Softmax]
       for name in ("weight_regularizer_l1", "weight_regularizer_l2", "bias_regularizer_l1",
                    "bias_regularizer_l2")},
    "all four regularizers": [dense(2, 16, **all_regularizers(5e-4)), Activation_ReLU,
                              dropout(0.1), dense(16, 3, **all_regularizers(1e-3)),
                              Activation_Softmax],
}


@pytest.mark.parametrize("layers", LAYER_STACKS.values(), ids=LAYER_STACKS.keys())
def test_layer_stacks(capsys, layers):
    X, y = spiral()
    model, _ = fit_and_check(capsys, build(layers), X, y, **TRAIN)
    if model.layers[0] is model.trainable_layers[0]:
        assert model.layers[0].dinputs is None   # a first Dense: no input gradient (model.py)


def test_vertical_data(capsys):
    X, y = _drawn(vertical_data, 40, 3, seed=3)
    fit_and_check(capsys, build(CLASSIFIER), X, y, **TRAIN)


@pytest.mark.parametrize("labels", ["sparse", "column (N, 1)", "one-hot float64",
                                    "one-hot uint8"])
def test_softmax_crossentropy_labels(capsys, labels):
    """(N, 1) class columns are refused by the loss today (the same error on both paths);
    the test compares whatever the Python path does."""
    X, y = spiral()
    y = {"sparse": y, "column (N, 1)": y.reshape(-1, 1),
         "one-hot float64": np.eye(3)[y], "one-hot uint8": np.eye(3, dtype=np.uint8)[y]}[labels]
    fit_and_check(capsys, build(CLASSIFIER), X, y, **TRAIN)


LOSS_MODELS = {
    "binary crossentropy, sigmoid": (BINARY, Loss_BinaryCrossentropy,
                                     functools.partial(Accuracy_Categorical, binary=True)),
    "binary crossentropy, two sigmoid outputs": (
        [dense(2, 16), Activation_ReLU, dropout(0.1), dense(16, 2), Activation_Sigmoid],
        Loss_BinaryCrossentropy, functools.partial(Accuracy_Categorical, binary=True)),
    "mean squared error, linear": (REGRESSION, Loss_MeanSquaredError, Accuracy_Regression),
    "mean absolute error, linear": (REGRESSION, Loss_MeanAbsoluteError, Accuracy_Regression),
    "mean squared error, dropout": (
        [dense(1, 16), Activation_ReLU, dropout(0.1), dense(16, 1), Activation_Linear],
        Loss_MeanSquaredError, Accuracy_Regression),
}


def loss_data(name):
    if name.startswith("binary"):
        X, y = spiral(50, 2)
        y = y.reshape(-1, 1)
        return X, (np.hstack([y, 1 - y]) if "two" in name else y)
    return sine()


@pytest.mark.parametrize("name", LOSS_MODELS)
def test_losses_and_accuracies(capsys, name):
    layers, loss, accuracy = LOSS_MODELS[name]
    X, y = loss_data(name)
    fit_and_check(capsys, build(layers, loss=loss, accuracy=accuracy), X, y, **TRAIN)


# ---------------------------------------------------------------------------- optimizers

OPTIMIZERS = {
    "SGD": lambda: Optimizer_SGD(learning_rate=0.5),
    "SGD decay": lambda: Optimizer_SGD(learning_rate=1.0, decay=1e-2),
    "SGD momentum": lambda: Optimizer_SGD(learning_rate=0.5, momentum=0.9),
    "SGD momentum decay": lambda: Optimizer_SGD(learning_rate=1.0, decay=1e-2, momentum=0.5),
    "Adagrad": lambda: Optimizer_Adagrad(learning_rate=0.5, decay=1e-4, epsilon=1e-6),
    "RMSprop": lambda: Optimizer_RMSprop(learning_rate=0.02, decay=1e-5, rho=0.999),
    "Adam": Optimizer_Adam,
    "Adam decay": lambda: Optimizer_Adam(learning_rate=0.05, decay=5e-3, beta_1=0.8,
                                         beta_2=0.99),
}


@pytest.mark.parametrize("task", ["classifier", "regression"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_optimizers(capsys, optimizer, task):
    if task == "classifier":
        X, y = spiral()
        make = build(CLASSIFIER, optimizer=optimizer)
    else:
        X, y = sine()
        make = build(REGRESSION, loss=Loss_MeanSquaredError, optimizer=optimizer,
                     accuracy=Accuracy_Regression)
    fit_and_check(capsys, make, X, y, **TRAIN)


# ------------------------------------------------------------------------ train arguments

def _callbacks_stop():
    return [Recorder(), StopAt(epoch=2, step=1)]


def _callbacks_schedule():
    return [LearningRateScheduler(lambda epoch: 0.05 / epoch), Recorder()]


TRAIN_ARGUMENTS = {
    "full batch, 3 epochs": dict(epochs=3),
    "batch 1, 1 epoch": dict(epochs=1, batch_size=1, print_every=7),
    "batch 13 (prime), 2 epochs": dict(epochs=2, batch_size=13),
    "batch 64 (partial last), 4 epochs": dict(epochs=4, batch_size=64, print_every=1),
    "batch = samples": dict(epochs=2, batch_size=150),
    "batch > samples": dict(epochs=2, batch_size=1000),
    "1 epoch, print_every 100": dict(epochs=1, batch_size=16, print_every=100),
    "0 epochs": dict(epochs=0, batch_size=32),
    "shuffle": dict(epochs=3, batch_size=32, shuffle=True),
    "shuffle, full batch": dict(epochs=2, shuffle=True),
    "validation_data": dict(epochs=3, batch_size=32, validation_data=spiral(10, 3, seed=7)),
    "validation every 2, batches of 7": dict(
        epochs=3, batch_size=32, validation_data=spiral(10, 3, seed=7), validation_every=2,
        validation_batch_size=7),
    "validation_split": dict(epochs=2, batch_size=32, validation_split=0.2, shuffle=True),
    "verbose False": dict(epochs=2, batch_size=32, verbose=False),
    "progress off": dict(epochs=2, batch_size=32, progress=False),
    "callback stops training": dict(epochs=4, batch_size=32, callbacks=_callbacks_stop),
    "learning-rate schedule": dict(epochs=3, batch_size=32, callbacks=_callbacks_schedule),
}


@pytest.mark.parametrize("kwargs", TRAIN_ARGUMENTS.values(), ids=TRAIN_ARGUMENTS.keys())
def test_train_arguments(capsys, kwargs):
    X, y = spiral(10, 3) if kwargs.get("batch_size") == 1 else spiral()
    optimizer = Optimizer_Adam if "callbacks" in kwargs else adam   # the schedule: no decay
    _, records = fit_and_check(capsys, build(CLASSIFIER, optimizer=optimizer), X, y, **kwargs)
    history = records[1][1]["outcome"][0]
    assert len(history["loss"]) == (2 if kwargs.get("callbacks") is _callbacks_stop
                                    else kwargs["epochs"])


def test_regression_with_validation_and_shuffle(capsys):
    X, y = sine()
    make = build(LOSS_MODELS["mean squared error, dropout"][0], loss=Loss_MeanSquaredError,
                 accuracy=Accuracy_Regression)
    fit_and_check(capsys, make, X, y, epochs=3, batch_size=16, shuffle=True,
                  validation_split=0.25, callbacks=lambda: [Recorder()])


def test_fuse_off(capsys):
    """Model(compiled=True, fuse=False), whichever path it takes, trains as the Python path
    without fusion."""
    X, y = spiral()
    fit_and_check(capsys, build(CLASSIFIER, fuse=False), X, y, status=None, **TRAIN)


# ---------------------------------------------------------------------------------- inputs

X_LAYOUTS = {
    "float64 C": ("C", np.float64),
    "float64 F": ("F", np.float64),
    "float32 C": ("C", np.float32),
    "float32 F": ("F", np.float32),
    "float32 non-contiguous slice": ("sliced", np.float32),
    "float64 non-contiguous slice": ("sliced", np.float64),
    "float32 read-only": ("readonly", np.float32),
}


@pytest.mark.parametrize("shuffle", [False, True], ids=["in order", "shuffled"])
@pytest.mark.parametrize("kind", X_LAYOUTS.values(), ids=X_LAYOUTS.keys())
def test_input_layouts(capsys, kind, shuffle):
    X, y = spiral()
    X = layout(X, *kind)
    fit_and_check(capsys, build(CLASSIFIER), X, y, shuffle=shuffle, **TRAIN)


def test_regression_inputs_float32_f_order(capsys):
    X, y = sine()
    make = build(REGRESSION, loss=Loss_MeanSquaredError, accuracy=Accuracy_Regression)
    fit_and_check(capsys, make, layout(X, "F"), layout(y, "sliced", np.float64), **TRAIN)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.int8])
def test_label_dtypes(capsys, dtype):
    X, y = spiral()
    fit_and_check(capsys, build(CLASSIFIER), X, y.astype(dtype), **TRAIN)


def test_non_contiguous_labels(capsys):
    X, y = spiral()
    y = np.repeat(y.astype(np.int64), 2)[::2]
    assert not y.flags.c_contiguous
    fit_and_check(capsys, build(CLASSIFIER), X, y, **TRAIN)


# ------------------------------------------------------------- changes between train calls

def _weights_float64(model):
    layer = model.trainable_layers[0]
    layer.weights = np.random.default_rng(3).standard_normal(np.shape(layer.weights)) * 0.1


def _weights_f_order(model):
    layer = model.trainable_layers[1]
    layer.weights = np.asfortranarray(layer.weights * np.float32(0.5))


def _weights_in_place(model):
    model.trainable_layers[1].weights *= np.float32(0.5)
    model.trainable_layers[1].biases += np.float32(0.25)


def _set_parameters(model):
    model.set_parameters([(w[::-1] * 0.5, b + 0.1) for w, b in model.get_parameters()])


def _set(obj, **attributes):
    for name, value in attributes.items():
        setattr(obj, name, value)


CHANGES = {
    "weights replaced by float64": (_weights_float64, adam),
    "weights replaced by F-ordered float32": (_weights_f_order, adam),
    "weights and biases changed in place": (_weights_in_place, adam),
    "set_parameters": (_set_parameters, adam),
    "learning_rate": (lambda m: _set(m.optimizer, learning_rate=0.001), adam),
    "decay": (lambda m: _set(m.optimizer, decay=0.05), adam),
    "learning_rate and decay of SGD": (
        lambda m: _set(m.optimizer, learning_rate=0.1, decay=0.0),
        OPTIMIZERS["SGD momentum decay"]),
    "momentum": (lambda m: _set(m.optimizer, momentum=0.1), OPTIMIZERS["SGD momentum"]),
    "regularizer strength": (
        lambda m: _set(m.trainable_layers[1], weight_regularizer_l2=1e-2), adam),
    "dropout rate attribute": (lambda m: _set(m.layers[2], rate=0.5), adam),
    "new optimizer object": (
        lambda m: m.set(optimizer=Optimizer_SGD(learning_rate=0.2, momentum=0.5)), adam),
    "set_num_threads(1)": (lambda m: nnfs_fast.set_num_threads(1), adam),
    "set_num_threads(2)": (lambda m: nnfs_fast.set_num_threads(2), adam),
}


@pytest.mark.parametrize("name", CHANGES)
def test_changes_between_train_calls(capsys, restore_threads, name):
    fn, optimizer = CHANGES[name]
    X, y = spiral()
    assert_paths_agree(capsys, build(CLASSIFIER, optimizer=optimizer), [
        train(X, y, **TRAIN), change(name, fn), train(X, y, **TRAIN),
        evaluate(X, y), predict(X)])


ALIASED_STATE = {
    "weight_cache aliasing the weights":
        lambda m: _set(m.trainable_layers[0], weight_cache=m.trainable_layers[0].weights),
    "bias_momentums aliasing bias_cache":
        lambda m: _set(m.trainable_layers[1], bias_momentums=m.trainable_layers[1].bias_cache),
}


@pytest.mark.parametrize("name", ALIASED_STATE)
def test_optimizer_state_sharing_memory_is_refused_on_both_paths(capsys, name):
    """The update writes a parameter and its state in place, so state sharing memory with
    them is refused (kernels/optimizers.pyx); the plan leaves such a step to the Python path,
    which raises the same error at the same point of the step (after the forward)."""
    X, y = spiral()
    assert_paths_agree(capsys, build(CLASSIFIER), [
        train(X, y, **TRAIN), change(name, ALIASED_STATE[name]), train(X, y, **TRAIN)],
        refusals=False)


def test_evaluate_and_predict_between_train_calls(capsys):
    X, y = spiral()
    X_val, y_val = spiral(10, 3, seed=9)
    assert_paths_agree(capsys, build(CLASSIFIER), [
        train(X, y, **TRAIN), evaluate(X_val, y_val, batch_size=7), predict(X_val),
        train(X, y, epochs=1, batch_size=50), predict(X, batch_size=64)])


NOT_FINALIZED_AGAIN = {
    "loss replaced": lambda m: _set(m, loss=Loss_MeanSquaredError()),
    "last activation replaced": lambda m: m.layers.__setitem__(-1, Activation_Sigmoid()),
    "a trainable layer dropped": lambda m: m.trainable_layers.pop(0),
}


@pytest.mark.parametrize("name", NOT_FINALIZED_AGAIN)
def test_changes_after_finalize_without_finalizing_again(capsys, name):
    """The model's layers, loss or accuracy changed after finalize and finalize not called
    again: the Python path runs (and refuses, or trains) what the model holds now; the plan
    used to train the model as it was compiled (the old loss, every Dense layer)."""
    X, y = spiral()
    assert_paths_agree(capsys, build(FUSED), [
        train(X, y, **TRAIN), change(name, NOT_FINALIZED_AGAIN[name]), train(X, y, **TRAIN),
        evaluate(X, y)])


# ------------------------------------------------------ a callback changes the model mid-step


class AtStep(Callback):
    """Calls fn(model) after step 1 of epoch 1 (between two native steps of the plan)."""

    def __init__(self, fn):
        self.fn, self.epoch = fn, None

    def on_epoch_begin(self, epoch, logs):
        self.epoch = epoch

    def on_batch_end(self, step, logs):
        if (self.epoch, step) == (1, 1):
            self.fn(self.model)


def _new_parameters(layer, n_inputs, n_neurons, seed):
    """New float32 weights (n_inputs, n_neurons) and zero biases on a Dense layer, its
    optimizer state removed (the optimizer makes new state, the book's rule)."""
    layer.weights = np.random.default_rng(seed).standard_normal(
        (n_inputs, n_neurons)).astype(np.float32) * np.float32(0.1)
    layer.biases = np.zeros((1, n_neurons), np.float32)
    for name in ("weight_momentums", "bias_momentums", "weight_cache", "bias_cache"):
        if hasattr(layer, name):
            delattr(layer, name)


def _wider_hidden_layer(model):
    """Dense(2, 16) -> Dense(16, 3) becomes Dense(2, 40) -> Dense(40, 3): the widths still
    chain, so the Python path trains on; the plan's buffers of 16 columns are too small."""
    first, last = model.trainable_layers
    _new_parameters(first, 2, 40, 1)
    _new_parameters(last, 40, 3, 2)


def _wider_output(model):
    _new_parameters(model.trainable_layers[-1], 16, 5, 3)


WIDTH_CHANGES = {
    "a wider hidden layer": _wider_hidden_layer,
    "a wider output layer": _wider_output,
}


@pytest.mark.parametrize("when", ["between train calls", "in a callback"])
@pytest.mark.parametrize("name", WIDTH_CHANGES)
def test_parameters_of_another_shape(capsys, name, when):
    """Parameters replaced by ones of another (consistent) shape: both paths train with the
    new widths (the plan used to reuse buffers of the old widths: heap overflow)."""
    X, y = spiral()
    fn = WIDTH_CHANGES[name]
    if when == "in a callback":
        actions = [train(X, y, callbacks=lambda: [AtStep(fn)], **TRAIN)]
    else:
        actions = [train(X, y, **TRAIN), change(name, fn), train(X, y, **TRAIN)]
    assert_paths_agree(capsys, build(FUSED), actions + [evaluate(X, y, batch_size=32)])


def _reshape_in_place(model):
    model.trainable_layers[1].weights.shape = (8, 6)    # same array, 16 x 3 -> 8 x 6


WIDTH_REFUSALS = {
    "weights whose rows do not match the inputs": (
        lambda m: _set(m.trainable_layers[1], weights=np.zeros((40, 3), np.float32))),
    "biases of another width": (
        lambda m: _set(m.trainable_layers[1], biases=np.zeros((1, 5), np.float32))),
    "weights reshaped in place": _reshape_in_place,
}


@pytest.mark.parametrize("name", WIDTH_REFUSALS)
def test_parameters_that_do_not_fit_raise_the_python_paths_error(capsys, name):
    """The Python path's error, message and state (the plan used to raise its own message,
    or to train on with the shape it had recorded for an array reshaped in place)."""
    X, y = spiral()
    _, records = assert_paths_agree(capsys, build(FUSED), [
        train(X, y, **TRAIN), change(name, WIDTH_REFUSALS[name]), train(X, y, **TRAIN)])
    assert records[3][1]["outcome"][:2] == ("raised", "ValueError")


MID_TRAINING_ERRORS = {
    "dropout rate NaN": lambda m: _set(m.layers[2], rate=float("nan")),
    "dropout rate a string": lambda m: _set(m.layers[2], rate="0.5"),
    "regularizer a string": lambda m: _set(m.trainable_layers[1],
                                           weight_regularizer_l1="0.1"),
    "learning_rate a string": lambda m: _set(m.optimizer, learning_rate="0.1", decay=1e-3),
    "epsilon None": lambda m: _set(m.optimizer, epsilon=None),
    "iterations None": lambda m: _set(m.optimizer, iterations=None),
    "weights deleted": lambda m: delattr(m.trainable_layers[1], "weights"),
    "optimizer state of the wrong shape": lambda m: _set(
        m.trainable_layers[2], weight_momentums=np.zeros((3, 3), np.float32)),
    "loss total None": lambda m: _set(m.loss, accumulated_count=None),
}


@pytest.mark.parametrize("name", MID_TRAINING_ERRORS)
def test_an_error_in_the_middle_of_training_leaves_the_python_paths_state(capsys, name):
    """A callback breaks an attribute between two steps: the same error, printed lines and
    state as the Python path, which raises it at its own point of the step (after the
    forward's dropout draws and attributes, or after updating the first layers). The plan
    used to raise before its step, or after its update."""
    X, y = spiral()
    _, records = assert_paths_agree(capsys, build(CLASSIFIER), [
        train(X, y, callbacks=lambda: [AtStep(MID_TRAINING_ERRORS[name])], **TRAIN)],
        refusals=False)
    assert records[1][1]["outcome"][0] == "raised"


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_finalized_model_can_be_copied_and_pickled(capsys, how):
    """copy.deepcopy (what the book's Model.save does) and pickle of a trained model: the copy
    gets a plan of its own layers and trains as the Python path's copy (the plan's native
    buffers made both raise TypeError)."""
    X, y = spiral()

    def copy_and_train(model):
        copied = (copy.deepcopy(model) if how == "deepcopy"
                  else pickle.loads(pickle.dumps(model)))
        assert copied.plan_status() == model.plan_status()
        return copied.train(X, y, **TRAIN), snapshot(copied)
    assert_paths_agree(capsys, build(CLASSIFIER), [
        train(X, y, **TRAIN), (how, copy_and_train), train(X, y, **TRAIN)])


# --------------------------------------------------------------------------------- threads

THREAD_MODELS = {
    "wide classifier": (build(WIDE), wide, dict(epochs=2, batch_size=256)),
    "regression": (build(REGRESSION, loss=Loss_MeanSquaredError, accuracy=Accuracy_Regression),
                   sine, TRAIN),
}


@pytest.mark.parametrize("threads", [(1, 1), (2, 2), (2, 1), (1, 2)],
                         ids=lambda t: f"compiled {t[0]}, python {t[1]}")
@pytest.mark.parametrize("name", THREAD_MODELS)
def test_thread_counts(capsys, restore_threads, name, threads):
    make, data, kwargs = THREAD_MODELS[name]
    X, y = data()
    fit_and_check(capsys, make, X, y, threads=threads, **kwargs)


def test_python_threads_train_two_models_at_once(restore_threads):
    """Two Python threads each train their own compiled model (no dropout, no shuffling:
    nothing drawn from the global RNG) at the same time; each result equals that model
    trained alone."""
    jobs = {
        "classifier": (build(FUSED), spiral(), dict(epochs=4, batch_size=16)),
        "regression": (build(REGRESSION, loss=Loss_MeanSquaredError,
                             optimizer=OPTIMIZERS["SGD momentum"],
                             accuracy=Accuracy_Regression), sine(), dict(epochs=4, batch_size=8)),
    }

    def made(seed, make):
        np.random.seed(seed)
        return make(True)

    def result(model, history):
        return history, [(layer.weights.copy(), layer.biases.copy())
                         for layer in model.trainable_layers]

    alone = {}
    for seed, (name, (make, (X, y), kwargs)) in enumerate(jobs.items()):
        model = made(seed, make)
        alone[name] = result(model, model.train(X, y, verbose=False, **kwargs))
    models = {name: made(seed, make) for seed, (name, (make, _, _)) in enumerate(jobs.items())}
    together, errors = {}, []
    barrier = threading.Barrier(len(jobs))

    def worker(name):
        try:
            nnfs_fast.set_num_threads(2)
            _, (X, y), kwargs = jobs[name]
            barrier.wait()
            together[name] = result(models[name],
                                    models[name].train(X, y, verbose=False, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a training thread hung"
    assert not errors, errors
    for name in jobs:
        assert_same(together[name], alone[name], name)


# ----------------------------------------------------------- what the plan does not compile

class MyDense(Layer_Dense):
    """A user's Dense layer that overrides forward (records the batch sizes it saw)."""

    def forward(self, inputs, training=False):
        self.seen = getattr(self, "seen", 0) + len(inputs)
        super().forward(inputs, training)


class MyReLU(Activation_ReLU):
    pass


class MyAdam(Optimizer_Adam):
    pass


class MyAccuracy(Accuracy_Categorical):
    pass


class Loss_MySquaredError(Loss):
    """The book's mean squared error, written in NumPy by a user."""

    def forward(self, y_pred, y_true):
        return np.mean((y_true - y_pred) ** 2, axis=-1)

    def backward(self, dvalues, y_true):
        self.dinputs = (-2 * (y_true - dvalues) / dvalues.shape[1] / len(dvalues)
                        ).astype(np.float32)


class Scale:
    """A user's layer (no base class): output = 2 * inputs."""

    def forward(self, inputs, training):
        self.inputs = inputs
        self.output = np.float32(2) * inputs

    def backward(self, dvalues):
        self.dinputs = np.float32(2) * dvalues


USER_MODELS = {
    "MyDense": build([dense(2, 16), Activation_ReLU, functools.partial(MyDense, 16, 3),
                      Activation_Softmax]),
    "MyReLU": build([dense(2, 16), MyReLU, dense(16, 3), Activation_Softmax]),
    "Scale": build([dense(2, 16), Activation_ReLU, Scale, dense(16, 3), Activation_Softmax]),
    "MyAdam": build(FUSED, optimizer=MyAdam),
    "MyAccuracy": build(FUSED, accuracy=MyAccuracy),
    "Loss_MySquaredError": build(REGRESSION, loss=Loss_MySquaredError,
                                 accuracy=Accuracy_Regression),
}


@pytest.mark.parametrize("name", USER_MODELS)
def test_user_classes_run_the_python_path(capsys, name):
    """plan_status() says "python: <reason>" (the reason names the user's class) and the
    model trains exactly as with compiled=False."""
    X, y = sine() if "Loss" in name else spiral()
    model, records = fit_and_check(capsys, USER_MODELS[name], X, y, status="python: ",
                                   **TRAIN)
    assert name in records[0][1], f"plan_status() {records[0][1]!r} does not name {name}"


def test_plan_status_of_library_models():
    """Every library-only model of this module compiles."""
    for name, layers in LAYER_STACKS.items():
        for optimizer in OPTIMIZERS.values():
            model = build(layers, optimizer=optimizer)(True)
            assert model.plan_status() == "compiled", (name, model.plan_status())
    for name, (layers, loss, accuracy) in LOSS_MODELS.items():
        model = build(layers, loss=loss, accuracy=accuracy)(True)
        assert model.plan_status() == "compiled", (name, model.plan_status())


# -------------------------------------------------------------------------------- refusals

def _with(y, position, value):
    y = y.copy()
    y[position] = value
    return y


REFUSED = {
    "class index out of range in the last batch": lambda X, y: (X, _with(y, -1, 3)),
    "negative class index (int32)": lambda X, y: (X, _with(y.astype(np.int32), -5, -1)),
    "one-hot labels too narrow": lambda X, y: (X, np.eye(2)[np.minimum(y, 1)]),
    "float labels": lambda X, y: (X, y.astype(np.float32)),
    "fewer labels than samples": lambda X, y: (X, y[:-1]),
}


@pytest.mark.parametrize("shuffle", [False, True], ids=["in order", "shuffled"])
@pytest.mark.parametrize("name", REFUSED)
def test_refusals_change_nothing(capsys, name, shuffle):
    """The same error on both paths, before any update: parameters, optimizer state and
    iterations, the RNG and the printed lines as before (checked by _run for every refused
    call)."""
    X, y = REFUSED[name](*spiral())
    _, records = assert_paths_agree(capsys, build(CLASSIFIER), [
        train(*spiral(), epochs=1, batch_size=32),
        train(X, y, epochs=2, batch_size=32, shuffle=shuffle)])
    outcome = records[2][1]["outcome"]
    assert outcome[:2] in (("raised", "ValueError"), ("raised", "TypeError")), outcome
    assert records[2][1]["stdout"] == ""


def test_bad_validation_labels_refused_before_training(capsys):
    X, y = spiral()
    X_val, y_val = spiral(10, 3, seed=7)
    _, records = assert_paths_agree(capsys, build(CLASSIFIER), [
        train(X, y, epochs=2, batch_size=32, validation_data=(X_val, _with(y_val, -1, 7)))])
    assert records[1][1]["outcome"][:2] == ("raised", "ValueError")


def test_regression_targets_of_the_wrong_shape(capsys):
    X, y = sine()
    make = build(REGRESSION, loss=Loss_MeanSquaredError, accuracy=Accuracy_Regression)
    _, records = assert_paths_agree(capsys, make, [train(X, y.ravel(), **TRAIN)])
    assert records[1][1]["outcome"][:2] == ("raised", "ValueError")


# ------------------------------------------------------------------- the plan's own buffers


def _classifier(compiled=True, dropout=0.0):
    np.random.seed(3)
    model = Model(compiled=compiled)
    model.add(Layer_Dense(2, 16))
    model.add(Activation_ReLU())
    if dropout:
        model.add(Layer_Dropout(dropout))
    model.add(Layer_Dense(16, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(0.05),
              accuracy=Accuracy_Categorical())
    model.finalize()
    return model


def test_an_array_kept_by_the_user_is_never_written_again():
    """The plan reuses its buffers only while nothing but the model's attributes refers to
    them: arrays a user keeps from layer attributes keep their values through later steps
    (the Python path hands out new arrays every step; so does the plan, for kept ones)."""
    X, y = spiral()
    model = _classifier(dropout=0.2)
    assert model.plan_status() == "compiled"
    model.train(X, y, epochs=1, verbose=False)
    kept = {(i, name): getattr(layer, name) for i, layer in enumerate(model.layers)
            for name in ("output", "dinputs", "dweights", "binary_mask")
            if getattr(layer, name, None) is not None}
    copies = {key: array.copy() for key, array in kept.items()}
    model.train(X, y, epochs=3, verbose=False)
    model.evaluate(X, y, verbose=False)
    for key, array in kept.items():
        np.testing.assert_array_equal(array, copies[key], err_msg=str(key))
    # and the model's own attributes moved on
    assert not np.array_equal(model.layers[0].dweights, copies[(0, "dweights")])


@pytest.mark.parametrize("between", ["predict", "a train call on the Python path"])
def test_an_array_kept_after_its_attribute_was_replaced_is_never_written_again(between):
    """A user keeps attribute arrays, then predict (the Python forward) or a train call the
    plan does not take (one-hot labels) replaces the attributes: the reference the plan had
    counted is gone and the user's takes its place, so the count alone did not show it (the
    plan wrote into the kept arrays)."""
    X, y = spiral()
    model = _classifier(dropout=0.2)
    model.train(X, y, epochs=1, verbose=False)
    kept = {(i, name): getattr(layer, name) for i, layer in enumerate(model.layers)
            for name in ("output", "dinputs", "dweights", "dbiases", "binary_mask")
            if getattr(layer, name, None) is not None}
    copies = {key: array.copy() for key, array in kept.items()}
    if between == "predict":
        model.predict(X * np.float32(2))
    else:
        model.train(X, np.eye(3, dtype=np.float32)[y], epochs=1, verbose=False)
    model.train(X, y, epochs=2, verbose=False)
    for key, array in kept.items():
        np.testing.assert_array_equal(array, copies[key], err_msg=str(key))


def test_the_buffers_are_reused_while_nobody_else_holds_them():
    """Steady state: the same arrays every step (no allocation per step)."""
    X, y = spiral()
    model = _classifier()
    model.train(X, y, epochs=2, verbose=False)

    def arrays():
        return [id(getattr(layer, name)) for layer in model.layers
                for name in ("output", "dinputs", "dweights", "dbiases") if hasattr(layer, name)
                ] + [id(model.softmax_classifier_output.dinputs)]
    ids = arrays()
    model.train(X, y, epochs=2, verbose=False)
    assert arrays() == ids


def test_one_model_trained_from_two_threads_at_once_is_refused_not_corrupted():
    """A model's plan runs one step at a time: a second thread entering a running step gets a
    RuntimeError (the Python path would mix the two threads' activations silently)."""
    X, y = spiral(samples=2000)
    model = _classifier()
    errors, barrier = [], threading.Barrier(2)

    def train():
        barrier.wait()
        try:
            model.train(X, y, epochs=60, verbose=False)
        except RuntimeError as exc:
            errors.append(str(exc))
    threads = [threading.Thread(target=train) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all("another thread" in e for e in errors)
    assert np.isfinite(model.layers[0].weights).all()


@pytest.mark.parametrize("batch_size", [None, 1, 7, 150, 151])
def test_predict_runs_the_plan_and_returns_a_new_array(monkeypatch, batch_size):
    """Model.predict goes through the plan's forward pass (TrainingPlan.predict, counted) and
    returns the Python path's outputs bit for bit, in a new array each call."""
    X, y = spiral()
    compiled, plain = _classifier(dropout=0.3), _classifier(compiled=False, dropout=0.3)
    calls = []
    real = type(compiled._plan).predict
    monkeypatch.setattr(compiled, "_plan", _CountingPlan(compiled._plan, real, calls))
    first = compiled.predict(X, batch_size=batch_size)
    assert calls and first.dtype == np.float32 and first.shape == (len(X), 3)
    np.testing.assert_array_equal(first, plain.predict(X, batch_size=batch_size))
    kept = first.copy()
    compiled.predict(X[::-1], batch_size=batch_size)
    np.testing.assert_array_equal(first, kept)
    last = compiled.layers[-1].output           # the last batch's, as Model.forward leaves
    np.testing.assert_array_equal(last, plain.predict(X[::-1], batch_size=batch_size)[-len(last):])


class _CountingPlan:
    """A TrainingPlan whose predict calls are recorded."""

    def __init__(self, plan, real, calls):
        self._plan, self._real, self._calls = plan, real, calls

    def __getattr__(self, name):
        return getattr(self._plan, name)

    def predict(self, *args):
        self._calls.append(1)
        return self._real(self._plan, *args)
