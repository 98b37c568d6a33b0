"""Bad input at every public entry point: refused before any kernel runs, with an error that
names the argument, says what was expected and what arrived (docs/GUARANTEES.md).

One table of (call, exception type, message pattern), one row per kind of mistake and entry
point: ranks, feature counts, sample counts, labels (range, dtype, one-hot width), empty
batches, hyper-parameters (sign, finiteness, type), parameter shapes, argument types. The
per-module test files check the same messages in more depth; this table is the inventory.

Known gaps in files owned elsewhere are ``xfail(strict=True)`` rows whose reason names the
file and the fix; a fix makes the row pass, and strict mode then asks to drop the mark.

Empty batches (0 samples) follow one rule: what maps samples to samples works and returns an
empty result (layers, activations, per-sample losses and their gradients, Model.predict);
what averages over the samples (Loss.calculate, Accuracy.calculate, Model.train,
Model.evaluate) refuses with a ValueError. ``test_empty_batches_follow_one_rule`` checks it.
"""
import math

import numpy as np
import pytest

import nnfs_fast
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
    datasets,
)
from nnfs_fast.losses import softmax_crossentropy_forward

X6 = np.linspace(-1, 1, 12, dtype=np.float32).reshape(6, 2)
Y6 = np.array([0, 1, 2, 0, 1, 2])
P4 = np.full((4, 3), 1 / 3, np.float32)      # predicted probabilities of 4 samples, 3 classes

OPTIMIZERS = {"Optimizer_SGD": Optimizer_SGD, "Optimizer_Adagrad": Optimizer_Adagrad,
              "Optimizer_RMSprop": Optimizer_RMSprop, "Optimizer_Adam": Optimizer_Adam}
MEAN_LOSSES = (Loss_BinaryCrossentropy, Loss_MeanSquaredError, Loss_MeanAbsoluteError)
ACTIVATIONS = (Activation_ReLU, Activation_Softmax, Activation_Sigmoid)
REGULARIZERS = ("weight_regularizer_l1", "weight_regularizer_l2", "bias_regularizer_l1",
                "bias_regularizer_l2")


def dense(n_inputs=2, n_neurons=3, **kwargs):
    np.random.seed(0)
    return Layer_Dense(n_inputs, n_neurons, **kwargs)


def forwarded(obj, inputs):
    obj.forward(inputs)
    return obj


def with_gradients(layer, X=X6):
    layer.forward(X)
    layer.backward(np.ones_like(layer.output))
    return layer


def classifier(finalize=True):
    """Dense(2, 8) -> ReLU -> Dense(8, 3) -> Softmax, categorical cross-entropy, Adam."""
    np.random.seed(0)
    model = Model()
    for layer in (Layer_Dense(2, 8), Activation_ReLU(), Layer_Dense(8, 3), Activation_Softmax()):
        model.add(layer)
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(),
              accuracy=Accuracy_Categorical())
    if finalize:
        model.finalize()
    return model


def regressor():
    np.random.seed(0)
    model = Model()
    model.add(Layer_Dense(2, 1))
    model.add(Activation_Linear())
    model.set(loss=Loss_MeanSquaredError(), optimizer=Optimizer_Adam(),
              accuracy=Accuracy_Regression())
    model.finalize()
    return model


def params(shapes):
    return [(np.zeros(w, np.float32), np.zeros(b, np.float32)) for w, b in shapes]


CASES = []


def case(id, call, error, message, gap=None):
    """One row. ``gap``: why it fails today (file and fix): the row is a strict xfail."""
    marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
    CASES.append(pytest.param(call, error, message, id=id, marks=marks))


# ------------------------------------------------------------------------------ Layer_Dense
case("dense.forward 1-D", lambda: dense().forward(np.ones(2)),
     ValueError, r"inputs: expected a 2-D array.*got shape \(2,\)")
case("dense.forward 3-D", lambda: dense().forward(np.ones((4, 2, 1))),
     ValueError, r"inputs: expected a 2-D array.*got shape \(4, 2, 1\)")
case("dense.forward scalar", lambda: dense().forward(1.0),
     ValueError, r"inputs: expected a 2-D array.*got shape \(\)")
case("dense.forward feature count", lambda: dense().forward(np.ones((4, 5))),
     ValueError, r"inputs: expected shape \(N, 2\), got \(4, 5\)")
case("dense.forward complex", lambda: dense().forward(np.ones((4, 2), complex)),
     TypeError, r"inputs: expected real numbers, got dtype complex128")
case("dense.forward object", lambda: dense().forward(np.array([[None, None]])),
     TypeError, r"inputs: expected real numbers, got dtype object")
case("dense.forward str", lambda: dense().forward("ab"),
     (TypeError, ValueError), r"^inputs: .*'ab'|^inputs: .*str")
case("dense.backward rows", lambda: forwarded(dense(), X6).backward(np.ones((5, 3))),
     ValueError, r"dvalues: expected shape \(6, 3\), got \(5, 3\)")
case("dense.backward columns", lambda: forwarded(dense(), X6).backward(np.ones((6, 4))),
     ValueError, r"dvalues: expected shape \(6, 3\), got \(6, 4\)")
case("dense.backward 1-D", lambda: forwarded(dense(), X6).backward(np.ones(3)),
     ValueError, r"dvalues: expected a 2-D array.*got shape \(3,\)")
