"""Leaving and arriving: ONNX, PyTorch and safetensors (nnfs_fast.export, nnfs_fast.io.safetensors).

For the book's chapter 10 (spiral softmax), 16 (binary sigmoid), 17 (regression, linear) and
19-shaped (784-128-128-10) models, plus chapter 18's Dropout: ONNX Runtime and the torch module
compute Model.predict to float32 round-off; torch -> nnfs_fast -> torch keeps every parameter
bit for bit; safetensors files round-trip, move between nnfs_fast, the safetensors package and
torch's load_state_dict, and damaged ones are refused with ValueError; the book's optimizers
continue in torch.optim step for step; the DDP example runs. Tests that need an optional
package are skipped, with the reason, when it is missing (CI installs them all).
"""
import json
import os
import struct
import subprocess
import sys
import tracemalloc
import warnings
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run_python
from nnfs_fast import (
    Accuracy_Categorical,
    Accuracy_Regression,
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
    Layer_Dense,
    Layer_Dropout,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanSquaredError,
    Model,
    Optimizer_Adagrad,
    Optimizer_Adam,
    Optimizer_RMSprop,
    Optimizer_SGD,
    export,
)
from nnfs_fast.datasets import sine_data, spiral_data
from nnfs_fast.io import safetensors as safetensors_io

HAVE = {name: find_spec(name) is not None
        for name in ("onnx", "onnxruntime", "torch", "safetensors")}
needs_onnx = pytest.mark.skipif(not (HAVE["onnx"] and HAVE["onnxruntime"]), reason=(
    'onnx and onnxruntime are not installed (pip install "nnfs_fast[onnx]")'))
needs_torch = pytest.mark.skipif(not HAVE["torch"], reason=(
    'torch is not installed (pip install "nnfs_fast[torch]")'))
needs_safetensors = pytest.mark.skipif(not HAVE["safetensors"], reason=(
    'safetensors is not installed (pip install "nnfs_fast[safetensors]")'))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# ------------------------------------------------------------------------- the book's models

def book_model(name, seed=0):
    """(model, X): a chapter's architecture with trained-looking parameters (He-scaled
    weights, non-zero biases) and inputs of the chapter's kind."""
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    model = Model()
    if name in ("ch10", "ch18", "ch16"):
        classes = 2 if name == "ch16" else 3
        X, _ = spiral_data(50, classes)
        model.add(Layer_Dense(2, 64))
        model.add(Activation_ReLU())
        if name == "ch18":
            model.add(Layer_Dropout(0.1))
        model.add(Layer_Dense(64, 1 if name == "ch16" else 3))
        model.add(Activation_Sigmoid() if name == "ch16" else Activation_Softmax())
        model.set(loss=Loss_BinaryCrossentropy() if name == "ch16"
                  else Loss_CategoricalCrossentropy(),
                  accuracy=Accuracy_Categorical(binary=name == "ch16"))
    elif name == "ch17":
        X, _ = sine_data(200)
        for n_in, n_out in ((1, 64), (64, 64)):
            model.add(Layer_Dense(n_in, n_out))
            model.add(Activation_ReLU())
        model.add(Layer_Dense(64, 1))
        model.add(Activation_Linear())
        model.set(loss=Loss_MeanSquaredError(), accuracy=Accuracy_Regression())
    else:  # ch19: Fashion-MNIST's 784-128-128-10, inputs scaled to [-1, 1]
        X = rng.uniform(-1, 1, size=(64, 784)).astype(np.float32)
        for n_in, n_out in ((784, 128), (128, 128)):
            model.add(Layer_Dense(n_in, n_out))
            model.add(Activation_ReLU())
        model.add(Layer_Dense(128, 10))
        model.add(Activation_Softmax())
        model.set(loss=Loss_CategoricalCrossentropy(), accuracy=Accuracy_Categorical())
    model.set(optimizer=Optimizer_Adam())
    model.finalize()
    model.set_parameters([
        (rng.normal(0, np.sqrt(2 / w.shape[0]), w.shape), rng.normal(0, 0.1, b.shape))
        for w, b in model.get_parameters()])
    return model, np.asarray(X, dtype=np.float32)   # sine_data's X is float64


MODELS = ["ch10", "ch16", "ch17", "ch18", "ch19"]


