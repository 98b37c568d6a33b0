"""Model.save / Model.load / save_parameters / load_parameters (docs/GUARANTEES.md).

The default format is a zip of float32 .npy arrays plus a JSON description, read with
allow_pickle=False: round trips must be exact (predictions, optimizer state, hyper-parameters),
damaged or foreign files must raise a ValueError that names the file and the problem, an
interrupted save must leave the previous file intact, and the book's pickle files (classes in
``__main__``, written here by a subprocess that defines minimal book classes) load only with
``allow_pickle=True``, while a pickle that refers to anything else is refused.
"""
import os
import pickle
import zipfile

import numpy as np
import pytest

from conftest import run_python
from nnfs_fast.accuracy import Accuracy_Categorical, Accuracy_Regression
from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.datasets import sine_data, spiral_data
from nnfs_fast.io import archive as _persistence
from nnfs_fast.layers import Layer_Dense, Layer_Dropout
from nnfs_fast.losses import (
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanSquaredError,
)
from nnfs_fast.model import Model
from nnfs_fast.optimizers import Optimizer_Adam, Optimizer_RMSprop, Optimizer_SGD


def classifier(seed=0, optimizer=None):
    np.random.seed(seed)
    model = Model()
    model.add(Layer_Dense(2, 16, weight_regularizer_l2=5e-4, bias_regularizer_l1=1e-4))
    model.add(Activation_ReLU())
    model.add(Layer_Dropout(0.1))
    model.add(Layer_Dense(16, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(),
              optimizer=optimizer or Optimizer_Adam(learning_rate=0.05, decay=5e-5),
              accuracy=Accuracy_Categorical())
    model.finalize()
    return model


@pytest.fixture(scope="module")
def spiral():
    np.random.seed(1)
    return spiral_data(samples=50, classes=3)


@pytest.fixture
def trained(spiral):
    X, y = spiral
    model = classifier()
    model.train(X, y, epochs=3, verbose=False)
    return model


def test_round_trip_predicts_and_trains_identically(tmp_path, spiral, trained):
    X, y = spiral
    path = tmp_path / "spiral.model"
    trained.save(path)
    loaded = Model.load(path)
    np.testing.assert_array_equal(loaded.predict(X), trained.predict(X))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in trained.layers]
    assert loaded.layers[2].rate == trained.layers[2].rate == 0.9
    assert loaded.layers[0].weight_regularizer_l2 == 5e-4
    assert loaded.layers[0].bias_regularizer_l1 == 1e-4
    assert loaded.softmax_classifier_output is not None
    opt, opt0 = loaded.optimizer, trained.optimizer
    assert (opt.learning_rate, opt.decay, opt.iterations, opt.current_learning_rate) == \
        (opt0.learning_rate, opt0.decay, opt0.iterations, opt0.current_learning_rate)
    for a, b in zip(loaded.trainable_layers, trained.trainable_layers):
        for name in ("weights", "biases", "weight_momentums", "weight_cache", "bias_momentums",
                     "bias_cache"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
            assert getattr(a, name).dtype == np.float32
    # continuing the training (same dropout masks) gives the same parameters: the optimizer
    # state and counters were restored
    for model in (trained, loaded):
        np.random.seed(7)
        model.train(X, y, epochs=2, verbose=False)
    for a, b in zip(loaded.get_parameters(), trained.get_parameters()):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_file_is_a_plain_npz_archive(tmp_path, trained):
    path = tmp_path / "m.model"
    trained.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert npz["layers/0/weights"].dtype == np.float32
        np.testing.assert_array_equal(npz["layers/3/biases"], trained.layers[3].biases)
    with zipfile.ZipFile(path) as archive:
        meta = archive.read(_persistence.META).decode()
    assert '"format": "nnfs_fast"' in meta and '"Optimizer_Adam"' in meta


@pytest.mark.parametrize("build", ["binary", "regression", "sgd", "no_optimizer"])
def test_round_trip_other_heads(tmp_path, build):
    np.random.seed(3)
    model = Model(fuse=build != "sgd")
    if build == "regression":
        X, y = sine_data(samples=64)
        model.add(Layer_Dense(1, 8))
        model.add(Activation_ReLU())
        model.add(Layer_Dense(8, 1))
        model.add(Activation_Linear())
        model.set(loss=Loss_MeanSquaredError(), optimizer=Optimizer_RMSprop(decay=1e-3),
                  accuracy=Accuracy_Regression())
    else:
        X, y = spiral_data(samples=30, classes=2)
        y = y.reshape(-1, 1)
        model.add(Layer_Dense(2, 8))
        model.add(Activation_ReLU())
        model.add(Layer_Dense(8, 1))
        model.add(Activation_Sigmoid())
        model.set(loss=Loss_BinaryCrossentropy(), accuracy=Accuracy_Categorical(binary=True),
                  optimizer=Optimizer_SGD(decay=1e-3, momentum=0.5) if build == "sgd" else
                  None if build == "no_optimizer" else Optimizer_Adam())
    model.finalize()
    if model.optimizer is not None:
        model.train(X, y, epochs=2, verbose=False)
    path = tmp_path / "m.model"
    model.save(path)
    loaded = Model.load(path)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.fuse == model.fuse
    assert type(loaded.optimizer) is type(model.optimizer)
    assert type(loaded.accuracy) is type(model.accuracy)
    if build == "regression":
        assert loaded.accuracy.precision == model.accuracy.precision
    elif build == "sgd":
        assert loaded.optimizer.momentum == 0.5
        np.testing.assert_array_equal(loaded.layers[0].weight_momentums,
                                      model.layers[0].weight_momentums)
    else:
        assert loaded.accuracy.binary


def test_load_leaves_the_global_rng_alone(tmp_path, trained):
    trained.save(tmp_path / "m.model")
    np.random.seed(5)
    Model.load(tmp_path / "m.model")
    after_load = np.random.randn(3)
    np.random.seed(5)
    np.testing.assert_array_equal(after_load, np.random.randn(3))


def test_model_without_loss_is_saved(tmp_path, spiral):
    np.random.seed(0)
    model = Model()
    model.add(Layer_Dense(2, 4))
    model.add(Activation_Softmax())
    model.finalize()
    model.save(tmp_path / "m.model")
    loaded = Model.load(tmp_path / "m.model")
    assert loaded.loss is None and loaded.optimizer is None
    np.testing.assert_array_equal(loaded.predict(spiral[0]), model.predict(spiral[0]))


def test_parameters_round_trip(tmp_path, spiral, trained):
    path = tmp_path / "m.parms"
    trained.save_parameters(path)
    fresh = classifier(seed=42)
    fresh.load_parameters(path)
    np.testing.assert_array_equal(fresh.predict(spiral[0]), trained.predict(spiral[0]))
    params = _persistence.load_parameters(path)
    assert [(w.shape, b.shape) for w, b in params] == [((2, 16), (1, 16)), ((16, 3), (1, 3))]
    assert all(w.dtype == b.dtype == np.float32 for w, b in params)


def test_book_chapter22_evaluation_flow(tmp_path, spiral, trained, capsys):
    """Chapter 22: a model set with loss and accuracy only, parameters loaded, evaluated."""
    X, y = spiral
    trained.save_parameters(tmp_path / "m.parms")
    model = Model()
    model.add(Layer_Dense(2, 16))
    model.add(Activation_ReLU())
    model.add(Layer_Dropout(0.1))
    model.add(Layer_Dense(16, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), accuracy=Accuracy_Categorical())
    model.finalize()
    model.load_parameters(tmp_path / "m.parms")
    capsys.readouterr()
    model.evaluate(X, y)
    trained.evaluate(X, y)
    first, second = capsys.readouterr().out.splitlines()
    assert first == second and first.startswith("validation, acc: ")


def test_parameters_into_another_architecture(tmp_path, trained):
    trained.save_parameters(tmp_path / "m.parms")
    np.random.seed(0)
    other = Model()
    other.add(Layer_Dense(2, 8))
    other.add(Activation_ReLU())
    other.add(Layer_Dense(8, 3))
    other.add(Activation_Softmax())
    other.finalize()
    before = [w.copy() for w, _ in other.get_parameters()]
    with pytest.raises(ValueError, match=r"trainable layer 0 \(model.layers\[0\].*expected "
                                         r"weights of shape \(2, 8\), got \(2, 16\)"):
        other.load_parameters(tmp_path / "m.parms")
    for w, (w_after, _) in zip(before, other.get_parameters()):  # nothing was assigned
        np.testing.assert_array_equal(w, w_after)


def test_save_refuses_classes_it_cannot_describe(tmp_path):
    class MyDense(Layer_Dense):
        pass

    np.random.seed(0)
    model = Model()
    model.add(MyDense(2, 3))
    model.add(Activation_Softmax())
    model.finalize()
    with pytest.raises(ValueError, match="MyDense.*save_parameters"):
        model.save(tmp_path / "m.model")
    assert not os.listdir(tmp_path)
    model.save_parameters(tmp_path / "m.parms")  # parameters work for any model


# ----------------------------------------------------------------- damaged and foreign files

@pytest.fixture
def saved(tmp_path, trained):
    path = tmp_path / "good.model"
    trained.save(path)
    return path


def _rewrite_meta(src, dst, edit):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == _persistence.META:
                data = edit(data.decode()).encode()
            zout.writestr(item, data)


def test_truncated_file(tmp_path, saved):
    data = saved.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 5):
        bad = tmp_path / f"cut{cut}.model"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match=rf"cut{cut}\.model: truncated or corrupted"):
            Model.load(bad)


