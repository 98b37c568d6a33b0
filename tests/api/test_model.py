"""Model (the book's chapters 18-22): whole training runs against the float64 reference Model.

Each chapter-style network is built twice from the same initial parameters (nnfs_fast float32,
``nnfs_fast.reference`` float64) and trained with the same seed, so dropout masks coincide.
What is compared, and how closely:

* step 0 of epoch 1 (forward output, loss, gradients before any update): within float32
  round-off of the float64 values;
* every printed line: same text shape, identical ``lr:`` strings (the schedule is computed in
  Python floats by both), acc/loss within ``EARLY`` (one unit of the printed third decimal) for
  the lines of the first five epochs and within ``LATE`` for the rest; the final training-set
  accuracies within ``LATE["acc"]``. These tolerances are not tighter because float32-vs-
  float64 round-off is amplified by training (long training runs are chaotic): Adam
  divides each update by the gradient's own magnitude, so a weight whose gradient nearly
  cancels (e.g. a bias at initialisation, where the softmax is ~1/k for every class) moves by a
  different amount, and the difference grows step by step; a ReLU unit that switches on or off
  for one sample a step earlier in one run makes a jump. Measured for the chapter-14 network:
  parameters agree to ~3e-5 (relative to their largest value) for 15 epochs, then a jump and
  growth to ~0.1 by epoch 30, with printed accuracies 0.007 apart. Accuracy also moves in steps
  of 1/n_samples when a sample near the decision boundary flips class.

Also: fused Dense->ReLU and unfused runs are bit-identical, the learning-rate prints match the
book's values exactly, and the additions of A5 (history, shuffle, progress, Ctrl-C).
"""
import io
import os
import re
import signal
import types

import numpy as np
import pytest

import nnfs_fast.model as model_module
import nnfs_fast.progress as progress_module
from nnfs_fast import reference
from nnfs_fast.accuracy import Accuracy_Categorical, Accuracy_Regression
from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.datasets import sine_data, spiral_data
from nnfs_fast.layers import Layer_Dense, Layer_Dropout, Layer_Input
from nnfs_fast.losses import (
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanSquaredError,
    softmax_crossentropy_forward,
)
from nnfs_fast.model import Model
from nnfs_fast.optimizers import Optimizer_Adam, Optimizer_SGD

FAST = types.SimpleNamespace(
    Model=Model, Layer_Dense=Layer_Dense, Layer_Dropout=Layer_Dropout,
    Activation_ReLU=Activation_ReLU, Activation_Softmax=Activation_Softmax,
    Activation_Sigmoid=Activation_Sigmoid, Activation_Linear=Activation_Linear,
    Loss_CategoricalCrossentropy=Loss_CategoricalCrossentropy,
    Loss_BinaryCrossentropy=Loss_BinaryCrossentropy, Loss_MeanSquaredError=Loss_MeanSquaredError,
    Optimizer_Adam=Optimizer_Adam, Accuracy_Categorical=Accuracy_Categorical,
    Accuracy_Regression=Accuracy_Regression)
REF = reference

RTOL = 1e-5          # float32 sums of up to a few hundred terms, relative to their magnitude
EARLY = 1e-3 + 1e-9   # one unit of the printed third decimal (two roundings of close values)
LATE = {"acc": 0.02, "loss": 0.01}   # absolute, after the values have drifted (see above)

L2 = dict(weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)


def layer(name, *args, **kwargs):
    return name, args, kwargs


RELU, SOFTMAX, DROPOUT = layer("Activation_ReLU"), layer("Activation_Softmax"), \
    layer("Layer_Dropout", 0.1)