def assert_roundoff(actual, expected, what):
    """Equal to float32 round-off: a few ulp of the largest output (every output here is a
    chain of float32 dot products of at most 784 terms, then an activation)."""
    assert actual.shape == expected.shape and actual.dtype == np.float32, what
    np.testing.assert_allclose(actual, expected, rtol=1e-5,
                               atol=1e-6 * max(1.0, float(np.abs(expected).max())),
                               err_msg=what)


# ------------------------------------------------------------------------------------ ONNX

@needs_onnx
@pytest.mark.parametrize("name", MODELS)
def test_onnx_runtime_equals_predict(name, tmp_path):
    import onnx
    import onnxruntime
    model, X = book_model(name)
    path = tmp_path / "model.onnx"
    proto = model.to_onnx(path)
    loaded = onnx.load(path)
    assert loaded == proto
    assert (loaded.ir_version, [(o.domain, o.version) for o in loaded.opset_import]) == \
        (7, [("", 13)])
    onnx.checker.check_model(loaded, full_check=True)
    dims = loaded.graph.input[0].type.tensor_type.shape.dim
    assert (dims[0].dim_param, dims[1].dim_value) == ("batch", X.shape[1])
    ops = [node.op_type for node in loaded.graph.node]
    expected_ops = {"ch10": ["Gemm", "Relu", "Gemm", "Softmax"],
                    "ch18": ["Gemm", "Relu", "Gemm", "Softmax"],        # Dropout omitted
                    "ch16": ["Gemm", "Relu", "Gemm", "Sigmoid"],
                    "ch17": ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Identity"],
                    "ch19": ["Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax"]}[name]
    assert ops == expected_ops
    # the book's (n_inputs, n_neurons) weights go in as they are (transB=0), biases 1-D
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in loaded.graph.initializer}
    for layer in model.trainable_layers:
        i = model.layers.index(layer)
        np.testing.assert_array_equal(initializers[f"layers.{i}.weights"], layer.weights)
        np.testing.assert_array_equal(initializers[f"layers.{i}.biases"], layer.biases[0])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rows in (slice(None), slice(0, 1), slice(3, 10)):   # the batch dimension is symbolic
        served = session.run(["output"], {"input": X[rows]})[0]
        assert_roundoff(served, model.predict(X[rows]), f"{name}, rows {rows}")


@needs_onnx
def test_onnx_refuses_what_it_cannot_export(tmp_path):
    class MyReLU(Activation_ReLU):
        pass
    model, _ = book_model("ch10")
    model.layers[1] = MyReLU()
    with pytest.raises(ValueError, match=r"to_onnx: model.layers\[1\] is a .*MyReLU, which "
                       "cannot be exported"):
        export.to_onnx(model, tmp_path / "x.onnx")
    model, _ = book_model("ch10")
    model.layers[2].weights = np.zeros((65, 3), np.float32)
    with pytest.raises(ValueError, match=r"layers\[2\] takes 65 inputs, but the Dense layer "
                       "before it has 64 outputs"):
        export.to_onnx(model, tmp_path / "x.onnx")
    assert not os.listdir(tmp_path)


# --------------------------------------------------------------------------------- PyTorch

@needs_torch
@pytest.mark.parametrize("name", MODELS)
def test_torch_module_equals_predict(name):
    import torch
    model, X = book_model(name)
    module = export.to_torch(model)
    assert not module.training
    names = [f"{model.layers.index(layer)}.{p}" for layer in model.trainable_layers
             for p in ("weight", "bias")]
    assert list(module.state_dict()) == names
    for layer in model.trainable_layers:   # bit for bit, transposed into (out, in)
        linear = module[model.layers.index(layer)]
        np.testing.assert_array_equal(linear.weight.detach().numpy(), layer.weights.T)
        np.testing.assert_array_equal(linear.bias.detach().numpy(), layer.biases[0])
    with torch.no_grad():
        output = module(torch.from_numpy(X)).numpy()
    assert_roundoff(output, model.predict(X), name)
    if name == "ch18":
        assert module[2].p == 0.1 and type(module[2]) is torch.nn.Dropout


def torch_sequential(name, seed=0):
    """A torch nn.Sequential of a chapter's shape (Linear modules where book_model has its
    Dense layers) with torch's own initialization."""
    import torch
    from torch import nn
    torch.manual_seed(seed)
    modules = {
        "ch10": lambda: [nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 3), nn.Softmax(dim=1)],
        "ch18": lambda: [nn.Linear(2, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 3),
                         nn.Dropout(0.25), nn.Softmax(dim=1)],
        "ch16": lambda: [nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 1), nn.Sigmoid()],
        "ch17": lambda: [nn.Linear(1, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 1), nn.Identity()],
        "ch19": lambda: [nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10), nn.Softmax(dim=1)],
    }[name]()
    return nn.Sequential(*modules).eval()