def test_corrupted_array_bytes(tmp_path, saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("layers/0/weights.npy")
    # past the local header and the .npy header: inside the float data
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[offset] ^= 0xFF
    bad = tmp_path / "flipped.model"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"flipped\.model: truncated or corrupted.*CRC"):
        Model.load(bad)


def test_empty_and_foreign_files(tmp_path):
    empty = tmp_path / "empty.model"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.model: empty file"):
        Model.load(empty)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt: not an nnfs_fast file"):
        Model.load(text)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, a=np.zeros(3))
    with pytest.raises(ValueError, match=r"foreign\.npz: a zip archive but not an nnfs_fast"):
        Model.load(foreign)
    with pytest.raises(ValueError, match=r"foreign\.npz: a zip archive but not an nnfs_fast"):
        _persistence.load_parameters(foreign)


def test_wrong_kind_version_and_description(tmp_path, saved, trained):
    parms = tmp_path / "m.parms"
    trained.save_parameters(parms)
    with pytest.raises(ValueError, match=r"m\.parms: holds nnfs_fast 'parameters', not model; "
                                         r"read it with model\.load_parameters"):
        Model.load(parms)
    with pytest.raises(ValueError, match=r"good\.model: holds nnfs_fast 'model'"):
        trained.load_parameters(saved)
    cases = {
        "newer.model": (lambda m: m.replace('"version": 1', '"version": 99'),
                        "newer nnfs_fast .format version 99"),
        "tag.model": (lambda m: m.replace('"format": "nnfs_fast"', '"format": "other"'),
                      "does not describe an nnfs_fast file"),
        "json.model": (lambda m: m[:-3], "truncated or corrupted"),
        "class.model": (lambda m: m.replace('"Layer_Dropout"', '"os.system"'),
                        "invalid model description: layers/2: not an allowed layers class"),
        "arg.model": (lambda m: m.replace('"binary"', '"evil"'),
                      r"invalid model description: accuracy \(Accuracy_Categorical\): "
                      r"arguments: expected \['binary'\], got \['evil'\]"),
        "slot.model": (lambda m: m.replace('"Loss_CategoricalCrossentropy"',
                                          '"Optimizer_SGD"'),
                       "not an allowed loss class"),
    }
    for name, (edit, message) in cases.items():
        _rewrite_meta(saved, tmp_path / name, edit)
        with pytest.raises(ValueError, match=rf"{name.replace('.', '[.]')}: .*{message}"):
            Model.load(tmp_path / name)


