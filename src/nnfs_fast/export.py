"""Leave and arrive: a Model as ONNX, as a PyTorch ``nn.Sequential`` (and back), and the
book's optimizer continued in ``torch.optim``. Safetensors parameter files are in
``nnfs_fast.io.safetensors`` (``Model.save_parameters("weights.safetensors")``).

Each function imports its optional package when called; a missing one raises ImportError
naming the extra to install (``pip install "nnfs_fast[onnx]"``, ``"nnfs_fast[torch]"``).
Supported layers: ``Layer_Dense``, ``Layer_Dropout``, ``Activation_ReLU``,
``Activation_Sigmoid``, ``Activation_Softmax`` and ``Activation_Linear`` (exact classes: a
subclass may compute something else); anything else is refused with a ValueError naming it.

Layer by layer (``model.layers[i]``):

==================  ===============================  =========================================
nnfs_fast           ONNX (opset 13, IR 7)             PyTorch (module ``str(i)``)
==================  ===============================  =========================================
Layer_Dense         ``Gemm(x, W, b)``, W the book's   ``nn.Linear``: weight = W.T (out, in),
                    (n_inputs, n_neurons) as it is,   bias = b (out,); state_dict names
                    transB=0; b 1-D (n_neurons,)      ``"{i}.weight"``, ``"{i}.bias"``
Layer_Dropout       omitted (inference graph)         ``nn.Dropout(p=1 - layer.rate)``
                                                      (to 12 digits: the drop rate)
Activation_ReLU     ``Relu``                          ``nn.ReLU()``
Activation_Sigmoid  ``Sigmoid``                       ``nn.Sigmoid()``
Activation_Softmax  ``Softmax(axis=1)``               ``nn.Softmax(dim=1)``
Activation_Linear   ``Identity``                      ``nn.Identity()``
==================  ===============================  =========================================

So the ONNX graph and the torch module compute ``Model.predict``: class probabilities for a
softmax output, per-output probabilities of the positive class for a binary (sigmoid) output
(predict class 1 where > 0.5, as ``Activation_Sigmoid.predictions`` does), and the values
themselves for a regression (linear) output. The ONNX graph has one float32 input ``"input"``
of shape (batch, n_inputs) with a symbolic batch dimension and one output ``"output"`` of
shape (batch, n_outputs).
"""
import importlib

import numpy as np

from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.layers import Layer_Dense, Layer_Dropout

OPSET = 13        # ONNX operator set: Softmax(axis) with today's semantics; widely supported
IR_VERSION = 7    # the IR of opset 13; onnx's make_model would stamp the newest, which older
#                   ONNX Runtimes refuse to load
_KINDS = {Layer_Dense: "dense", Layer_Dropout: "dropout", Activation_ReLU: "relu",
          Activation_Sigmoid: "sigmoid", Activation_Softmax: "softmax",
          Activation_Linear: "linear"}
_ONNX_OPS = {"relu": "Relu", "sigmoid": "Sigmoid", "softmax": "Softmax", "linear": "Identity"}