case("dense(n_inputs=-1)", lambda: Layer_Dense(-1, 3),
     ValueError, r"n_inputs.*-1")
case("dense(n_neurons=2.5)", lambda: Layer_Dense(2, 2.5),
     TypeError, r"n_neurons.*2\.5")
for reg, bad, error in zip(REGULARIZERS, (-0.1, math.nan, math.inf, "1e-4"),
                          (ValueError, ValueError, ValueError, TypeError)):
    case(f"dense({reg}={bad!r})", lambda reg=reg, bad=bad: Layer_Dense(2, 3, **{reg: bad}),
         error, rf"{reg}.*{bad}")
case("dense.set_parameters biases width",
     lambda: dense(2, 3).set_parameters(np.ones((2, 3)), np.ones((1, 7))),
     ValueError, r"biases.*\(1, 7\)")
case("dense.set_parameters 1-D weights",
     lambda: dense(2, 3).set_parameters(np.ones(6), np.ones((1, 3))),
     ValueError, r"weights.*2-D.*\(6,\)")

# ------------------------------------------------------------------------------ activations
for cls in ACTIVATIONS:
    name = cls.__name__
    case(f"{name}.forward 1-D", lambda cls=cls: cls().forward(np.ones(3)),
         ValueError, r"inputs: expected a 2-D array.*got shape \(3,\)")
    case(f"{name}.forward complex", lambda cls=cls: cls().forward(np.ones((2, 3), complex)),
         TypeError, r"inputs: expected real numbers, got dtype complex")
    case(f"{name}.backward shape",
         lambda cls=cls: forwarded(cls(), np.ones((2, 3))).backward(np.ones((2, 4))),
         ValueError, r"dvalues: expected 3 columns, got shape \(2, 4\)")
case("Activation_Linear.backward 1-D",
     lambda: forwarded(Activation_Linear(), np.ones((2, 1))).backward(np.ones(2)),
     ValueError, r"dvalues: expected a 2-D array.*got shape \(2,\)")

# --------------------------------------------------------------------------- Layer_Dropout
for bad in (1, 1.5, -0.1, math.nan, math.inf):
    case(f"dropout(rate={bad!r})", lambda bad=bad: Layer_Dropout(bad),
         ValueError, rf"Layer_Dropout: rate .* must be in \[0, 1\), got {bad!r}")
for bad in ("0.1", None, True):
    case(f"dropout(rate={bad!r})", lambda bad=bad: Layer_Dropout(bad),
         TypeError, rf"Layer_Dropout: rate .* must be a real number .*got {bad!r}")
case("dropout.forward str", lambda: Layer_Dropout(0.1).forward(np.array(["a"])),
     TypeError, r"inputs: expected real numbers, got dtype <U1")
case("dropout.backward shape",
     lambda: forwarded(Layer_Dropout(0.1), np.ones((2, 3))).backward(np.ones((3, 2))),
     ValueError, r"dvalues: expected shape \(2, 3\) .*got \(3, 2\)")
case("dropout.backward before forward", lambda: Layer_Dropout(0.1).backward(np.ones((2, 3))),
     AttributeError, r"no binary_mask yet; call forward")

# ---------------------------------------------------------------- categorical cross-entropy
CCE_CALLS = {
    "cce.calculate": lambda P, y: Loss_CategoricalCrossentropy().calculate(P, y),
    "cce.backward": lambda P, y: Loss_CategoricalCrossentropy().backward(P, y),
    "combined.forward": lambda P, y: Activation_Softmax_Loss_CategoricalCrossentropy()
    .forward(P, y),
    "combined.backward": lambda P, y: Activation_Softmax_Loss_CategoricalCrossentropy()
    .backward(P, y),
    "softmax_crossentropy_forward": softmax_crossentropy_forward,
}
LABELS = [
    ("index 3 of 3 classes", np.array([0, 1, 3, 2]), ValueError,
     r"y_true: class indices must be in \[0, 3\) .*got 3 at position 2"),
    ("negative index", np.array([0, -1, 2, 2], np.int8), ValueError,
     r"y_true: class indices must be in \[0, 3\) .*got -1 at position 1"),
    ("float labels", np.array([0., 1, 2, 2]), TypeError,
     r"y_true: class indices must be integers, got dtype float64"),
    ("bool labels", np.array([True, False, True, True]), TypeError,
     r"y_true: class indices must be integers, got dtype bool"),
    ("str labels", np.array(["0", "1", "2", "2"]), TypeError,
     r"y_true: class indices must be integers, got dtype <U1"),
    ("3 labels for 4 samples", np.array([0, 1, 2]), ValueError,
     r"y_true: expected 4 class indices \(one per sample\), got shape \(3,\)"),
    ("one-hot of width 4", np.eye(4), ValueError,
     r"y_true: expected one-hot labels of shape \(4, 3\), got \(4, 4\)"),
    ("one-hot of 5 rows", np.eye(5, 3), ValueError,
     r"y_true: expected one-hot labels of shape \(4, 3\), got \(5, 3\)"),
    ("3-D labels", np.zeros((4, 3, 1)), ValueError,
     r"y_true: expected class indices of shape \(4,\) or one-hot .*got shape \(4, 3, 1\)"),
    ("scalar label", np.int64(1), ValueError,
     r"y_true: expected class indices of shape \(4,\) or one-hot .*got shape \(\)"),
]
for call_id, call in CCE_CALLS.items():
    for label_id, y, error, message in LABELS:
        case(f"{call_id} {label_id}", lambda call=call, y=y: call(P4, y), error, message)
    case(f"{call_id} 1-D predictions", lambda call=call: call(np.ones(3), np.array([0, 1, 2])),
         ValueError, r"(y_pred|dvalues|inputs): expected a 2-D array")