def test_missing_or_mismatched_arrays(tmp_path, saved):
    bad = tmp_path / "missing.model"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            if item.filename != "layers/3/weights.npy":
                zout.writestr(item, zin.read(item))
    with pytest.raises(ValueError, match=r"missing\.model: .*layers/3 \(Layer_Dense\): "
                                         r"missing arrays \['weights'\]"):
        Model.load(bad)
    odd = tmp_path / "odd.model"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(odd, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "layers/0/weight_cache.npy":
                with zout.open(item.filename, "w") as f:
                    np.lib.format.write_array(f, np.zeros((3, 3), np.float32))
                continue
            zout.writestr(item, data)
    with pytest.raises(ValueError, match=r"weight_cache has shape \(3, 3\), expected \(2, 16\)"):
        Model.load(odd)
    obj = tmp_path / "object.model"
    with zipfile.ZipFile(saved) as zin, zipfile.ZipFile(obj, "w") as zout:
        for item in zin.infolist():
            if item.filename == "layers/0/biases.npy":
                with zout.open(item.filename, "w") as f:
                    np.lib.format.write_array(f, np.array([{}], dtype=object))
                continue
            zout.writestr(item, zin.read(item))
    with pytest.raises(ValueError, match=r"object\.model: truncated or corrupted.*allow_pickle"):
        Model.load(obj)


# ------------------------------------------------------------------------------- atomicity

def test_failed_save_keeps_the_previous_file(tmp_path, saved, trained, monkeypatch):
    before = saved.read_bytes()

    def failing_write(fp, array, **kwargs):
        fp.write(b"\x93NUMPY partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", failing_write)
    with pytest.raises(OSError, match="No space left"):
        trained.save(saved)
    with pytest.raises(OSError, match="No space left"):
        trained.save_parameters(tmp_path / "new.parms")
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.model"]  # no temporary files left
    Model.load(saved)


def test_crash_mid_save_keeps_the_previous_file(tmp_path, saved):
    before = saved.read_bytes()
    code = f"""
import os, numpy as np
from nnfs_fast.model import Model
model = Model.load({str(saved)!r})
real = np.lib.format.write_array
calls = []
def dying_write(fp, array, **kwargs):
    calls.append(1)
    if len(calls) == 3:
        fp.write(b"half")
        os._exit(9)           # the process dies in the middle of the archive
    real(fp, array, **kwargs)
np.lib.format.write_array = dying_write
model.save({str(saved)!r})
"""
    result = run_python(code)
    assert result.returncode == 9, result.stderr
    assert saved.read_bytes() == before
    Model.load(saved)


# ---------------------------------------------------------------------- the book's pickles

# Minimal book classes (the book's attribute names), defined in __main__ as the book's
# chapter files do; Model.save / save_parameters are the book's (deepcopy, pop the
# intermediate values, pickle.dump).
BOOK_SCRIPT = r"""
import copy, pickle, sys
import numpy as np

class Layer_Input:
    def forward(self, inputs, training):
        self.output = inputs
class Layer_Dense:
    def __init__(self, n_inputs, n_neurons, weight_regularizer_l1=0, weight_regularizer_l2=0,
                 bias_regularizer_l1=0, bias_regularizer_l2=0):
        self.weights = (0.01 * np.random.randn(n_inputs, n_neurons)).astype(np.float32)
        self.biases = np.zeros((1, n_neurons), dtype=np.float32)
        self.weight_regularizer_l1 = weight_regularizer_l1
        self.weight_regularizer_l2 = weight_regularizer_l2
        self.bias_regularizer_l1 = bias_regularizer_l1
        self.bias_regularizer_l2 = bias_regularizer_l2
    def forward(self, inputs, training):
        self.inputs = inputs
        self.output = np.dot(inputs, self.weights) + self.biases
class Layer_Dropout:
    def __init__(self, rate):
        self.rate = 1 - rate
    def forward(self, inputs, training):
        self.inputs = inputs
        if not training:
            self.output = inputs.copy()
            return
        self.binary_mask = np.random.binomial(1, self.rate, size=inputs.shape) / self.rate
        self.output = inputs * self.binary_mask
class Activation_ReLU:
    def forward(self, inputs, training):
        self.inputs = inputs
        self.output = np.maximum(0, inputs)
class Activation_Softmax:
    def forward(self, inputs, training):
        self.inputs = inputs
        e = np.exp(inputs - np.max(inputs, axis=1, keepdims=True))
        self.output = e / np.sum(e, axis=1, keepdims=True)
class Activation_Linear:
    def forward(self, inputs, training):
        self.inputs = inputs
        self.output = inputs
class Loss:
    def remember_trainable_layers(self, trainable_layers):
        self.trainable_layers = trainable_layers
    def new_pass(self):
        self.accumulated_sum = 0
        self.accumulated_count = 0
class Loss_CategoricalCrossentropy(Loss):
    pass
class Loss_MeanSquaredError(Loss):
    pass
class Activation_Softmax_Loss_CategoricalCrossentropy:
    pass
class Optimizer_Adam:
    def __init__(self, learning_rate=0.001, decay=0., epsilon=1e-7, beta_1=0.9, beta_2=0.999):
        self.learning_rate = learning_rate
        self.current_learning_rate = learning_rate
        self.decay = decay
        self.iterations = 0
        self.epsilon = epsilon
        self.beta_1 = beta_1
        self.beta_2 = beta_2
class Accuracy:
    def new_pass(self):
        self.accumulated_sum = 0
        self.accumulated_count = 0
class Accuracy_Categorical(Accuracy):
    def __init__(self, *, binary=False):
        self.binary = binary
class Accuracy_Regression(Accuracy):
    def __init__(self):
        self.precision = None
class Model:
    def __init__(self):
        self.layers = []
        self.softmax_classifier_output = None
    def add(self, layer):
        self.layers.append(layer)
    def set(self, *, loss=None, optimizer=None, accuracy=None):
        self.loss, self.optimizer, self.accuracy = loss, optimizer, accuracy
    def finalize(self):
        self.input_layer = Layer_Input()
        self.trainable_layers = []
        for i, layer in enumerate(self.layers):
            layer.prev = self.layers[i - 1] if i > 0 else self.input_layer
            layer.next = self.layers[i + 1] if i < len(self.layers) - 1 else self.loss
            if hasattr(layer, 'weights'):
                self.trainable_layers.append(layer)
        self.output_layer_activation = self.layers[-1]
        self.loss.remember_trainable_layers(self.trainable_layers)
        if isinstance(self.layers[-1], Activation_Softmax) and \
                isinstance(self.loss, Loss_CategoricalCrossentropy):
            self.softmax_classifier_output = Activation_Softmax_Loss_CategoricalCrossentropy()
    def forward(self, X, training):
        self.input_layer.forward(X, training)
        for layer in self.layers:
            layer.forward(layer.prev.output, training)
        return layer.output
    def get_parameters(self):
        return [(layer.weights, layer.biases) for layer in self.trainable_layers]
    def save_parameters(self, path, protocol):
        with open(path, 'wb') as f:
            pickle.dump(self.get_parameters(), f, protocol=protocol)
    def save(self, path, protocol):
        model = copy.deepcopy(self)
        model.loss.new_pass()
        model.accuracy.new_pass()
        model.input_layer.__dict__.pop('output', None)
        model.loss.__dict__.pop('dinputs', None)
        for layer in model.layers:
            for property in ['inputs', 'output', 'dinputs', 'dweights', 'dbiases']:
                layer.__dict__.pop(property, None)
        with open(path, 'wb') as f:
            pickle.dump(model, f, protocol=protocol)

out, protocol = sys.argv[1], int(sys.argv[2])
np.random.seed(0)
X = np.random.randn(20, 2).astype(np.float32)
model = Model()
model.add(Layer_Dense(2, 8, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4))
model.add(Activation_ReLU())
model.add(Layer_Dropout(0.1))
model.add(Layer_Dense(8, 3))
model.add(Activation_Softmax())
model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(0.05, decay=5e-5),
          accuracy=Accuracy_Categorical())
model.finalize()
# pretend two training steps happened: biases, optimizer counters and Adam state on the layers
for layer in model.trainable_layers:
    layer.biases += np.float32(0.25)
    for name in ('weight_momentums', 'weight_cache'):
        setattr(layer, name, np.full_like(layer.weights, 0.5))
    for name in ('bias_momentums', 'bias_cache'):
        setattr(layer, name, np.full_like(layer.biases, 0.125))
model.optimizer.iterations = 2
model.optimizer.current_learning_rate = 0.05 * (1. / (1. + 5e-5 * 1))
model.forward(X, training=True)   # leaves inputs/outputs and a dropout mask on the layers
np.save(out + '/X.npy', X)
np.save(out + '/expected.npy', model.forward(X, training=False))
model.save(out + '/book.model', protocol)
model.save_parameters(out + '/book.parms', protocol)

regression = Model()
regression.add(Layer_Dense(1, 4))
regression.add(Activation_ReLU())
regression.add(Layer_Dense(4, 1))
regression.add(Activation_Linear())
regression.set(loss=Loss_MeanSquaredError(), optimizer=Optimizer_Adam(),
               accuracy=Accuracy_Regression())
regression.accuracy.precision = np.std(np.arange(10.)) / 250     # a NumPy float64 scalar
regression.finalize()
regression.save(out + '/regression.model', protocol)

class Evil:
    def __reduce__(self):
        import os
        return (os.system, ('touch ' + out + '/pwned',))
with open(out + '/evil.model', 'wb') as f:
    pickle.dump(Evil(), f, protocol=protocol)
"""


@pytest.fixture(scope="module", params=[0, 2, 4, 5], ids=lambda p: f"protocol{p}")
def book_files(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"book{request.param}")
    result = run_python(BOOK_SCRIPT.replace("sys.argv[1], int(sys.argv[2])",
                                            f"{str(out)!r}, {request.param}"))
    assert result.returncode == 0, result.stderr
    return out


def test_book_pickle_needs_the_opt_in(book_files):
    with pytest.raises(ValueError, match=r"book\.model: this is a pickle file.*"
                                         r"allow_pickle=True") if (
            book_files / "book.model").read_bytes()[:1] == b"\x80" else \
            pytest.raises(ValueError, match=r"book\.model: not an nnfs_fast file"):
        Model.load(book_files / "book.model")
    with pytest.raises(ValueError, match=r"book\.parms: "):
        _persistence.load_parameters(book_files / "book.parms")


def test_book_model_loads_with_allow_pickle(book_files):
    X = np.load(book_files / "X.npy")
    model = Model.load(book_files / "book.model", allow_pickle=True)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Layer_Dense", "Activation_ReLU", "Layer_Dropout", "Layer_Dense", "Activation_Softmax"]
    assert type(model.layers[0]) is Layer_Dense and type(model.layers[2]) is Layer_Dropout
    np.testing.assert_allclose(model.predict(X), np.load(book_files / "expected.npy"),
                               rtol=1e-5, atol=1e-7)
    assert model.layers[2].rate == 0.9
    assert model.layers[0].weight_regularizer_l2 == 5e-4
    assert model.softmax_classifier_output is not None
    assert model.optimizer.iterations == 2
    assert model.optimizer.current_learning_rate == 0.05 * (1. / (1. + 5e-5 * 1))
    assert model.optimizer.learning_rate == 0.05 and model.optimizer.decay == 5e-5
    np.testing.assert_array_equal(model.layers[3].bias_cache, np.full((1, 3), 0.125))
    assert model.layers[0].weight_momentums.dtype == np.float32
    assert type(model.accuracy) is Accuracy_Categorical and not model.accuracy.binary
    regression = Model.load(book_files / "regression.model", allow_pickle=True)
    assert regression.accuracy.precision == np.std(np.arange(10.)) / 250
    assert type(regression.layers[-1]) is Activation_Linear


def test_book_parameters_load_with_allow_pickle(book_files):
    params = _persistence.load_parameters(book_files / "book.parms", allow_pickle=True)
    book = Model.load(book_files / "book.model", allow_pickle=True)
    for (w, b), (w0, b0) in zip(params, book.get_parameters()):
        np.testing.assert_array_equal(w, w0)
        np.testing.assert_array_equal(b, b0)
    model = classifier()
    model.layers[0] = Layer_Dense(2, 8)  # same shapes as the book's model
    model.layers[3] = Layer_Dense(8, 3)
    model.finalize()
    model.load_parameters(book_files / "book.parms", allow_pickle=True)
    X = np.load(book_files / "X.npy")
    np.testing.assert_allclose(model.predict(X), np.load(book_files / "expected.npy"),
                               rtol=1e-5, atol=1e-7)


def test_other_pickles_are_refused(book_files, tmp_path):
    with pytest.raises(ValueError, match=r"evil\.model: could not read the book's pickle.*"
                                         r"system, which is not one of the book's classes"):
        Model.load(book_files / "evil.model", allow_pickle=True)
    assert not (book_files / "pwned").exists()
    wrong = tmp_path / "list.model"
    wrong.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match=r"list\.model: the pickle holds list"):
        Model.load(wrong, allow_pickle=True)
    with pytest.raises(ValueError, match=r"list\.model: not a parameter list"):
        _persistence.load_parameters(wrong, allow_pickle=True)
    data = (book_files / "book.model").read_bytes()
    cut = tmp_path / "cut.model"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.model: could not read the book's pickle"):
        Model.load(cut, allow_pickle=True)


def test_our_files_load_with_allow_pickle_too(tmp_path, spiral, trained):
    trained.save(tmp_path / "m.model")
    loaded = Model.load(tmp_path / "m.model", allow_pickle=True)
    np.testing.assert_array_equal(loaded.predict(spiral[0]), trained.predict(spiral[0]))