def _require(module, extra, feature):
    """``importlib.import_module(module)``, or an ImportError saying which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(f"{feature} needs {package}, which is not installed: "
                          f'pip install "nnfs_fast[{extra}]"') from exc


def _stack(model, where):
    """[(i, kind, layer, (weights (n_in, n_out), biases (n_out,)) or None)] for
    ``model.layers``, after checking that every layer is supported and the Dense widths
    chain. Parameters are float32 copies."""
    layer_list = getattr(model, "layers", None)
    if not isinstance(layer_list, list) or not layer_list:
        raise ValueError(f"{where}: expected a Model with layers, got {type(model).__name__}"
                         + (" without layers" if isinstance(layer_list, list) else ""))
    stack, width = [], None
    for i, layer in enumerate(layer_list):
        kind = _KINDS.get(type(layer))
        if kind is None:
            raise ValueError(
                f"{where}: model.layers[{i}] is a {type(layer).__module__}."
                f"{type(layer).__qualname__}, which cannot be exported (supported: "
                f"{', '.join(cls.__name__ for cls in _KINDS)})")
        params = None
        if kind == "dense":
            weights = np.array(layer.weights, dtype=np.float32, order="C")
            biases = np.array(layer.biases, dtype=np.float32).reshape(-1)
            if weights.ndim != 2 or biases.shape != weights.shape[1:]:
                raise ValueError(f"{where}: model.layers[{i}] has weights of shape "
                                 f"{weights.shape} and biases of shape "
                                 f"{np.shape(layer.biases)}")
            if width is not None and weights.shape[0] != width:
                raise ValueError(f"{where}: model.layers[{i}] takes {weights.shape[0]} inputs, "
                                 f"but the Dense layer before it has {width} outputs")
            width = weights.shape[1]
            params = (weights, biases)
        stack.append((i, kind, layer, params))
    if width is None:
        raise ValueError(f"{where}: the model has no Layer_Dense, so its number of inputs is "
                         "unknown")
    return stack


# ------------------------------------------------------------------------------------ ONNX

def to_onnx(model, path):
    """Write ``model`` as an ONNX file (opset 13, IR version 7) and return the checked
    ``onnx.ModelProto``. See the module docstring for the graph; written atomically.

    Input ``"input"``: (batch, n_inputs) float32. Output ``"output"``: (batch, n_outputs)
    float32, equal to ``model.predict(input)`` to float32 round-off. Needs
    ``pip install "nnfs_fast[onnx]"``."""
    onnx = _require("onnx", "onnx", "to_onnx")
    from onnx import TensorProto, helper, numpy_helper

    import nnfs_fast
    from nnfs_fast.io.atomic import atomic_write
    stack = _stack(model, "to_onnx")
    nodes, initializers, current, n_outputs = [], [], "input", None
    for i, kind, _, params in stack:
        if kind == "dropout":  # the identity at inference
            continue
        output = f"layers.{i}.output"
        if kind == "dense":
            weights, biases = params
            names = [f"layers.{i}.weights", f"layers.{i}.biases"]
            initializers += [numpy_helper.from_array(weights, names[0]),
                             numpy_helper.from_array(biases, names[1])]
            nodes.append(helper.make_node("Gemm", [current, *names], [output],
                                          name=f"layers.{i}", transB=0))
            n_outputs = weights.shape[1]
        else:
            nodes.append(helper.make_node(_ONNX_OPS[kind], [current], [output],
                                          name=f"layers.{i}",
                                          **({"axis": 1} if kind == "softmax" else {})))
        current = output
    nodes[-1].output[0] = "output"
    n_inputs = next(params for _, kind, _, params in stack if kind == "dense")[0].shape[0]
    graph = helper.make_graph(
        nodes, "nnfs_fast_model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", n_inputs])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", n_outputs])],
        initializer=initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              ir_version=IR_VERSION, producer_name="nnfs_fast",
                              producer_version=nnfs_fast.__version__,
                              doc_string=" -> ".join(type(s[2]).__name__ for s in stack))
    onnx.checker.check_model(proto, full_check=True)
    data = proto.SerializeToString()
    atomic_write(path, lambda f: f.write(data))
    return proto


# --------------------------------------------------------------------------------- PyTorch

def to_torch(model):
    """``model`` as a ``torch.nn.Sequential`` (one module per layer, see the module
    docstring), float32, in eval mode (call ``.train()`` to train it: Dropout then drops).

    Its output equals ``model.predict`` to float32 round-off, and its parameters are the
    model's bit for bit (weights transposed into torch's (out, in)). Needs
    ``pip install "nnfs_fast[torch]"``."""
    torch = _require("torch", "torch", "to_torch")
    nn = torch.nn
    modules = []
    for _, kind, layer, params in _stack(model, "to_torch"):
        if kind == "dense":
            weights, biases = params
            # skip_init: no random initialization (torch's global RNG is left untouched)
            linear = nn.utils.skip_init(nn.Linear, *weights.shape)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(weights.T)))
                linear.bias.copy_(torch.from_numpy(biases))
            modules.append(linear)
        elif kind == "dropout":
            # 1 - rate (the keep probability) to 12 digits, as Layer_Dropout's repr shows
            # it: 0.1, not 1 - 0.9 = 0.09999999999999998
            modules.append(nn.Dropout(p=float(f"{1 - layer.rate:.12g}")))
        elif kind == "softmax":
            modules.append(nn.Softmax(dim=1))
        else:
            modules.append({"relu": nn.ReLU, "sigmoid": nn.Sigmoid,
                            "linear": nn.Identity}[kind]())
    return nn.Sequential(*modules).eval()


def from_torch(sequential):
    """A finalized ``Model`` with the layers of a ``torch.nn.Sequential`` of ``Linear``,
    ``ReLU``, ``Sigmoid``, ``Softmax`` (dim 1, -1 or None), ``Dropout`` and ``Identity``
    modules (exact classes; anything else raises ValueError naming the module).

    float32 parameters come over bit for bit (weights transposed into the book's
    (n_inputs, n_neurons)); other float dtypes are converted to float32; a Linear without
    bias gets zero biases. No loss, optimizer or accuracy is set: call ``model.set(...)``
    then ``model.finalize()`` to train or evaluate. NumPy's global RNG is left untouched.
    Needs ``pip install "nnfs_fast[torch]"``."""
    torch = _require("torch", "torch", "from_torch")
    from nnfs_fast.model import Model
    nn = torch.nn
    if not isinstance(sequential, nn.Sequential):
        raise TypeError(f"from_torch: expected a torch.nn.Sequential, got "
                        f"{type(sequential).__module__}.{type(sequential).__qualname__}")
    if len(sequential) == 0:
        raise ValueError("from_torch: the nn.Sequential has no modules")
    simple = {nn.ReLU: Activation_ReLU, nn.Sigmoid: Activation_Sigmoid,
              nn.Identity: Activation_Linear}
    rng_state = np.random.get_state()  # Layer_Dense draws weights that are then replaced
    try:
        model, width = Model(), None
        for name, module in sequential.named_children():
            where = f"from_torch: module {name} ({module!r})"
            if type(module) is nn.Linear:
                weight = _numpy32(module.weight, torch)
                bias = np.zeros(weight.shape[0], np.float32) if module.bias is None \
                    else _numpy32(module.bias, torch)
                if width is not None and weight.shape[1] != width:
                    raise ValueError(f"{where} takes {weight.shape[1]} inputs, but the Linear "
                                     f"module before it has {width} outputs")
                width = weight.shape[0]
                layer = Layer_Dense(weight.shape[1], weight.shape[0])
                layer.weights = np.ascontiguousarray(weight.T)
                layer.biases = bias.reshape(1, -1)
            elif type(module) is nn.Dropout:
                try:
                    layer = Layer_Dropout(module.p)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"{where}: {exc}") from None
            elif type(module) is nn.Softmax:
                if module.dim not in (1, -1, None):
                    raise ValueError(f"{where}: only a softmax over the features (dim=1) has "
                                     f"an nnfs_fast equivalent, got dim={module.dim}")
                layer = Activation_Softmax()
            elif type(module) in simple:
                layer = simple[type(module)]()
            else:
                raise ValueError(f"{where} is not supported; an nn.Sequential of Linear, "
                                 "ReLU, Sigmoid, Softmax(dim=1), Dropout and Identity "
                                 "modules is")
            model.add(layer)
        model.finalize()
    finally:
        np.random.set_state(rng_state)
    return model


def _numpy32(tensor, torch):
    """A C-contiguous float32 NumPy copy of a floating-point parameter."""
    if not tensor.is_floating_point():
        raise ValueError(f"from_torch: parameters must be floating point, got {tensor.dtype}")
    return np.array(tensor.detach().to(device="cpu", dtype=torch.float32).numpy(), order="C")


# the classes a file written by save_torch refers to, and all that load_torch allows
def _torch_classes(nn):
    return [nn.Sequential, nn.Linear, nn.ReLU, nn.Sigmoid, nn.Softmax, nn.Dropout,
            nn.Identity]


def save_torch(model, path):
    """Write ``to_torch(model)`` with ``torch.save`` (atomically). Read it back without
    allowing arbitrary code with ``load_torch(path)``, or in plain PyTorch with
    ``torch.load(path, weights_only=True)`` inside
    ``torch.serialization.safe_globals([nn.Sequential, nn.Linear, nn.ReLU, nn.Sigmoid,
    nn.Softmax, nn.Dropout, nn.Identity])``."""
    torch = _require("torch", "torch", "save_torch")
    from nnfs_fast.io.atomic import atomic_write
    module = to_torch(model)
    atomic_write(path, lambda f: torch.save(module, f))


def load_torch(path):
    """The ``nn.Sequential`` in a file written by ``save_torch``, unpickled with
    ``weights_only=True`` and only the module classes ``to_torch`` uses allowed."""
    torch = _require("torch", "torch", "load_torch")
    with torch.serialization.safe_globals(_torch_classes(torch.nn)):
        module = torch.load(path, weights_only=True)
    if not isinstance(module, torch.nn.Sequential):
        raise ValueError(f"{path}: holds a {type(module).__name__}, not an nn.Sequential")
    return module


def to_torch_optimizer(model, module):
    """(optimizer, scheduler): ``model.optimizer`` as the equivalent ``torch.optim`` optimizer
    over the Linear modules of ``module`` (``to_torch(model)`` or a slice of it that keeps
    the Dense layers' positions as names, e.g. ``module[:-1]`` without the final Softmax),
    carrying over its state (momentums, caches, step count), and the book's learning-rate
    decay ``lr / (1 + decay * iterations)`` as a ``LambdaLR`` that continues from
    ``model.optimizer.iterations``. Call ``scheduler.step()`` after each
    ``optimizer.step()``, as the book counts ``iterations``.

    ============================  =============================================================
    Optimizer_SGD                 ``SGD(lr, momentum)``; the book's momentum state is
                                  ``-lr * momentum_buffer``, so momentum with decay has no
                                  torch equivalent (ValueError)
    Optimizer_Adagrad             ``Adagrad(lr, eps=epsilon)`` (torch's default eps is 1e-10)
    Optimizer_RMSprop             ``RMSprop(lr, alpha=rho, eps=epsilon)``
    Optimizer_Adam                ``Adam(lr, betas=(beta_1, beta_2), eps=epsilon)``: the book's
                                  eps 1e-7 (torch's default is 1e-8)
    ============================  =============================================================

    The book's L1/L2 regularization is part of its loss, not of the optimizer: add it to the
    torch loss (docs/SCALING.md). Needs ``pip install "nnfs_fast[torch]"``."""
    torch = _require("torch", "torch", "to_torch_optimizer")
    book = getattr(model, "optimizer", None)
    kind = type(book).__name__
    if kind not in ("Optimizer_SGD", "Optimizer_Adagrad", "Optimizer_RMSprop", "Optimizer_Adam"):
        raise ValueError(f"to_torch_optimizer: model.optimizer is {kind}, expected one of the "
                         "book's four optimizers (model.set(optimizer=...))")
    children = dict(module.named_children())
    pairs = []  # (book layer, torch Linear)
    for i, _, layer, params in _stack(model, "to_torch_optimizer"):
        if params is None:
            continue
        linear = children.get(str(i))
        if type(linear) is not torch.nn.Linear or \
                tuple(linear.weight.shape) != params[0].shape[::-1]:
            raise ValueError(f"to_torch_optimizer: module has no Linear "
                             f"{params[0].shape[::-1]} named {i!r} for model.layers[{i}] "
                             f"(found {linear!r})")
        pairs.append((layer, linear))
    lr, decay, steps = book.learning_rate, book.decay, book.iterations
    parameters = [p for _, linear in pairs for p in (linear.weight, linear.bias)]
    if kind == "Optimizer_SGD":
        if book.momentum and decay:
            raise ValueError("to_torch_optimizer: Optimizer_SGD with both momentum and decay "
                             "has no torch.optim equivalent (the book's momentum state holds "
                             "updates already scaled by each step's learning rate)")
        optimizer = torch.optim.SGD(parameters, lr=lr, momentum=book.momentum)
        state = {"momentum_buffer": ("momentums", -1 / lr)} if book.momentum else {}
    elif kind == "Optimizer_Adagrad":
        optimizer = torch.optim.Adagrad(parameters, lr=lr, eps=book.epsilon)
        state = {"sum": ("cache", 1.0)}
    elif kind == "Optimizer_RMSprop":
        optimizer = torch.optim.RMSprop(parameters, lr=lr, alpha=book.rho, eps=book.epsilon)
        state = {"square_avg": ("cache", 1.0)}
    else:
        optimizer = torch.optim.Adam(parameters, lr=lr, betas=(book.beta_1, book.beta_2),
                                     eps=book.epsilon)
        state = {"exp_avg": ("momentums", 1.0), "exp_avg_sq": ("cache", 1.0)}
    for layer, linear in pairs:
        for param, prefix in ((linear.weight, "weight"), (linear.bias, "bias")):
            values = {key: getattr(layer, f"{prefix}_{suffix}", None)
                      for key, (suffix, _) in state.items()}
            if not state or steps == 0 or any(v is None for v in values.values()):
                continue  # nothing to carry over: torch starts from zeros, as the book does
            entry = {key: torch.tensor(np.asarray(value, dtype=np.float32).T.reshape(
                param.shape) * np.float32(state[key][1])) for key, value in values.items()}
            if kind != "Optimizer_SGD":
                entry["step"] = torch.tensor(float(steps))
            optimizer.state[param] = entry
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda t: 1. / (1. + decay * (steps + t)))
    return optimizer, scheduler