case("cce uint64 index 2**63", lambda: Loss_CategoricalCrossentropy().calculate(
        P4, np.array([0, 1, 2, 2**63], np.uint64)),
     ValueError, r"got 9223372036854775808 at position 3")
case("cce zero classes", lambda: Loss_CategoricalCrossentropy().calculate(
        np.ones((4, 0)), np.zeros(4, int)),
     ValueError, r"expected at least one class column, got shape \(4, 0\)")

# ----------------------------------------------------------------------- BCE, MSE and MAE
for cls in MEAN_LOSSES:
    name = cls.__name__
    case(f"{name} 1-D targets", lambda cls=cls: cls().calculate(np.ones((4, 1)), np.ones(4)),
         ValueError, r"y_true: expected targets of shape \(4, 1\).*got shape \(4,\).*"
                     r"reshape\(-1, 1\)")
    case(f"{name} target rows", lambda cls=cls: cls().calculate(np.ones((4, 1)),
                                                                np.ones((3, 1))),
         ValueError, r"y_true: expected 4 rows, got shape \(3, 1\)")
    case(f"{name} target columns", lambda cls=cls: cls().backward(np.ones((4, 2)),
                                                                  np.ones((4, 3))),
         ValueError, r"y_true: expected 2 columns, got shape \(4, 3\)")
    case(f"{name} complex targets", lambda cls=cls: cls().calculate(
            np.ones((4, 1)), np.ones((4, 1), complex)),
         TypeError, r"y_true: expected real numbers, got dtype complex")
    case(f"{name} 1-D predictions", lambda cls=cls: cls().calculate(np.ones(4), np.ones(4)),
         ValueError, r"y_pred: expected a 2-D array.*got shape \(4,\)")
    case(f"{name}.calculate_accumulated before calculate",
         lambda cls=cls: cls().calculate_accumulated(),
         ValueError, r"calculate_accumulated: no losses were calculated")

# ------------------------------------------------------------------------------ optimizers
HYPER = {  # argument -> (allowed interval as printed, bad values); learning_rate/decay for all
    "learning_rate": (r"\(0, inf\)", (0, -0.1, math.nan, math.inf)),
    "decay": (r"\[0, inf\)", (-1e-3, math.nan, math.inf)),
    "momentum": (r"\[0, inf\)", (-0.5, math.nan, math.inf)),
    "epsilon": (r"\(0, inf\)", (0, -1e-7, math.nan)),
    "rho": (r"\[0, 1\)", (1, -0.1, math.nan)),
    "beta_1": (r"\[0, 1\)", (1, 1.5, -0.1, math.nan)),
    "beta_2": (r"\[0, 1\)", (1, -0.1, math.inf)),
}
OWN = {"Optimizer_SGD": ("momentum",), "Optimizer_Adagrad": ("epsilon",),
       "Optimizer_RMSprop": ("epsilon", "rho"), "Optimizer_Adam": ("epsilon", "beta_1", "beta_2")}
for name, cls in OPTIMIZERS.items():
    for arg in ("learning_rate", "decay") + OWN[name]:
        interval, bads = HYPER[arg]
        for bad in bads:
            case(f"{name}({arg}={bad!r})", lambda cls=cls, arg=arg, bad=bad: cls(**{arg: bad}),
                 ValueError, rf"{name}: {arg} must be a finite number in {interval}, "
                             rf"got {bad!r}")
        for bad in ("0.1", None, True, [0.1]):
            case(f"{name}({arg}={bad!r})", lambda cls=cls, arg=arg, bad=bad: cls(**{arg: bad}),
                 TypeError, rf"{name}: {arg} must be a real number .*got {bad!r}".replace(
                     "[", r"\[").replace("]", r"\]"))
    case(f"{name}.update_params before backward",
         lambda cls=cls: cls().update_params(forwarded(dense(), X6)),
         AttributeError, r"update_params: the layer has no 'dweights'; run backward\(\)")


def _wrong_gradient_shape(cls):
    layer = with_gradients(dense())
    layer.dweights = np.ones((3, 3), np.float32)
    cls().update_params(layer)


for name, cls in OPTIMIZERS.items():
    case(f"{name}.update_params dweights shape", lambda cls=cls: _wrong_gradient_shape(cls),
         ValueError, r"layer\.dweights: expected shape \(2, 3\) \(the weights' shape\), got "
                     r"\(3, 3\)")

# ------------------------------------------------------------------------------ accuracies
case("Accuracy_Categorical shape", lambda: Accuracy_Categorical().calculate(
        np.zeros(3, int), np.zeros(4, int)),
     ValueError, r"predictions shape \(3,\) and y shape \(4,\) differ")
case("Accuracy_Categorical(binary) shape", lambda: Accuracy_Categorical(binary=True).calculate(
        np.zeros((4, 1), int), np.zeros(4, int)),
     ValueError, r"predictions shape \(4, 1\) and y shape \(4,\) differ.*reshape\(-1, 1\)")