@needs_torch
@pytest.mark.parametrize("name", MODELS)
def test_torch_round_trip_keeps_every_bit(name):
    import torch
    sequential = torch_sequential(name)
    rng_state = np.random.get_state()
    model = export.from_torch(sequential)
    assert all(np.array_equal(a, b) for a, b in zip(rng_state, np.random.get_state())), \
        "from_torch changed NumPy's global RNG"
    back = export.to_torch(model)
    assert [type(m) for m in back] == [type(m) for m in sequential]
    before, after = sequential.state_dict(), back.state_dict()
    assert list(before) == list(after)
    for key in before:
        assert before[key].dtype == after[key].dtype == torch.float32
        assert torch.equal(before[key].view(torch.int32), after[key].view(torch.int32)), key
    for a, b in zip(sequential, back):
        if isinstance(a, torch.nn.Dropout):
            assert a.p == b.p
    n_in = sequential[0].in_features
    X = np.random.default_rng(1).uniform(-1, 1, (33, n_in)).astype(np.float32)
    with torch.no_grad():
        expected = sequential(torch.from_numpy(X)).numpy()
    assert_roundoff(model.predict(X), expected, name)


@needs_torch
def test_from_torch_refuses_other_modules():
    import torch
    from torch import nn
    cases = [
        (nn.Sequential(nn.Linear(2, 3), nn.Tanh()), r"module 1 \(Tanh\(\)\) is not supported"),
        (nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=0)),
         r"module 1 \(Softmax\(dim=0\)\): only a softmax over the features"),
        (nn.Sequential(nn.Sequential(nn.Linear(2, 3))),
         r"(?s)module 0 \(Sequential.*\) is not supported"),
        (nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 5)),
         r"module 1 .* takes 4 inputs, but the Linear module before it has 3 outputs"),
        (nn.Sequential(nn.Linear(2, 3), nn.Dropout(1.0)), r"module 1 \(Dropout.*rate"),
        (nn.Sequential(), "has no modules"),
    ]
    for sequential, message in cases:
        with pytest.raises(ValueError, match=message):
            export.from_torch(sequential)
    with pytest.raises(TypeError, match="expected a torch.nn.Sequential, got .*Linear"):
        export.from_torch(nn.Linear(2, 3))
    model = export.from_torch(nn.Sequential(nn.Linear(2, 3, bias=False, dtype=torch.float64)))
    assert model.layers[0].weights.dtype == np.float32 and not model.layers[0].biases.any()