# name: (data, layers, loss, Adam's arguments, (accuracy, arguments), train arguments,
#        initial weight scale)
CHAPTERS = {
    "ch10": ("spiral3", [layer("Layer_Dense", 2, 64), RELU, layer("Layer_Dense", 64, 3), SOFTMAX],
             "Loss_CategoricalCrossentropy", dict(learning_rate=0.05, decay=5e-7),
             ("Accuracy_Categorical", {}), dict(epochs=30, print_every=1), 1),
    "ch14": ("spiral3", [layer("Layer_Dense", 2, 64, **L2), RELU, layer("Layer_Dense", 64, 3),
                         SOFTMAX],
             "Loss_CategoricalCrossentropy", dict(learning_rate=0.02, decay=5e-7),
             ("Accuracy_Categorical", {}), dict(epochs=30), 1),
    "ch15": ("spiral3", [layer("Layer_Dense", 2, 64, **L2), RELU, DROPOUT,
                         layer("Layer_Dense", 64, 3), SOFTMAX],
             "Loss_CategoricalCrossentropy", dict(learning_rate=0.05, decay=5e-5),
             ("Accuracy_Categorical", {}), dict(epochs=30), 1),
    "ch16": ("spiral2", [layer("Layer_Dense", 2, 64, **L2), RELU, layer("Layer_Dense", 64, 1),
                         layer("Activation_Sigmoid")],
             "Loss_BinaryCrossentropy", dict(decay=5e-7),
             ("Accuracy_Categorical", {"binary": True}), dict(epochs=30), 1),
    "ch17": ("sine", [layer("Layer_Dense", 1, 64), RELU, layer("Layer_Dense", 64, 64), RELU,
                      layer("Layer_Dense", 64, 1), layer("Activation_Linear")],
             "Loss_MeanSquaredError", dict(learning_rate=0.005, decay=1e-3),
             ("Accuracy_Regression", {}), dict(epochs=30), 10),
    "ch19": ("spiral3_big", [layer("Layer_Dense", 2, 64, **L2), RELU, DROPOUT,
                             layer("Layer_Dense", 64, 3), SOFTMAX],
             "Loss_CategoricalCrossentropy", dict(learning_rate=0.05, decay=5e-5),
             ("Accuracy_Categorical", {}),
             dict(epochs=3, batch_size=128, print_every=10, validation=True), 1),
}


def dataset(name):
    np.random.seed(0)
    if name == "spiral2":
        X, y = spiral_data(samples=100, classes=2)
        return X, y.reshape(-1, 1), None
    if name == "sine":
        X, y = sine_data()
        return X, y, None
    if name == "spiral3_big":
        X, y = spiral_data(samples=1000, classes=3)
        return X, y, spiral_data(samples=100, classes=3)
    X, y = spiral_data(samples=100, classes=3)
    return X, y, None


def build(ns, chapter, parameters=None, **model_kwargs):
    """A finalized Model of namespace ``ns``; parameters copied from ``parameters`` if given."""
    _, layers, loss, opt, (acc, acc_kwargs), _, scale = CHAPTERS[chapter]
    np.random.seed(1)
    model = ns.Model(**model_kwargs)
    for name, args, kwargs in layers:
        model.add(getattr(ns, name)(*args, **kwargs))
    model.set(loss=getattr(ns, loss)(), optimizer=ns.Optimizer_Adam(**opt),
              accuracy=getattr(ns, acc)(**acc_kwargs))
    model.finalize()
    if parameters is None:
        parameters = [(np.float32(scale) * w, b) for w, b in model.get_parameters()]
    model.set_parameters([(np.array(w, dtype=w.dtype), np.array(b, dtype=b.dtype))
                          for w, b in parameters])
    return model


def train_kwargs(chapter):
    kwargs = dict(CHAPTERS[chapter][5])
    if kwargs.pop("validation", False):
        kwargs["validation_data"] = dataset(CHAPTERS[chapter][0])[2]
    return kwargs


def run(model, X, y, capsys, **kwargs):
    """(printed lines, return value) of a train call; dropout masks from seed 123."""
    capsys.readouterr()
    np.random.seed(123)
    result = model.train(X, y, **kwargs)
    return capsys.readouterr().out.splitlines(), result


LINE = re.compile(r"(\w+): ([-+\w.]+)")


def parse(line):
    """('epoch'|'step'|'training'|'validation', {key: text})."""
    return re.split(r"[:,]", line)[0], dict(LINE.findall(line))


def assert_close_lines(fast_lines, ref_lines, n_early):
    assert len(fast_lines) == len(ref_lines)
    for i, (f, r) in enumerate(zip(fast_lines, ref_lines)):
        assert re.sub(r"[-\d.e]+", "#", f) == re.sub(r"[-\d.e]+", "#", r), (f, r)
        (_, fv), (_, rv) = parse(f), parse(r)
        for key in fv:
            if key in ("epoch", "step", "lr"):
                assert fv[key] == rv[key], (key, f, r)
                continue
            tol = EARLY if i < n_early else LATE["acc" if key == "acc" else "loss"]
            if key != "acc":
                tol = max(tol, tol * abs(float(rv[key])))
            assert abs(float(fv[key]) - float(rv[key])) <= tol, (key, i, f, r)