case("Accuracy_Regression before init", lambda: Accuracy_Regression().calculate(
        np.zeros((4, 1)), np.zeros((4, 1))),
     ValueError, r"precision is not set; call init\(y\)")

# ----------------------------------------------------------------------------------- Model
case("Model.add int", lambda: Model().add(5),
     TypeError, r"Model.add: layer must be a layer object .*got int")
case("Model.add class", lambda: Model().add(Layer_Dense),
     TypeError, r"Model.add: layer must be a layer object .*got the class Layer_Dense")
case("Model.set loss class", lambda: Model().set(loss=Loss_CategoricalCrossentropy),
     TypeError, r"Model.set: loss must be an instance, e.g. Loss_CategoricalCrossentropy\(\), "
                r"got the class")
case("Model.set optimizer class", lambda: Model().set(optimizer=Optimizer_Adam),
     TypeError, r"Model.set: optimizer must be an instance")
case("Model.finalize no layers", lambda: Model().finalize(),
     ValueError, r"Model.finalize: the model has no layers")
case("Model.train before finalize", lambda: classifier(finalize=False).train(X6, Y6),
     RuntimeError, r"Model.train: call model.finalize\(\) first")
case("Model.train without loss", lambda: Model().train(X6, Y6),
     RuntimeError, r"Model.train needs loss, optimizer, accuracy")
TRAIN_KW = dict(verbose=False)
case("Model.train X 1-D", lambda: classifier().train(X6[:, 0], Y6, **TRAIN_KW),
     ValueError, r"inputs: expected a 2-D array, got shape \(6,\)")
case("Model.train X 3-D", lambda: classifier().train(X6[:, :, None], Y6, **TRAIN_KW),
     ValueError, r"inputs: expected a 2-D array, got shape \(6, 2, 1\)")
case("Model.train feature count", lambda: classifier().train(np.ones((6, 3)), Y6, **TRAIN_KW),
     ValueError, r"inputs: expected shape \(N, 2\), got \(6, 3\)")
case("Model.train y length", lambda: classifier().train(X6, Y6[:5], **TRAIN_KW),
     ValueError, r"train: X has 6 samples but y has 5")
case("Model.train labels out of range", lambda: classifier().train(X6, Y6 + 1, **TRAIN_KW),
     ValueError, r"^train: y: class indices must be in \[0, 3\) .*got 3 at position 2")
case("Model.train float labels", lambda: classifier().train(X6, Y6 * 1., **TRAIN_KW),
     TypeError, r"^train: y: class indices must be integers, got dtype float64")
case("Model.train one-hot width", lambda: classifier().train(X6, np.eye(4)[Y6], **TRAIN_KW),
     ValueError, r"^train: y: expected one-hot labels of shape \(6, 3\), got \(6, 4\)")
case("Model.train y column", lambda: classifier().train(X6, Y6[:, None], **TRAIN_KW),
     ValueError, r"^train: y: expected one-hot labels of shape \(6, 3\), got \(6, 1\)")
case("Model.train regression 1-D y", lambda: regressor().train(X6, Y6 * 1., **TRAIN_KW),
     ValueError, r"^train: y: expected targets of shape \(6, 1\).*reshape\(-1, 1\)")
case("Model.train empty", lambda: classifier().train(X6[:0], Y6[:0], **TRAIN_KW),
     ValueError, r"train: X and y are empty \(0 samples\)")
case("Model.train X None", lambda: classifier().train(None, Y6, **TRAIN_KW),
     TypeError, r"train: X must be an array of samples, got NoneType")
case("Model.train X str", lambda: classifier().train("abcdef", Y6, **TRAIN_KW),
     TypeError, r"train: X must be an array of samples, got str")
case("Model.train y scalar", lambda: classifier().train(X6, 1, **TRAIN_KW),
     TypeError, r"train: y must be an array of samples, got int")
for bad in (-1, 1.5, "2", None, True):
    case(f"Model.train epochs={bad!r}",
         lambda bad=bad: classifier().train(X6, Y6, epochs=bad, **TRAIN_KW),
         ValueError, rf"train: epochs must be an int >= 0, got {bad!r}")
for bad in (0, -4, 2.0, "8", True):
    case(f"Model.train batch_size={bad!r}",
         lambda bad=bad: classifier().train(X6, Y6, batch_size=bad, **TRAIN_KW),
         ValueError, rf"train: batch_size must be None or a positive int, got {bad!r}")
case("Model.train print_every=0", lambda: classifier().train(X6, Y6, print_every=0),
     ValueError, r"train: print_every must be a positive int, got 0")
case("Model.train validation_data single", lambda: classifier().train(
        X6, Y6, validation_data=(X6,), **TRAIN_KW),
     ValueError, r"train: validation_data must be a pair \(X_val, y_val\)")
case("Model.train validation_data lengths", lambda: classifier().train(
        X6, Y6, validation_data=(X6, Y6[:2]), **TRAIN_KW),
     ValueError, r"train \(validation_data\): X has 6 samples but y has 2")
case("Model.evaluate feature count", lambda: classifier().evaluate(np.ones((6, 5)), Y6,
                                                                   verbose=False),
     ValueError, r"inputs: expected shape \(N, 2\), got \(6, 5\)")
case("Model.evaluate empty", lambda: classifier().evaluate(X6[:0], Y6[:0], verbose=False),
     ValueError, r"evaluate: X and y are empty \(0 samples\)")