@needs_torch
def test_save_torch_loads_without_arbitrary_code(tmp_path):
    import torch
    model, X = book_model("ch18")
    path = tmp_path / "model.pt"
    export.save_torch(model, path)
    module = export.load_torch(path)
    from torch import nn
    with torch.serialization.safe_globals([nn.Sequential, nn.Linear, nn.ReLU, nn.Sigmoid,
                                           nn.Softmax, nn.Dropout, nn.Identity]):
        plain = torch.load(path, weights_only=True)   # the recipe in save_torch's docstring
    with torch.no_grad():
        for m in (module, plain):
            assert_roundoff(m(torch.from_numpy(X)).numpy(), model.predict(X), "load_torch")
    torch.save({"not": "a module"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="holds a dict, not an nn.Sequential"):
        export.load_torch(tmp_path / "other.pt")


OPTIMIZERS = {
    "adam": lambda: Optimizer_Adam(learning_rate=0.05, decay=5e-3),
    "sgd": lambda: Optimizer_SGD(learning_rate=0.5, decay=1e-2),
    "sgd-momentum": lambda: Optimizer_SGD(learning_rate=0.5, momentum=0.9),
    "adagrad": lambda: Optimizer_Adagrad(learning_rate=0.5, decay=1e-2),
    "rmsprop": lambda: Optimizer_RMSprop(learning_rate=0.01, decay=1e-2, rho=0.95),
}


@needs_torch
@pytest.mark.parametrize("kind", OPTIMIZERS)
def test_torch_optimizer_continues_the_book_step_for_step(kind):
    """nnfs_fast trains 30 steps; then both nnfs_fast and torch (from the exported module and
    optimizer state) take 20 more: the same losses and parameters to float32 round-off."""
    import torch
    np.random.seed(0)
    X, y = spiral_data(100, 3)
    model = Model()
    for layer in (Layer_Dense(2, 64), Activation_ReLU(), Layer_Dense(64, 3),
                  Activation_Softmax()):
        model.add(layer)
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=OPTIMIZERS[kind](),
              accuracy=Accuracy_Categorical())
    model.finalize()
    model.train(X, y, epochs=30, verbose=False)
    net = export.to_torch(model)[:-1]        # logits for CrossEntropyLoss
    optimizer, scheduler = export.to_torch_optimizer(model, net)
    book_losses = model.train(X, y, epochs=20, verbose=False)["loss"]
    inputs, targets = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    torch_losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(inputs), targets)
        loss.backward()
        optimizer.step()
        scheduler.step()
        torch_losses.append(loss.item())
    np.testing.assert_allclose(torch_losses, book_losses, rtol=2e-6)
    for i in (0, 2):
        np.testing.assert_allclose(net[i].weight.detach().numpy(), model.layers[i].weights.T,
                                   rtol=1e-4, atol=1e-5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(
        model.optimizer.learning_rate / (1 + model.optimizer.decay * 50))


@needs_torch
def test_torch_optimizer_refuses_what_torch_cannot_do():
    model, _ = book_model("ch10")
    model.set(optimizer=Optimizer_SGD(momentum=0.9, decay=1e-3))
    with pytest.raises(ValueError, match="momentum and decay has no torch.optim equivalent"):
        export.to_torch_optimizer(model, export.to_torch(model))
    model.set(optimizer=Optimizer_Adam())
    module = export.to_torch(model)
    with pytest.raises(ValueError, match=r"no Linear \(3, 64\) named 2"):
        export.to_torch_optimizer(model, module[:2])


# ---------------------------------------------------------------------- optional packages

def test_core_imports_no_optional_package():
    code = ("import sys, numpy as np, nnfs_fast\n"
            "from nnfs_fast import export, cli\nfrom nnfs_fast.io import safetensors\n"
            "m = nnfs_fast.Model(); m.add(nnfs_fast.Layer_Dense(2, 3)); m.finalize()\n"
            "print(sorted(n for n in ('torch', 'onnx', 'onnxruntime', 'safetensors') "
            "if n in sys.modules))")
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("function, package, extra", [
    ("to_onnx", "onnx", "onnx"), ("to_torch", "torch", "torch"),
    ("from_torch", "torch", "torch"), ("save_torch", "torch", "torch")])
def test_missing_extra_says_what_to_install(function, package, extra, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, package, None)   # "import package" raises ImportError
    model, _ = book_model("ch10")
    args = {"to_onnx": (model, tmp_path / "m"), "to_torch": (model,),
            "from_torch": (None,), "save_torch": (model, tmp_path / "m")}[function]
    with pytest.raises(ImportError, match=rf'{function} needs {package}, which is not '
                       rf'installed: pip install "nnfs_fast\[{extra}\]"'):
        getattr(export, function)(*args)


# ----------------------------------------------------------------------------- safetensors

@pytest.mark.parametrize("name", MODELS)
def test_safetensors_parameters_round_trip(name, tmp_path):
    model, X = book_model(name)
    path = tmp_path / "weights.safetensors"
    model.save_parameters(path)
    other, _ = book_model(name, seed=1)
    other.load_parameters(path)
    for (w0, b0), (w1, b1) in zip(model.get_parameters(), other.get_parameters()):
        assert w1.dtype == b1.dtype == np.float32 and w1.flags.c_contiguous
        assert w0.tobytes() == w1.tobytes() and b0.tobytes() == b1.tobytes()
    np.testing.assert_array_equal(other.predict(X), model.predict(X))
    arrays, metadata = safetensors_io.read(path)
    layer_index = model.layers.index(model.trainable_layers[-1])
    assert metadata == {"format": "pt"}
    np.testing.assert_array_equal(arrays[f"{layer_index}.weight"],
                                  model.trainable_layers[-1].weights.T)
    renamed = tmp_path / "weights.bin"      # recognized by its content as well
    os.rename(path, renamed)
    other.load_parameters(renamed)


@needs_safetensors
@needs_torch
@pytest.mark.parametrize("name", ["ch18", "ch19"])
def test_safetensors_files_move_between_nnfs_fast_and_torch(name, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file
    model, X = book_model(name)
    path = tmp_path / "from_nnfs.safetensors"
    model.save_parameters(path)
    module = torch_sequential(name, seed=3)
    module.load_state_dict(load_file(path))                    # strict: the same names
    with torch.no_grad():
        assert_roundoff(module(torch.from_numpy(X)).numpy(), model.predict(X), name)
    module = torch_sequential(name, seed=4)
    save_file(module.state_dict(), tmp_path / "from_torch.safetensors")
    model.load_parameters(tmp_path / "from_torch.safetensors")
    for layer in model.trainable_layers:
        linear = module[model.layers.index(layer)]
        assert layer.weights.tobytes() == np.ascontiguousarray(
            linear.weight.detach().numpy().T).tobytes()
        assert layer.biases.tobytes() == linear.bias.detach().numpy().tobytes()


ALL_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
              "I32": np.int32, "I16": np.int16, "I8": np.int8, "U64": np.uint64,
              "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_}


def sample_arrays(rng):
    arrays = {f"t_{code}": (rng.normal(size=(3, 5)) if code[0] == "F"
                            else rng.integers(0, 100, size=(3, 5))).astype(dtype)
              for code, dtype in ALL_DTYPES.items()}
    arrays.update(scalar=np.array(2.5), empty=np.zeros((0, 4), np.float32),
                  wide=rng.normal(size=(2, 3, 4)).astype(np.float32))
    arrays["big_endian"] = np.arange(6, dtype=">i4").reshape(2, 3)
    return arrays


@needs_safetensors
def test_safetensors_interop_with_the_reference_package(tmp_path):
    from safetensors.numpy import load_file, save_file
    arrays = sample_arrays(np.random.default_rng(0))
    ours = tmp_path / "ours.safetensors"
    safetensors_io.write(ours, arrays, {"who": "nnfs_fast"})
    theirs = load_file(ours)
    assert set(theirs) == set(arrays)
    for name, array in arrays.items():
        assert theirs[name].dtype == array.dtype.newbyteorder("=")
        np.testing.assert_array_equal(theirs[name], array)
    native = {k: v.astype(v.dtype.newbyteorder("=")) for k, v in arrays.items()}
    save_file(native, tmp_path / "theirs.safetensors", metadata={"a": "b"})
    read, metadata = safetensors_io.read(tmp_path / "theirs.safetensors")
    assert metadata == {"a": "b"} and set(read) == set(arrays)
    for name, array in native.items():
        assert read[name].dtype == array.dtype and read[name].flags.writeable
        np.testing.assert_array_equal(read[name], array)


@needs_safetensors
@needs_torch
def test_bfloat16_is_read_exactly(tmp_path):
    import torch
    from safetensors.torch import save_file
    tensor = torch.randn(4, 6).to(torch.bfloat16)
    save_file({"0.weight": tensor, "0.bias": torch.zeros(4, dtype=torch.bfloat16)},
              tmp_path / "bf16.safetensors")
    arrays, _ = safetensors_io.read(tmp_path / "bf16.safetensors")
    np.testing.assert_array_equal(arrays["0.weight"], tensor.float().numpy())
    [(weights, biases)] = safetensors_io.load_parameters(tmp_path / "bf16.safetensors")
    assert weights.shape == (6, 4) and biases.shape == (1, 4)


def valid_file(tensors=None):
    """Bytes of a small valid safetensors file and its header, to damage."""
    tensors = tensors or {"0.weight": np.arange(6, dtype=np.float32).reshape(3, 2),
                          "0.bias": np.ones(3, np.float32)}
    header, data = {}, b""
    for name, array in tensors.items():
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [len(data), len(data) + array.nbytes]}
        data += array.tobytes()
    return header, data


def encode(header, data, header_bytes=None):
    text = header_bytes if header_bytes is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def damaged_files():
    header, data = valid_file()

    def edit(name, **changes):
        h = json.loads(json.dumps(header))
        h[name].update(changes)
        return encode(h, data)

    return {
        "empty": (b"", "shorter than the 8-byte header length"),
        "short": (b"\x10\x00\x00", "shorter than the 8-byte header length"),
        "header beyond the file": (struct.pack("<Q", 10 ** 6) + b"{}",
                                   "header length says 1000000 bytes, but 2 bytes follow"),
        "huge header length": (struct.pack("<Q", 2 ** 63) + b"{}", "header length says"),
        "not JSON": (encode(None, data, b"{nope" + b" " * 3), "corrupted safetensors header"),
        "not an object": (encode(None, b"", b"[1, 2]  "), r"does not start with '\{'"),
        "bad UTF-8": (encode(None, b"", b'{"\xff": 1}'), "corrupted safetensors header"),
        "duplicate names": (encode(None, data, (
            b'{"a": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]}, '
            b'"a": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]}}')),
            r"duplicate names \['a'\]"),
        "unknown dtype": (edit("0.bias", dtype="F8_E4M3"), "dtype 'F8_E4M3'"),
        "dtype not a string": (edit("0.bias", dtype=["F32"]), r"dtype \['F32'\]"),
        "negative dim": (edit("0.bias", shape=[-3]), "not a list of ints >= 0"),
        "float dim": (edit("0.bias", shape=[3.0]), "not a list of ints >= 0"),
        "bool dim": (edit("0.bias", shape=[True, 3]), "not a list of ints >= 0"),
        "shape not a list": (edit("0.bias", shape=3), "not a list of ints >= 0"),
        "size mismatch": (edit("0.bias", shape=[4]), r"takes 16 bytes, but its data_offsets "
                          r"\[24, 36\] span 12"),
        "huge shape": (edit("0.bias", shape=[2 ** 40, 2 ** 40]), "takes more than 36 bytes"),
        "offsets reversed": (edit("0.bias", data_offsets=[36, 24]), "0 <= begin <= end"),
        "offsets out of range": (edit("0.bias", data_offsets=[24, 40]),
                                 "beyond the 36 bytes of data"),
        "overlap": (edit("0.bias", data_offsets=[20, 32]), "overlaps the tensor before it"),
        "gap": (encode(header, data + b"\0" * 4), r"end at byte 36 .* 40 bytes .*trailing"),
        "hole": (edit("0.weight", data_offsets=[4, 28]), "starts at byte 4 of the data, "
                 "expected 0 .*a gap"),
        "missing key": (encode({"a": {"dtype": "F32", "shape": []}}, b""), "must be"),
        "bad metadata": (encode({"__metadata__": {"a": 1}}, b""), "must map strings"),
        "truncated data": (encode(header, data[:-1]), "beyond the 35 bytes of data"),
        "deep JSON": (encode(None, b"", b'{"a": ' + b"[" * 100000 + b"]" * 100000 + b"}"),
                      "corrupted safetensors header"),
    }


DAMAGED = damaged_files()


@pytest.mark.parametrize("case", DAMAGED)
def test_damaged_safetensors_files_are_refused(case, tmp_path):
    content, message = DAMAGED[case]
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        safetensors_io.read(path)
    assert str(info.value).startswith(f"{path}: ")
    with pytest.raises(ValueError):
        Model.load_parameters(book_model("ch10")[0], path)


@needs_safetensors
@pytest.mark.parametrize("case", DAMAGED)
def test_the_reference_package_refuses_them_too(case):
    """Our refusals are not stricter than the format: the reference refuses each file too
    (duplicate names included, which it may take silently -- then it must lose a tensor)."""
    from safetensors.numpy import load
    content = DAMAGED[case][0]
    try:
        loaded = load(content)
    except Exception:
        return
    assert case == "duplicate names" and len(loaded) == 1


def test_every_truncation_is_refused(tmp_path):
    header, data = valid_file()
    content = encode(header, data)
    path = tmp_path / "cut.safetensors"
    for size in range(len(content)):
        path.write_bytes(content[:size])
        with pytest.raises(ValueError):
            safetensors_io.read(path)


def test_non_regular_files_are_refused(tmp_path):
    with pytest.raises(ValueError, match="not a regular file"):
        safetensors_io.read(tmp_path)
    if hasattr(os, "mkfifo"):       # a named pipe would block a plain open() forever
        fifo = tmp_path / "pipe.safetensors"
        os.mkfifo(fifo)
        with pytest.raises(ValueError, match="not a regular file"):
            safetensors_io.read(fifo)
        with pytest.raises(ValueError, match="not a regular file"):
            Model.load_parameters(book_model("ch10")[0], fifo)


def test_reading_never_allocates_more_than_the_file(tmp_path):
    """A header may claim any sizes; nothing is allocated before they are checked, and what
    is allocated is the data actually in the file."""
    n = 1 << 20
    header = {"big": {"dtype": "F64", "shape": [n], "data_offsets": [0, 8 * n]}}
    (tmp_path / "liar.safetensors").write_bytes(encode(header, b"\0" * 64))
    (tmp_path / "true.safetensors").write_bytes(encode(header, b"\0" * (8 * n)))
    tracemalloc.start()
    try:
        with pytest.raises(ValueError):
            safetensors_io.read(tmp_path / "liar.safetensors")
        peak_refused = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        arrays, _ = safetensors_io.read(tmp_path / "true.safetensors")
        peak_read = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_refused < 100_000
    assert arrays["big"].nbytes <= peak_read < 8 * n + 100_000


def test_parameter_files_need_torch_names(tmp_path):
    path = tmp_path / "p.safetensors"
    cases = [
        ({"layer0.weight": np.ones((3, 2), np.float32)}, r"tensor 'layer0.weight' is not a "
         r"parameter .*expected names such as '0.weight'"),
        ({"0.weight": np.ones((3, 2), np.float32)}, "0.bias is missing"),
        ({"0.weight": np.ones((3, 2), np.float32), "0.bias": np.ones(2, np.float32)},
         r"0.weight of shape \(3, 2\) and 0.bias of shape \(2,\)"),
        ({"0.weight": np.ones((3, 2), np.int32), "0.bias": np.ones(3, np.float32)},
         "has dtype int32, expected floats"),
    ]
    for arrays, message in cases:
        safetensors_io.write(path, arrays)
        with pytest.raises(ValueError, match=message):
            safetensors_io.load_parameters(path)
    model, _ = book_model("ch10")
    safetensors_io.write(path, {"0.weight": np.ones((3, 2), np.float32),
                                "0.bias": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match="expected 2 .weights, biases. pairs"):
        model.load_parameters(path)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_headers_agree_with_the_reference(data, tmp_path):
    """Random headers over random data: we raise ValueError or return arrays, and (when the
    safetensors package is installed) accept exactly what the reference accepts, with the
    same content."""
    dtype = st.sampled_from(["F32", "F64", "I8", "U16", "BOOL", "X9", 3])
    dim = st.integers(-1, 4)
    entry = st.fixed_dictionaries({"dtype": dtype, "shape": st.lists(dim, max_size=3),
                                   "data_offsets": st.lists(st.integers(-1, 40), min_size=2,
                                                            max_size=2)})
    header = data.draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), entry, max_size=3))
    payload = data.draw(st.binary(max_size=48))
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(encode(header, payload))
    try:
        ours, _ = safetensors_io.read(path)
    except ValueError:
        ours = None
    assert ours is None or sum(a.nbytes for a in ours.values()) <= len(payload)
    if HAVE["safetensors"]:
        from safetensors.numpy import load
        try:
            theirs = load(path.read_bytes())
        except Exception:
            theirs = None
        assert (ours is None) == (theirs is None), (header, len(payload), theirs)
        if ours is not None:
            for name in ours:
                np.testing.assert_array_equal(ours[name], theirs[name])


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(0, 255)), max_size=4),
       cut=st.integers(0, 10 ** 6), tail=st.binary(max_size=8))