def assert_gradients_within_round_off(fast, ref, chapter):
    """Each float32 gradient within RTOL of the *magnitude* of its float64 sum.

    A gradient element is a sum of products (over samples for dweights/dbiases, over neurons
    for dinputs) that can cancel almost completely -- e.g. the bias gradients at
    initialisation, (softmax - one_hot) summed over balanced classes -- so the error is bounded
    relative to the sum of the absolute terms, propagated back through the layers, not to the
    result."""
    magnitude = np.abs(ref.layers[-1].dinputs)
    for f, r in zip(reversed(fast.layers[:-1]), reversed(ref.layers[:-1])):
        if isinstance(r, REF.Layer_Dense):
            bounds = {"dweights": np.abs(r.inputs).T @ magnitude,
                      "dbiases": magnitude.sum(axis=0, keepdims=True),
                      "dinputs": magnitude @ np.abs(r.weights).T}
            for name, bound in bounds.items():
                if name == "dinputs" and f.prev is fast.input_layer:
                    assert f.dinputs is None  # a first layer's input gradient is skipped
                    continue
                error = np.abs(getattr(f, name) - getattr(r, name))
                assert (error <= RTOL * bound + 1e-12).all(), \
                    f"{chapter}: {name} of {f!r}: error {error.max()} > {RTOL} * magnitude"
            magnitude = bounds["dinputs"]
        elif isinstance(r, REF.Activation_ReLU):
            magnitude = magnitude * (r.inputs > 0)
        elif isinstance(r, REF.Layer_Dropout):
            magnitude = magnitude * r.binary_mask


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_training_matches_the_reference(chapter, capsys):
    X, y, _ = dataset(CHAPTERS[chapter][0])
    fast = build(FAST, chapter)
    ref = build(REF, chapter, fast.get_parameters())

    # step 0: forward, loss and gradients before any update, within float32 round-off
    for model in (fast, ref):
        np.random.seed(123)
        model.loss.new_pass()
        batch = slice(None, train_kwargs(chapter).get("batch_size"))
        model.step0 = model.forward(X[batch], training=True)
        model.loss0 = model.loss.calculate(model.step0, y[batch], include_regularization=True)
        model.backward(model.step0, y[batch])
    np.testing.assert_allclose(fast.step0, ref.step0, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(fast.loss0, ref.loss0, rtol=2e-5, atol=1e-7)
    assert_gradients_within_round_off(fast, ref, chapter)

    fast = build(FAST, chapter, ref.get_parameters())
    ref = build(REF, chapter, ref.get_parameters())
    fast_lines, history = run(fast, X, y, capsys, **train_kwargs(chapter))
    ref_lines, _ = run(ref, X, y, capsys, **train_kwargs(chapter))
    epochs = train_kwargs(chapter)["epochs"]
    assert_close_lines(fast_lines, ref_lines, n_early=len(ref_lines) * min(5, epochs) // epochs)
    # accuracy of the trained models on the whole training set
    accuracies = [np.mean(m.output_layer_activation.predictions(m.predict(X)) == y)
                  if chapter != "ch17" else history["acc"][-1] for m in (fast, ref)]
    assert abs(accuracies[0] - accuracies[1]) <= LATE["acc"]
    assert len(history["loss"]) == train_kwargs(chapter)["epochs"]


def test_book_printing_format(capsys):
    X, y, validation = dataset("spiral3_big")
    model = build(FAST, "ch19")
    lines, _ = run(model, X[:300], y[:300], capsys, epochs=2, batch_size=128, print_every=2,
                   validation_data=validation)
    shapes = [re.sub(r"\d+\.\d+(e-?\d+)?", "F", re.sub(r"(?<=: )\d+(?=,|$)", "I", line))
              for line in lines]
    step = "step: I, acc: F, loss: F (data_loss: F, reg_loss: F), lr: F"
    epoch_lines = ["epoch: I", step, step,
                   "training, acc: F, loss: F (data_loss: F, reg_loss: F), lr: F",
                   "validation, acc: F, loss: F"]
    assert shapes == epoch_lines * 2
    assert [line.split(",")[0] for line in lines if line.startswith("step")] == \
        ["step: 0", "step: 2"] * 2          # every print_every steps and the last (3 steps)
    assert re.fullmatch(r"step: 0, acc: \d\.\d{3}, loss: \d\.\d{3} \(data_loss: \d\.\d{3}, "
                        r"reg_loss: \d\.\d{3}\), lr: 0\.05", lines[1])


@pytest.mark.parametrize("iterations, steps, expected", [
    # Fashion-MNIST, Adam(decay=1e-3), 469 steps per epoch: epoch 10, steps 0, 100, 468
    (9 * 469, 469, {0: "0.0001915341888527102", 100: "0.00018793459875963167",
                    468: "0.00017577781683951485"}),
    # chapter 10, Adam(0.05, decay=5e-7) at epoch 10000 (update number 9999)
    (9999, 1, {0: "0.04975126853296942"}),
])
def test_learning_rate_prints_are_exact(iterations, steps, expected, capsys):
    np.random.seed(0)
    model = Model()
    model.add(Layer_Dense(2, 3))
    model.add(Activation_Softmax())
    decay = 1e-3 if steps > 1 else 5e-7
    model.set(loss=Loss_CategoricalCrossentropy(), accuracy=Accuracy_Categorical(),
              optimizer=Optimizer_Adam(**({"decay": decay} if steps > 1 else
                                          {"learning_rate": 0.05, "decay": decay})))
    model.finalize()
    model.optimizer.iterations = iterations
    X = np.random.randn(steps, 2).astype(np.float32)
    y = np.zeros(steps, dtype=np.uint8)
    lines, _ = run(model, X, y, capsys, batch_size=1, print_every=100)
    printed = {int(parse(line)[1]["step"]): parse(line)[1]["lr"]
               for line in lines if line.startswith("step")}
    assert {k: printed[k] for k in expected} == expected


# ------------------------------------------------------------------------------------ fusion

@pytest.mark.parametrize("chapter", ["ch15", "ch17", "ch19"])
def test_fused_and_unfused_are_identical(chapter, capsys, monkeypatch):
    X, y, _ = dataset(CHAPTERS[chapter][0])
    # the Python path's fusions (the compiled plan, tests/api/test_plan.py, has its own)
    fused = build(FAST, chapter, compiled=False)
    plain = build(FAST, chapter, fused.get_parameters(), fuse=False)
    assert fused.fuse and not plain.fuse
    softmax_loss_calls = []

    def counting(*args):
        softmax_loss_calls.append(1)
        return softmax_crossentropy_forward(*args)

    monkeypatch.setattr(model_module, "softmax_crossentropy_forward", counting)
    kwargs = dict(train_kwargs(chapter), epochs=2)
    fused_lines, fused_history = run(fused, X, y, capsys, **kwargs)
    # the softmax + cross-entropy pass is fused in the training and validation steps
    # (ch19: 24 + 3 batches of 128 per epoch)
    assert len(softmax_loss_calls) == (0 if chapter == "ch17" else
                                       2 * (24 + 3) if chapter == "ch19" else 2)
    plain_lines, plain_history = run(plain, X, y, capsys, **kwargs)
    assert len(softmax_loss_calls) == (0 if chapter == "ch17" else
                                       2 * (24 + 3) if chapter == "ch19" else 2)
    assert fused_lines == plain_lines
    assert fused_history == plain_history
    for (wf, bf), (wp, bp) in zip(fused.get_parameters(), plain.get_parameters()):
        np.testing.assert_array_equal(wf, wp)
        np.testing.assert_array_equal(bf, bp)
    for lf, lp in zip(fused.layers, plain.layers):
        # (a fused Dense's output is post-ReLU, by design)
        for name in ("dinputs", "dweights", "dbiases") + ("output",) * (type(lf) is not
                                                                         Layer_Dense):
            if hasattr(lp, name):
                np.testing.assert_array_equal(getattr(lf, name), getattr(lp, name),
                                              err_msg=f"{lf!r}.{name}")


def test_fused_pair_shares_the_post_relu_array():
    model = build(FAST, "ch10")
    X, _, _ = dataset("spiral3")
    model.forward(X, training=False)
    dense, relu = model.layers[0], model.layers[1]
    assert dense.output is relu.output is relu.inputs
    assert (dense.output >= 0).all()
    assert dense.inputs is X
    # the unfused run gives the same post-ReLU values
    model.fuse = False
    model.forward(X, training=False)
    assert relu.output is not dense.output
    np.testing.assert_array_equal(relu.output, np.maximum(dense.output, 0))


# -------------------------------------------------------------------------------- structure

def test_finalize_links_the_layers():
    model = build(FAST, "ch15")
    assert isinstance(model.input_layer, Layer_Input)
    assert model.layers[0].prev is model.input_layer
    for a, b in zip(model.layers, model.layers[1:]):
        assert a.next is b and b.prev is a
    assert model.layers[-1].next is model.loss
    assert model.trainable_layers == [model.layers[0], model.layers[3]]
    assert model.output_layer_activation is model.layers[-1]
    assert model.loss.trainable_layers == model.trainable_layers
    assert type(model.softmax_classifier_output) is \
        Activation_Softmax_Loss_CategoricalCrossentropy
    binary = build(FAST, "ch16")
    assert binary.softmax_classifier_output is None
    assert "Layer_Dense(n_inputs=2, n_neurons=64" in repr(model)
    assert "loss=" in repr(model) and repr(Model()) == "Model()"


def _classifier(layers):
    model = Model()
    for layer in layers:
        model.add(layer)
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(),
              accuracy=Accuracy_Categorical())
    model.finalize()
    return model


def test_a_layer_belongs_to_one_model():
    """finalize links each layer to its neighbours and a layer keeps its last activations, so
    a layer shared by two models (or added twice) would make one model compute from the
    other's activations: refused at finalize, with the way out (a copy)."""
    import copy
    import gc
    np.random.seed(0)
    first = _classifier([Layer_Dense(2, 8), Activation_ReLU(), Layer_Dense(8, 3),
                         Activation_Softmax()])
    X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(4, 2)
    expected = first.predict(X)
    shared = first.layers[:2] + [Layer_Dense(8, 3), Activation_Softmax()]
    with pytest.raises(ValueError, match=r"model.layers\[0\] \(Layer_Dense\(n_inputs=2, "
                                         r"n_neurons=8\)\) already belongs to another "
                                         r"finalized Model.*copy.deepcopy\(layer\)"):
        _classifier(shared)
    np.testing.assert_array_equal(first.predict(X), expected)   # first model untouched
    copied = _classifier([copy.deepcopy(layer) for layer in first.layers])
    np.testing.assert_array_equal(copied.predict(X), expected)
    first.finalize()                                      # finalizing again is fine
    relu = Activation_ReLU()
    with pytest.raises(ValueError, match=r"model.layers\[1\] and model.layers\[3\] are the "
                                         r"same Activation_ReLU object"):
        _classifier([Layer_Dense(2, 8), relu, Layer_Dense(8, 8), relu, Layer_Dense(8, 3),
                     Activation_Softmax()])
    del first, copied
    gc.collect()
    _classifier(shared)                  # the first model is gone: its layers can be reused


def test_set_keeps_what_is_not_given():
    model = Model()
    assert model.layers == [] and model.softmax_classifier_output is None
    loss, accuracy = Loss_CategoricalCrossentropy(), Accuracy_Categorical()
    model.set(loss=loss, accuracy=accuracy)
    optimizer = Optimizer_SGD()
    model.set(optimizer=optimizer)
    assert (model.loss, model.optimizer, model.accuracy) == (loss, optimizer, accuracy)


def test_usage_errors():
    X, y, _ = dataset("spiral3")
    model = Model()
    with pytest.raises(ValueError, match="no layers"):
        model.finalize()
    model.add(Layer_Dense(2, 3))
    model.add(Activation_Softmax())
    with pytest.raises(RuntimeError, match=r"needs loss, optimizer, accuracy: call "
                                           r"model.set\(loss=..., optimizer=..."):
        model.train(X, y)
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(),
              accuracy=Accuracy_Categorical())
    with pytest.raises(RuntimeError, match=r"call model.finalize\(\) first"):
        model.train(X, y)
    with pytest.raises(RuntimeError, match=r"call model.finalize\(\) first"):
        model.predict(X)
    model.finalize()
    with pytest.raises(ValueError, match="X has 300 samples but y has 299"):
        model.train(X, y[:-1])
    with pytest.raises(ValueError, match="batch_size must be None or a positive int, got 0"):
        model.train(X, y, batch_size=0)
    with pytest.raises(ValueError, match="print_every must be a positive int, got 0"):
        model.train(X, y, print_every=0)
    with pytest.raises(ValueError, match=r"validation_data must be a pair"):
        model.train(X, y, validation_data=X)
    with pytest.raises(ValueError, match=r"expected 1 \(weights, biases\) pairs.*got 2"):
        model.set_parameters([(np.zeros((2, 3)), np.zeros((1, 3)))] * 2)
    with pytest.raises(ValueError, match=r"trainable layer 0 \(model.layers\[0\], "
                                         r"Layer_Dense\(n_inputs=2, n_neurons=3\)\): expected "
                                         r"biases of shape \(1, 3\), got \(3,\)"):
        model.set_parameters([(np.zeros((2, 3)), np.zeros(3))])