case("Model.evaluate y length", lambda: classifier().evaluate(X6, Y6[:4], verbose=False),
     ValueError, r"evaluate: X has 6 samples but y has 4")
case("Model.predict feature count", lambda: classifier().predict(np.ones((6, 5))),
     ValueError, r"inputs: expected shape \(N, 2\), got \(6, 5\)")
case("Model.predict X 1-D", lambda: classifier().predict(X6[0]),
     ValueError, r"inputs: expected a 2-D array, got shape \(2,\)")
case("Model.predict X scalar", lambda: classifier().predict(1.0),
     TypeError, r"predict: X must be an array of samples, got float")
case("Model.predict batch_size=0", lambda: classifier().predict(X6, batch_size=0),
     ValueError, r"predict: batch_size must be None or a positive int, got 0")
case("Model.set_parameters count", lambda: classifier().set_parameters(params([((2, 8), (1, 8))])),
     ValueError, r"set_parameters: expected 2 \(weights, biases\) pairs, one per trainable "
                 r"layer, got 1")
case("Model.set_parameters weights shape", lambda: classifier().set_parameters(
        params([((3, 8), (1, 8)), ((8, 3), (1, 3))])),
     ValueError, r"set_parameters: trainable layer 0 .*expected weights of shape \(2, 8\), "
                 r"got \(3, 8\)")
case("Model.set_parameters biases shape", lambda: classifier().set_parameters(
        params([((2, 8), (1, 8)), ((8, 3), (3,))])),
     ValueError, r"set_parameters: trainable layer 1 \(model.layers\[2\], "
                 r"Layer_Dense\(n_inputs=8, n_neurons=3\)\): expected biases of shape \(1, 3\), "
                 r"got \(3,\)")
case("Model.set_parameters dtype", lambda: classifier().set_parameters(
        [(np.full((2, 8), "a"), np.zeros((1, 8))), (np.zeros((8, 3)), np.zeros((1, 3)))]),
     TypeError, r"set_parameters: trainable layer 0 .*weights must be real numbers, got dtype "
                r"<U1")
case("Model.set_parameters triple", lambda: classifier().set_parameters(
        [(1, 2, 3), (1, 2)]),
     ValueError, r"set_parameters: trainable layer 0 .*expected a \(weights, biases\) pair, "
                 r"got a tuple of 3 items")
case("Model.set_parameters not pairs", lambda: classifier().set_parameters([1, 2]),
     ValueError, r"expected a \(weights, biases\) pair, got int")
case("Model.set_parameters None", lambda: classifier().set_parameters(None),
     TypeError, r"set_parameters: expected a list of \(weights, biases\) pairs, .*got NoneType")
case("Model.save int path", lambda: classifier().save(3),
     TypeError, r"Model.save: path must be a file name \(str or os.PathLike\), got int")
case("Model.load int path", lambda: Model.load(0),
     TypeError, r"Model.load: path must be a file name \(str or os.PathLike\), got int")
case("Model.load_parameters None", lambda: classifier().load_parameters(None),
     TypeError, r"load_parameters: path must be a file name .*got NoneType")
case("Model.save_parameters float path", lambda: classifier().save_parameters(1.5),
     TypeError, r"save_parameters: path must be a file name .*got float")
case("Model.load missing file", lambda: Model.load("/nonexistent/dir/m.model"),
     FileNotFoundError, r"m\.model")

# --------------------------------------------------------------------------------- datasets
for fn in (datasets.spiral_data, datasets.vertical_data):
    case(f"{fn.__name__}(samples=0)", lambda fn=fn: fn(0, 3),
         ValueError, r"samples: expected a positive integer, got 0")
    case(f"{fn.__name__}(classes=-1)", lambda fn=fn: fn(10, -1),
         ValueError, r"classes: expected a positive integer, got -1")
    case(f"{fn.__name__}(samples=2.5)", lambda fn=fn: fn(2.5, 3),
         TypeError, r"samples: expected a positive integer, got 2\.5 \(float\)")
    case(f"{fn.__name__}(classes=300)", lambda fn=fn: fn(5, 300),
         ValueError, r"classes: at most 256 \(labels are uint8\), got 300")
case("sine_data(samples=0)", lambda: datasets.sine_data(0),
     ValueError, r"samples: expected a positive integer, got 0")
case("init(seed='a')", lambda: datasets.init("a"),
     TypeError, r"init: seed must be None or an int in \[0, 2\*\*32 - 1\], got 'a'")
case("init(seed=-1)", lambda: datasets.init(-1),
     ValueError, r"init: seed must be None or an int in \[0, 2\*\*32 - 1\], got -1")
case("load_mnist(scale='x')", lambda: datasets.load_mnist(".", scale="x"),
     ValueError, r"load_mnist: scale must be one of \['book', 'unit'\], got 'x'")
case("load_mnist(kind='val')", lambda: datasets.load_mnist(".", kind="val"),
     ValueError, r"load_mnist: kind must be one of \['both', 'train', 'test'\], got 'val'")
case("load_mnist missing folder", lambda: datasets.load_mnist("/nonexistent/mnist"),
     FileNotFoundError, r"MNIST data folder not found: '/nonexistent/mnist'")
case("load_mnist_dataset('val')", lambda: datasets.load_mnist_dataset("val", "."),
     ValueError, r"load_mnist_dataset: dataset must be 'train' or 'test', got 'val'")