def test_fuzzed_bytes_are_refused_or_read_as_the_reference_reads_them(edits, cut, tail,
                                                                      tmp_path):
    """Byte edits, truncations and appended bytes on a valid file."""
    content = bytearray(encode(*valid_file()))
    for position, value in edits:
        content[position % len(content)] = value
    content = bytes(content[:len(content) - cut % 8]) + tail
    path = tmp_path / "fuzz.safetensors"
    path.write_bytes(content)
    try:
        ours = safetensors_io.read(path)[0]
    except ValueError:
        ours = None
    if HAVE["safetensors"]:
        from safetensors.numpy import load
        try:
            theirs = load(content)
        except Exception:
            theirs = None
        assert (ours is None) == (theirs is None)
        for name in ours or {}:
            assert ours[name].tobytes() == theirs[name].tobytes()


# ---------------------------------------------------------------------------- command line

@needs_onnx
@needs_torch
def test_command_line_export(tmp_path):
    import onnxruntime
    model, X = book_model("ch18")
    model.save(tmp_path / "m.model")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "nnfs_fast", *map(str, args)],
                              capture_output=True, text=True, timeout=120)
    result = cli("export", tmp_path / "m.model", "--onnx", tmp_path / "m.onnx",
                 "--torch", tmp_path / "m.pt", "--safetensors", tmp_path / "m.safetensors")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"saved the ONNX model to {tmp_path / 'm.onnx'}",
        f"saved the torch nn.Sequential to {tmp_path / 'm.pt'}",
        f"saved the parameters (safetensors) to {tmp_path / 'm.safetensors'}"]
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    assert_roundoff(session.run(None, {"input": X})[0], model.predict(X), "cli onnx")
    export.load_torch(tmp_path / "m.pt")
    assert len(safetensors_io.load_parameters(tmp_path / "m.safetensors")) == 2
    for args, message in [
        ((), "give at least one of --onnx FILE"),
        (("--safetensors", tmp_path / "w.bin"), "the name must end in .safetensors"),
        (("--onnx", tmp_path / "nowhere" / "m.onnx"), "does not exist"),
    ]:
        result = cli("export", tmp_path / "m.model", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_command_line_export_names_the_missing_extra(tmp_path):
    model, _ = book_model("ch10")
    model.save(tmp_path / "m.model")
    code = ("import sys; sys.modules['onnx'] = None\n"
            "from nnfs_fast.cli import main\n"
            f"sys.exit(main(['export', {str(tmp_path / 'm.model')!r}, '--onnx', "
            f"{str(tmp_path / 'm.onnx')!r}]))")
    result = run_python(code)
    assert result.returncode == 2
    assert 'to_onnx needs onnx, which is not installed: pip install "nnfs_fast[onnx]"' in \
        result.stderr
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------------------- the example

def torch_teardown_abort(result):
    """True when the DDP example failed only in torch's teardown: every DDP line printed, then
    a process died of SIGABRT with the C++ runtime's 'terminate called' message."""
    return (result.returncode != 0
            and "torch DDP after" in result.stdout
            and "terminate called without an active exception" in result.stderr
            and "terminated with signal SIGABRT" in result.stderr)


def test_torch_teardown_abort_is_recognised_narrowly():
    done = "nnfs_fast after 200 epochs: loss 0.481617\ntorch DDP after 100 epochs on 2 " \
           "processes: loss 0.353233\n"
    abort = ("terminate called without an active exception\n"
             "torch.multiprocessing.spawn.ProcessExitedException: process 1 terminated with "
             "signal SIGABRT\n")
    seen_in_ci = subprocess.CompletedProcess([], 1, done, abort)
    assert torch_teardown_abort(seen_in_ci)
    for other in [subprocess.CompletedProcess([], 0, done, abort),           # it passed
                  subprocess.CompletedProcess([], 1, done[:42], abort),      # died mid-work
                  subprocess.CompletedProcess([], 1, done, "Traceback ... AssertionError"),
                  subprocess.CompletedProcess([], 1, done, abort.replace("SIGABRT", "SIGSEGV"))]:
        assert not torch_teardown_abort(other)


@pytest.mark.slow
@needs_onnx
@needs_torch
@needs_safetensors
@pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ not in this tree")
def test_ddp_example_continues_where_nnfs_fast_stopped():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    command = [sys.executable, str(EXAMPLES / "continue_in_pytorch_ddp.py"), "--quick"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    if torch_teardown_abort(result):
        # CI saw this once (2026-11-29): a DDP process aborted in torch's own teardown after
        # every line of its work had printed; 38 local runs, quiet and loaded, never did.
        # One more run, which must pass; any other failure fails at once.
        warnings.warn("torch DDP aborted in its teardown; running the example again:\n"
                      + result.stderr[-2000:], stacklevel=2)
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    values = {}
    for line in result.stdout.splitlines():
        key, _, rest = line.partition(": ")
        values[key] = rest
    loss = {key: float(rest.split("loss ")[1].split()[0].rstrip(","))
            for key, rest in values.items() if "loss " in rest}
    left = loss["nnfs_fast after 200 epochs"]
    assert loss["torch DDP epoch 1"] == pytest.approx(left, rel=1e-5)   # where it stopped
    assert loss["torch DDP epoch 50"] < left
    final = loss["torch DDP after 100 epochs on 2 processes"]
    assert final < loss["torch DDP epoch 50"]
    assert loss["back in nnfs_fast"] == pytest.approx(final, rel=1e-5)
    assert float(values["ONNX Runtime"].split("Model.predict| ")[1]) < 1e-5