def test_predict_and_evaluate(capsys):
    X, y, _ = dataset("spiral3")
    model = build(FAST, "ch15")
    full = model.predict(X)
    assert full.shape == (300, 3) and full.dtype == np.float32
    np.testing.assert_allclose(model.predict(X, batch_size=7), full, rtol=1e-6, atol=1e-7)
    state = np.random.get_state()[1].copy()
    capsys.readouterr()
    result = model.evaluate(X, y, batch_size=64)
    assert (np.random.get_state()[1] == state).all()       # no dropout mask drawn
    line = capsys.readouterr().out.strip()
    assert line == f"validation, acc: {result['acc']:.3f}, loss: {result['loss']:.3f}"
    ref = build(REF, "ch15", model.get_parameters())
    ref.evaluate(X, y, batch_size=64)
    assert capsys.readouterr().out.strip() == line
    model.evaluate(X, y, verbose=False)
    assert capsys.readouterr().out == ""


# ------------------------------------------------------------------------ A5: the additions

def test_history_records_the_printed_values(capsys):
    X, y, validation = dataset("spiral3_big")
    model = build(FAST, "ch19")
    lines, history = run(model, X[:512], y[:512], capsys, epochs=2, batch_size=256,
                         validation_data=validation)
    assert sorted(history) == sorted(["loss", "data_loss", "reg_loss", "acc", "lr", "val_loss",
                                      "val_acc"])
    training = [parse(line)[1] for line in lines if line.startswith("training")]
    validating = [parse(line)[1] for line in lines if line.startswith("validation")]
    for key in ("loss", "data_loss", "reg_loss", "acc"):
        assert [f"{v:.3f}" for v in history[key]] == [t[key] for t in training]
    assert [str(v) for v in history["lr"]] == [t["lr"] for t in training]
    assert [f"{v:.3f}" for v in history["val_loss"]] == [t["loss"] for t in validating]
    assert [f"{v:.3f}" for v in history["val_acc"]] == [t["acc"] for t in validating]
    quiet = build(FAST, "ch19")
    quiet_lines, quiet_history = run(quiet, X[:512], y[:512], capsys, epochs=2, batch_size=256,
                                     validation_data=validation, verbose=False)
    assert quiet_lines == [] and quiet_history == history
    assert "val_loss" not in run(quiet, X, y, capsys, verbose=False)[1]