case("create_data_mnist missing folder", lambda: datasets.create_data_mnist("/nonexistent/x"),
     FileNotFoundError, r"MNIST data folder not found: '/nonexistent/x'")
case("load_digits(test_size=1.5)", lambda: datasets.load_digits(test_size=1.5),
     ValueError, r"load_digits: test_size must be a fraction strictly between 0 and 1, got 1\.5")
case("load_digits(scale='x')", lambda: datasets.load_digits(scale="x"),
     ValueError, r"load_digits: scale must be one of \['book', 'unit'\], got 'x'")

# --------------------------------------------------------------------------------- threads
for bad in (0, -2, 1.5, "4", None, True):
    case(f"set_num_threads({bad!r})", lambda bad=bad: nnfs_fast.set_num_threads(bad),
         ValueError, rf"set_num_threads: n must be an int >= 1, got {bad!r}")


@pytest.mark.parametrize("call, error, message", CASES)
def test_bad_input_is_refused_with_a_clear_message(call, error, message, restore_threads):
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------------------------ refusals change nothing

def test_refused_training_step_leaves_parameters_and_state_alone():
    """Bad labels are found by the loss, before backward and the optimizer update."""
    model = classifier()
    model.train(X6, Y6, verbose=False)
    before = [a.copy() for layer in model.trainable_layers for a in (
        layer.weights, layer.biases, layer.weight_momentums, layer.weight_cache)]
    iterations = model.optimizer.iterations
    with pytest.raises(ValueError, match="class indices must be in"):
        model.train(X6, Y6 + 1, verbose=False)
    after = [a for layer in model.trainable_layers for a in (
        layer.weights, layer.biases, layer.weight_momentums, layer.weight_cache)]
    for a, b in zip(after, before):
        np.testing.assert_array_equal(a, b)
    assert model.optimizer.iterations == iterations


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_refused_update_leaves_parameters_and_state_alone(name):
    layer = with_gradients(dense())
    OPTIMIZERS[name]().update_params(layer)          # creates the state
    layer.forward(X6)
    layer.backward(np.ones((6, 3), np.float32))
    saved = {k: v.copy() for k, v in vars(layer).items() if isinstance(v, np.ndarray)}
    layer.dbiases = np.ones((1, 4), np.float32)      # weights pass, biases refused
    with pytest.raises(ValueError, match=r"layer\.dbiases: expected shape \(1, 3\)"):
        OPTIMIZERS[name]().update_params(layer)
    for key in ("biases", "bias_momentums", "bias_cache"):
        if key in saved:
            np.testing.assert_array_equal(getattr(layer, key), saved[key], err_msg=key)


def test_refused_set_parameters_assigns_nothing():
    model = classifier()
    before = [(w.copy(), b.copy()) for w, b in model.get_parameters()]
    good = (np.ones((2, 8)), np.ones((1, 8)))
    with pytest.raises(ValueError, match="trainable layer 1"):
        model.set_parameters([good, (np.ones((8, 4)), np.ones((1, 4)))])
    for (w, b), (w0, b0) in zip(model.get_parameters(), before):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(b, b0)


def _state(model):
    """Every array and counter a training step changes."""
    arrays = {f"{i}.{k}": v.copy() for i, layer in enumerate(model.trainable_layers)
              for k, v in vars(layer).items()
              if k in ("weights", "biases") or k.endswith(("_momentums", "_cache"))}
    return arrays, model.optimizer.iterations


@pytest.mark.parametrize("where", ["last batch", "validation_data"])
def test_train_checks_every_label_before_the_first_update(where):
    """One bad label in the last batch, or in the validation data (evaluated after the first
    epoch), is refused before the first batch's update: no parameter moves, no optimizer
    state is created."""
    X = np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2)
    good = np.arange(10) % 3
    bad = good.copy()
    bad[-1] = 3
    model = classifier()
    before = _state(model)
    kwargs = dict(batch_size=3, verbose=False)
    with pytest.raises(ValueError, match=r"class indices must be in \[0, 3\) .*got 3 at "
                                         r"position 9"):
        if where == "last batch":
            model.train(X, bad, **kwargs)
        else:
            model.train(X, good, validation_data=(X, bad), **kwargs)
    after = _state(model)
    assert after[1] == before[1] == 0
    assert after[0].keys() == before[0].keys()         # no weight_momentums / weight_cache
    for key, value in before[0].items():
        np.testing.assert_array_equal(after[0][key], value, err_msg=key)


def test_refused_forward_keeps_user_assigned_parameters():
    """User-assigned float64 weights and list biases are converted only by a forward pass the
    kernel accepts; a refused one (inputs of the wrong width) leaves every attribute alone."""
    layer = dense()
    weights, biases = np.ones((2, 3)), [0.5, 0.5, 0.5]
    layer.weights, layer.biases = weights, biases
    with pytest.raises(ValueError, match=r"inputs: expected shape \(N, 2\), got \(4, 5\)"):
        layer.forward(np.ones((4, 5), np.float32))
    assert layer.weights is weights and layer.biases is biases
    assert not hasattr(layer, "inputs") and not hasattr(layer, "output")
    layer.forward(np.ones((4, 2), np.float32))           # accepted: converted once
    assert layer.weights.dtype == np.float32 and layer.biases.shape == (1, 3)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_refused_first_update_creates_no_state(name):
    """The first update_params creates the optimizer state; refused, it creates none, and
    user-assigned float64 weights stay as they are."""
    layer = with_gradients(dense())
    weights = layer.weights = layer.weights.astype(np.float64)
    layer.dbiases = np.ones((1, 4), np.float32)          # weights pass, biases refused
    optimizer = OPTIMIZERS[name](momentum=0.5) if name == "Optimizer_SGD" \
        else OPTIMIZERS[name]()
    with pytest.raises(ValueError, match=r"layer\.dbiases: expected shape \(1, 3\)"):
        optimizer.update_params(layer)
    assert layer.weights is weights
    assert not [k for k in vars(layer) if k.endswith(("_momentums", "_cache"))]


# ------------------------------------------------------------------------ empty batches

def _empty_batch_results():
    """Every public computation on a batch of 0 samples: name -> result (or exception)."""
    E2, E3 = np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32)
    no_labels = np.zeros(0, np.int64)
    out = {}

    def record(name, call):
        try:
            out[name] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects the type
            out[name] = exc

    layer = dense()
    record("Layer_Dense.forward", lambda: forwarded(layer, E2).output)
    record("Layer_Dense.backward", lambda: (layer.backward(E3), layer.dinputs)[1])
    for cls in ACTIVATIONS + (Activation_Linear,):
        act = cls()
        record(f"{cls.__name__}.forward", lambda act=act: forwarded(act, E3).output)
        record(f"{cls.__name__}.backward", lambda act=act: (act.backward(E3), act.dinputs)[1])
    drop = Layer_Dropout(0.5)
    record("Layer_Dropout.forward", lambda: forwarded(drop, E3).output)
    record("Layer_Dropout.backward", lambda: (drop.backward(E3), drop.dinputs)[1])
    cce = Loss_CategoricalCrossentropy()
    record("Loss_CategoricalCrossentropy.forward", lambda: cce.forward(E3, no_labels))
    record("Loss_CategoricalCrossentropy.backward",
           lambda: (cce.backward(E3, no_labels), cce.dinputs)[1])
    record("softmax_crossentropy_forward", lambda: softmax_crossentropy_forward(E3, no_labels)[1])
    combined = Activation_Softmax_Loss_CategoricalCrossentropy()
    record("Activation_Softmax_Loss_CategoricalCrossentropy.backward",
           lambda: (combined.backward(E3, no_labels), combined.dinputs)[1])
    for cls in MEAN_LOSSES:
        loss = cls()
        record(f"{cls.__name__}.forward", lambda loss=loss: loss.forward(E3, E3))
        record(f"{cls.__name__}.backward", lambda loss=loss: (loss.backward(E3, E3),
                                                              loss.dinputs)[1])
        record(f"{cls.__name__}.calculate", lambda loss=loss: loss.calculate(E3, E3))
    record("Loss_CategoricalCrossentropy.calculate", lambda: cce.calculate(E3, no_labels))
    record("Activation_Softmax_Loss_CategoricalCrossentropy.forward",
           lambda: combined.forward(E3, no_labels))
    record("Accuracy_Categorical.calculate",
           lambda: Accuracy_Categorical().calculate(no_labels, no_labels))
    regression = Accuracy_Regression()
    regression.init(np.ones((3, 1)))
    record("Accuracy_Regression.calculate", lambda: regression.calculate(E3, E3))
    model = classifier()
    record("Model.predict", lambda: model.predict(E2))
    record("Model.predict batched", lambda: model.predict(E2, batch_size=4))
    record("Model.train", lambda: model.train(E2, no_labels, verbose=False))
    record("Model.evaluate", lambda: model.evaluate(E2, no_labels, verbose=False))
    return out


AVERAGES = {"Loss_BinaryCrossentropy.calculate", "Loss_MeanSquaredError.calculate",
            "Loss_MeanAbsoluteError.calculate", "Loss_CategoricalCrossentropy.calculate",
            "Activation_Softmax_Loss_CategoricalCrossentropy.forward",
            "Accuracy_Categorical.calculate", "Accuracy_Regression.calculate",
            "Model.train", "Model.evaluate"}