def test_shuffle(capsys):
    X, y, _ = dataset("spiral3")
    kwargs = dict(epochs=2, batch_size=64, verbose=False)
    # default: the book's fixed order, and no random numbers drawn (no dropout here)
    np.random.seed(9)
    expected_next_draw = np.random.randint(1 << 30)
    model = build(FAST, "ch10")
    np.random.seed(9)
    model.train(X, y, **kwargs)
    assert np.random.randint(1 << 30) == expected_next_draw
    # shuffle=True: one np.random.permutation per epoch, from the global legacy RNG
    shuffled = build(FAST, "ch10")
    manual = build(FAST, "ch10", shuffled.get_parameters())
    np.random.seed(9)
    shuffled.train(X, y, shuffle=True, **kwargs)
    np.random.seed(9)
    orders = [np.random.permutation(len(X)) for _ in range(2)]
    for order in orders:
        manual.train(X[order], y[order], **dict(kwargs, epochs=1))
    for (a, b), (c, d) in zip(shuffled.get_parameters(), manual.get_parameters()):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_progress_bar_text_fallback(capsys, monkeypatch):
    monkeypatch.setattr(progress_module, "_tqdm", None)
    X, y, _ = dataset("spiral3")
    model = build(FAST, "ch10")
    capsys.readouterr()
    model.train(X, y, epochs=2, batch_size=100, progress=True)
    out, err = capsys.readouterr()
    assert "step:" not in out
    assert [line.split(",")[0] for line in out.splitlines()] == [
        "epoch: 1", "training", "epoch: 2", "training"]
    assert "epoch 2/2 [" + "#" * 30 + "] 3/3 acc: " in err


def test_progress_bar_uses_tqdm_when_installed(capsys, monkeypatch):
    bars = []

    class FakeTqdm:
        def __init__(self, total, desc, leave):
            self.total, self.desc, self.n, self.postfix, self.closed = total, desc, 0, "", False
            bars.append(self)

        def set_postfix_str(self, text, refresh):
            self.postfix = text

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(progress_module, "_tqdm", FakeTqdm)
    X, y, _ = dataset("spiral3")
    build(FAST, "ch10").train(X, y, epochs=2, batch_size=128, progress=True, verbose=False)
    assert capsys.readouterr().out == ""
    assert [(b.total, b.desc, b.n, b.closed) for b in bars] == [(3, "epoch 1/2", 3, True),
                                                                (3, "epoch 2/2", 3, True)]
    assert bars[-1].postfix.startswith("acc: ")


class InterruptingAdam(Optimizer_Adam):
    """Sends SIGINT to this process in the middle of update number ``at`` (after the first
    layer has been updated, before the second)."""

    def __init__(self, at, **kwargs):
        super().__init__(**kwargs)
        self.at, self.layers_updated = at, 0

    def update_params(self, layer):
        super().update_params(layer)
        self.layers_updated += 1
        if self.iterations == self.at and self.layers_updated % 2 == 1:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_leaves_the_last_completed_step(capsys):
    X, y, _ = dataset("spiral3")
    model = build(FAST, "ch10")
    control = build(FAST, "ch10", model.get_parameters())
    model.set(optimizer=InterruptingAdam(at=4, learning_rate=0.05, decay=5e-7))
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        model.train(X, y, epochs=10, verbose=False)
    assert signal.getsignal(signal.SIGINT) is handler
    # the interrupted update (number 4, the fifth) was completed for every layer
    assert model.optimizer.iterations == 5
    control.train(X, y, epochs=5, verbose=False)
    for (a, b), (c, d) in zip(model.get_parameters(), control.get_parameters()):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    for name in ("weight_momentums", "weight_cache", "bias_cache"):
        np.testing.assert_array_equal(getattr(model.layers[2], name),
                                      getattr(control.layers[2], name))
    # the model trains on normally afterwards
    model.optimizer.at = -1
    model.train(X, y, epochs=1, verbose=False)
    assert model.optimizer.iterations == 6


def test_ctrl_c_outside_the_update_stops_at_once(capsys):
    X, y, _ = dataset("spiral3")
    model = build(FAST, "ch10")
    control = build(FAST, "ch10", model.get_parameters())
    calls = []
    original = model.layers[2].forward

    def forward(inputs, training=False):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original(inputs, training)

    model.layers[2].forward = forward
    with pytest.raises(KeyboardInterrupt):
        model.train(X, y, epochs=10, progress=True, verbose=False)
    assert model.optimizer.iterations == 2
    control.train(X, y, epochs=2, verbose=False)
    for (a, b), (c, d) in zip(model.get_parameters(), control.get_parameters()):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def test_text_bar_draws_in_place():
    stream = io.StringIO()
    bar = progress_module.ProgressBar(4, "epoch 1/1", stream=stream)
    for _ in range(4):
        bar.update("acc: 0.500")
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\repoch 1/1 [" + "." * 30 + "] 0/4 ")
    assert text.endswith("] 4/4 acc: 0.500\n")