def test_empty_batches_follow_one_rule():
    """Maps from samples to samples return 0 rows; means over the samples refuse."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # no 'Mean of empty slice' on the way
        results = _empty_batch_results()
    for name, result in results.items():
        if name in AVERAGES:
            assert isinstance(result, ValueError), f"{name}: {result!r}"
            assert "empty" in str(result), f"{name}: {result}"
        else:
            assert isinstance(result, np.ndarray), f"{name}: {result!r}"
            assert len(result) == 0 and result.dtype == np.float32, f"{name}: {result!r}"
    assert results["Model.predict batched"].shape == (0, 3)
    assert not AVERAGES - set(results)


def _bool_data_results():
    """What each entry that takes real numbers does with the same data as a bool array."""
    def attempt(call):
        try:
            return call()
        except (TypeError, ValueError) as exc:
            return exc
    Xb = np.array([[True, False], [False, True]])
    out = {}
    layer = dense()
    out["Layer_Dense.forward"] = attempt(lambda: layer.forward(Xb))
    layer = dense()
    layer.weights = np.ones((2, 3), bool)
    out["Layer_Dense weights"] = attempt(lambda: layer.forward(X6))
    out["Layer_Dropout.forward"] = attempt(lambda: Layer_Dropout(0.5).forward(Xb, False))
    model = classifier()
    out["Model.set_parameters"] = attempt(lambda: model.set_parameters(
        [(np.ones((2, 8), bool), np.zeros((1, 8), bool)),
         (np.ones((8, 3), bool), np.zeros((1, 3), bool))]))
    return out


def test_every_entry_takes_bool_data_as_real_numbers():
    """One rule for real data (_validation.REAL_KINDS): bool arrays (exact 0 and 1) are
    converted to float32 by every entry; Model.set_parameters used to refuse them."""
    for name, result in _bool_data_results().items():
        assert not isinstance(result, Exception), f"{name}: {result!r}"
    from nnfs_fast._validation import REAL_KINDS
    assert REAL_KINDS == "fiub"


def test_dense_layer_converts_parameters_once_and_calls_the_kernel_once(monkeypatch):
    """No convert-and-retry: parameters the kernel cannot take as they are (float64 weights,
    list biases, unaligned float32) are converted before the one kernel call."""
    import types

    import nnfs_fast.layers as layers
    calls = []
    real = layers.kernels

    def counting(name):
        def call(*args):
            calls.append((name, args[1].dtype, np.ndim(args[2])))
            return getattr(real, name)(*args)
        return call
    fake = types.SimpleNamespace(parameters_ready=real.parameters_ready,
                                 dense_forward=counting("dense_forward"),
                                 dense_backward=counting("dense_backward"))
    monkeypatch.setattr(layers, "kernels", fake)
    raw = np.zeros(2 * 3 * 4 + 1, np.uint8)
    unaligned = np.ndarray((2, 3), np.float32, buffer=raw, offset=1)
    unaligned[...] = 0.25
    for weights, biases in ((np.ones((2, 3)), [0.5, 0.5, 0.5]),
                            (unaligned, np.zeros((1, 3), np.float32)),
                            (np.ones((2, 3), np.float32), np.zeros(3, np.float32))):
        layer = dense()
        layer.weights, layer.biases = weights, biases
        calls.clear()
        layer.forward(X6)
        layer.backward(np.ones((6, 3), np.float32))
        assert calls == [("dense_forward", np.float32, 2), ("dense_backward", np.float32, 2)]
        assert layer.weights.flags.aligned and layer.biases.shape == (1, 3)


@pytest.mark.parametrize("kind", ["ok", "float64", "big-endian", "unaligned", "1-D", "3-D",
                                  "odd strides", "list", "F", "subclass"])
def test_parameters_ready_agrees_with_the_kernel(kind):
    """kernels.parameters_ready(weights, biases) is True exactly when dense_forward takes the
    arrays as they are (so the layer converts only what the kernel would refuse)."""
    from nnfs_fast.runtime.dispatch import kernels
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    if kind == "float64":
        w = w.astype(np.float64)
    elif kind == "big-endian":
        w = w.astype(">f4")
    elif kind == "unaligned":
        raw = np.zeros(w.nbytes + 1, np.uint8)
        w = np.ndarray(w.shape, np.float32, buffer=raw, offset=1)
    elif kind == "1-D":
        w = w.ravel()
    elif kind == "3-D":
        w = w[None]
    elif kind == "odd strides":
        raw = np.zeros(64, np.uint8)
        w = np.ndarray((2, 3), np.float32, buffer=raw, strides=(16, 5))
    elif kind == "list":
        w = w.tolist()
    elif kind == "F":
        w = np.asfortranarray(w)
    elif kind == "subclass":
        w = w.view(np.memmap)
    b = np.zeros((1, 3), np.float32)
    try:
        kernels.dense_forward(np.ones((4, 2), np.float32), w, b)
        accepted = True
    except (TypeError, ValueError):
        accepted = False
    assert kernels.parameters_ready(w, b) is accepted
    assert kernels.parameters_ready(b, w) is accepted     # the same test for either array


@pytest.mark.parametrize("make, kernel", [
    (lambda: Optimizer_SGD(0.1), "sgd_update"),
    (lambda: Optimizer_SGD(0.1, momentum=0.5), "sgd_momentum_update"),
    (lambda: Optimizer_Adagrad(0.1), "cache_update"),
    (lambda: Optimizer_RMSprop(0.1), "cache_update"),
    (lambda: Optimizer_Adam(0.1), "adam_update"),
])
def test_optimizer_converts_once_and_calls_the_kernel_once(monkeypatch, make, kernel):
    """No convert-and-retry in update_params: float64 or F-ordered parameters and gradients are
    converted before the one kernel call, and ready arrays go to the kernel as they are."""
    import nnfs_fast.optimizers as optimizers
    calls = []
    real = getattr(optimizers._optimizers, kernel)

    def counting(arrays, *scalars):
        calls.append(tuple(a.dtype for a in arrays))
        return real(arrays, *scalars)
    monkeypatch.setattr(optimizers._optimizers, kernel, counting)
    layer = dense()
    layer.forward(X6)
    layer.backward(np.ones((6, 3), np.float32))
    layer.weights = np.asfortranarray(layer.weights.astype(np.float64))
    layer.dweights = layer.dweights.astype(np.float64)
    optimizer = make()
    for _ in range(2):             # the first call converts (and creates state), the second not
        calls.clear()
        optimizer.update_params(layer)
        assert len(calls) == 1 and set(calls[0]) == {np.dtype(np.float32)}
    assert layer.weights.dtype == np.float32 and layer.weights.flags.c_contiguous
