"""The safe model and parameter format: a zip of float32 .npy arrays plus a JSON description,
written atomically and read without executing anything.

Format (``FORMAT`` version ``VERSION``): a zip archive readable by ``np.load`` holding
``nnfs_fast.json`` and one float32 ``.npy`` entry per array.

* ``Model.save`` writes ``{"format": "nnfs_fast", "kind": "model", "version": 1, "fuse": ...,
  "layers": [...], "loss": ..., "optimizer": ..., "accuracy": ...}``; each object is
  ``{"class": name, "args": {constructor arguments}, "attrs": {attributes set afterwards}}``
  with classes from an allow-list (``CLASSES``), and its arrays are stored as
  ``layers/<i>/<attribute>.npy`` (weights, biases and the optimizer's state: momentums, caches).
* ``save_parameters`` writes ``kind: "parameters"`` with ``parameters/<i>/weights.npy`` and
  ``parameters/<i>/biases.npy``.

Loading parses JSON and reads arrays with ``allow_pickle=False``: nothing in the file is
executed, and a truncated, corrupted or foreign file raises ValueError naming the file and the
problem. Only regular files are opened (``nnfs_fast.io.files``). Members must be stored as
written (uncompressed, unencrypted, unique names, float32 .npy arrays, no member the
description does not call for) and may not overlap in the file; each .npy header is checked
against its member's size before an array is allocated, so the arrays decoded never add up to
more than the file's own size. Restored attributes, optimizer counters and
state, and the chain of Dense widths are checked as well, and layers are built from the
stored arrays without drawing random weights.

Writing goes through ``nnfs_fast.io.atomic.atomic_write`` (an interrupted save leaves the old
file whole). The book's pickles are read only with ``allow_pickle=True``, by the restricted
unpickler of ``nnfs_fast.io.book_pickle``, and rebuilt exactly as from this format.
"""
import io
import json
import math
import os
import re
import struct
import zipfile

import numpy as np

from nnfs_fast import accuracy, activations, layers, losses, optimizers
from nnfs_fast.io import book_pickle
from nnfs_fast.io import safetensors as safetensors_io
from nnfs_fast.io.atomic import atomic_write
from nnfs_fast.io.book_pickle import BookObject
from nnfs_fast.io.files import open_regular

FORMAT = "nnfs_fast"
VERSION = 1
META = "nnfs_fast.json"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class _Kind:
    """How one allow-listed class is saved: constructor ``args`` and later ``attrs`` (JSON
    scalars, read from the object's attributes of the same names; all of them are stored, and
    required at load), and its ``arrays`` (``required`` ones and optional optimizer
    ``state``). An optimizer ``needs`` these state arrays on every layer it updates; the first
    one decides: a layer without it gets all of them made afresh as zeros (``_update`` in
    optimizers.py), a layer with it must have the others too."""

    def __init__(self, cls, args=(), attrs=(), required=(), state=(), needs=()):
        self.cls, self.args, self.attrs = cls, args, attrs
        self.required, self.state, self.needs = required, state, needs


_MOMENTUMS = ("weight_momentums", "bias_momentums")
_CACHE = ("weight_cache", "bias_cache")
_OPTIMIZER_STATE = _MOMENTUMS + _CACHE
_DENSE_REGULARIZERS = ("weight_regularizer_l1", "weight_regularizer_l2",
                       "bias_regularizer_l1", "bias_regularizer_l2")
_OPTIMIZER = ("learning_rate", "decay")
_OPTIMIZER_COUNTERS = ("current_learning_rate", "iterations")

CLASSES = {
    # n_inputs, n_neurons: the shape of weights
    "Layer_Dense": _Kind(layers.Layer_Dense, args=("n_inputs", "n_neurons") + _DENSE_REGULARIZERS,
                         required=("weights", "biases"), state=_OPTIMIZER_STATE),
    # Layer_Dropout(rate) takes the drop rate but stores the keep rate as ``rate``: the
    # argument is 1 - attribute, and the attribute is restored exactly afterwards
    "Layer_Dropout": _Kind(layers.Layer_Dropout, args=("rate",), attrs=("rate",)),
    "Activation_ReLU": _Kind(activations.Activation_ReLU),
    "Activation_Softmax": _Kind(activations.Activation_Softmax),
    "Activation_Sigmoid": _Kind(activations.Activation_Sigmoid),
    "Activation_Linear": _Kind(activations.Activation_Linear),
    "Loss_CategoricalCrossentropy": _Kind(losses.Loss_CategoricalCrossentropy),
    "Loss_BinaryCrossentropy": _Kind(losses.Loss_BinaryCrossentropy),
    "Loss_MeanSquaredError": _Kind(losses.Loss_MeanSquaredError),
    "Loss_MeanAbsoluteError": _Kind(losses.Loss_MeanAbsoluteError),
    # (SGD needs its momentums only when momentum is set: _needed_state)
    "Optimizer_SGD": _Kind(optimizers.Optimizer_SGD, args=_OPTIMIZER + ("momentum",),
                           attrs=_OPTIMIZER_COUNTERS, needs=_MOMENTUMS),
    "Optimizer_Adagrad": _Kind(optimizers.Optimizer_Adagrad, args=_OPTIMIZER + ("epsilon",),
                               attrs=_OPTIMIZER_COUNTERS, needs=_CACHE),
    "Optimizer_RMSprop": _Kind(optimizers.Optimizer_RMSprop,
                               args=_OPTIMIZER + ("epsilon", "rho"), attrs=_OPTIMIZER_COUNTERS,
                               needs=_CACHE),
    "Optimizer_Adam": _Kind(optimizers.Optimizer_Adam,
                            args=_OPTIMIZER + ("epsilon", "beta_1", "beta_2"),
                            attrs=_OPTIMIZER_COUNTERS, needs=_CACHE + _MOMENTUMS),
    "Accuracy_Categorical": _Kind(accuracy.Accuracy_Categorical, args=("binary",)),
    "Accuracy_Regression": _Kind(accuracy.Accuracy_Regression, attrs=("precision",)),
}
_SLOTS = {"layers": ("Layer_", "Activation_"), "loss": ("Loss_",),
          "optimizer": ("Optimizer_",), "accuracy": ("Accuracy_",)}


# ------------------------------------------------------------------------------- public API

def save_model(model, path):
    """Write ``model`` (a Model: its description, and its float32 weights, biases and optimizer
    state) to ``path``, atomically; see the module docstring for the format."""
    path = _path(path, "Model.save")
    if not model.layers:
        raise ValueError("Model.save: the model has no layers")
    meta, arrays = _describe_model(model, "Model.save")
    meta.update(format=FORMAT, kind="model", version=VERSION)
    _write_archive(path, meta, arrays, "Model.save")


def load_model(path, model_cls, *, allow_pickle=False):
    """A finalized ``model_cls`` read from ``path`` (our format; the book's pickle when
    ``allow_pickle``)."""
    path = _path(path, "Model.load")
    with open_regular(path, "Model.load") as f:
        if _is_zip(f, path, "Model.load", allow_pickle):
            meta, arrays = _read_archive(f, path, "model")
            book_model = None
        else:
            book_model = book_pickle.load(f, path, CLASSES)
    if book_model is None:
        return _build_model(meta, arrays, model_cls, path)
    if type(book_model).__name__ != "Model" or not isinstance(book_model, BookObject):
        raise ValueError(f"{path}: the pickle holds {type(book_model).__name__}, not the "
                         "book's Model")
    try:
        meta, arrays = _describe_model(book_model, "Model.load")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: unexpected content in the book's pickle: {exc}") from None
    return _build_model(meta, arrays, model_cls, path)


def save_parameters(parameters, path, *, layer_indices=None):
    """Write a list of (weights (n_inputs, n_neurons), biases (1, n_neurons)) pairs of real
    arrays to ``path`` as float32, atomically; a name ending in .safetensors writes safetensors
    (nnfs_fast.io.safetensors), naming pair k after its layer's position ``layer_indices[k]``
    in model.layers."""
    path = _path(path, "save_parameters")
    if safetensors_io.is_safetensors_path(path):
        return safetensors_io.save_parameters(parameters, path, layer_indices)
    parameters = list(parameters)
    arrays = {}
    for i, pair in enumerate(parameters):
        for name, array in zip(("weights", "biases"), _pair(pair)):
            arrays[f"parameters/{i}/{name}"] = _float32(array, f"parameters[{i}].{name}")
    meta = dict(format=FORMAT, kind="parameters", version=VERSION, n_layers=len(parameters))
    _write_archive(path, meta, arrays, "save_parameters")


def load_parameters(path, *, allow_pickle=False):
    """The list of (weights, biases) float32 pairs stored in ``path``, in the shapes they were
    saved with ((n_inputs, n_neurons) and (1, n_neurons) from ``Model.save_parameters``);
    safetensors when the name ends in .safetensors or the file starts like one."""
    path = _path(path, "load_parameters")
    if safetensors_io.is_safetensors_path(path) or safetensors_io.looks_like_safetensors(path):
        return safetensors_io.load_parameters(path)
    with open_regular(path, "load_parameters") as f:
        if not _is_zip(f, path, "load_parameters", allow_pickle):
            content = book_pickle.load(f, path, CLASSES)
            try:
                return [tuple(_float32(a, f"parameters[{i}]") for a in _pair(pair))
                        for i, pair in enumerate(_sequence(content, "parameters"))]
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}: not a parameter list from the book's "
                                 f"save_parameters: {exc}") from None
        meta, arrays = _read_archive(f, path, "parameters")
    n = meta["n_layers"]
    try:
        return [(arrays[f"parameters/{i}/weights"], arrays[f"parameters/{i}/biases"])
                for i in range(n)]
    except KeyError as exc:
        raise ValueError(f"{path}: corrupted nnfs_fast file: missing array {exc}") from None


def _path(path, where):
    """``path`` as a str or bytes file name (an int would be taken by ``open`` as a file
    descriptor)."""
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.fspath(path)
    raise TypeError(f"{where}: path must be a file name (str or os.PathLike), got "
                    f"{type(path).__name__}")


# --------------------------------------------------------------------- describe and rebuild

def _describe_model(model, where):
    """(meta, arrays) for a Model, or for the inert record of a book's pickled Model."""
    arrays = {}
    layer_list = _sequence(getattr(model, "layers", None), "layers")
    meta = {"fuse": bool(getattr(model, "fuse", True)),
            "layers": [_describe(layer, f"layers/{i}", "layers", arrays, where)
                       for i, layer in enumerate(layer_list)]}
    for slot in ("loss", "optimizer", "accuracy"):
        obj = getattr(model, slot, None)
        meta[slot] = None if obj is None else _describe(obj, slot, slot, arrays, where)
    needs = _needed_state(meta["optimizer"])
    for i in range(len(layer_list)):
        if needs and f"layers/{i}/{needs[0]}" not in arrays:
            # the optimizer makes all of its state afresh for this layer at its next update
            # (state left by another optimizer class): not saved, so the file stays complete
            for name in needs:
                arrays.pop(f"layers/{i}/{name}", None)
    return meta, arrays


def _needed_state(optimizer):
    """The state arrays a described optimizer keeps on each layer (``_Kind.needs``)."""
    if optimizer is None or (optimizer["class"] == "Optimizer_SGD"
                             and not optimizer["args"].get("momentum")):
        return ()
    return CLASSES[optimizer["class"]].needs


def _describe(obj, key, slot, arrays, where):
    name = _class_name(obj, key, slot, where)
    kind = CLASSES[name]
    try:
        for a in kind.required + tuple(s for s in kind.state if hasattr(obj, s)):
            arrays[f"{key}/{a}"] = _float32(getattr(obj, a), a)
        args = {a: _scalar(getattr(obj, a), a) for a in kind.args if hasattr(obj, a)}
        attrs = {a: _scalar(getattr(obj, a), a) for a in kind.attrs if hasattr(obj, a)}
        if name == "Layer_Dense":
            n_inputs, n_neurons = arrays[f"{key}/weights"].shape
            args = dict(n_inputs=n_inputs, n_neurons=n_neurons, **args)
        if name == "Layer_Dropout":
            args["rate"] = 1 - attrs["rate"]
    except (AttributeError, KeyError) as exc:
        raise ValueError(f"{key} ({name}): missing attribute {exc}") from None
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{key} ({name}): {exc}") from None
    return {"class": name, "args": args, "attrs": attrs}


def _class_name(obj, key, slot, where):
    """The allow-list name of obj's class (exact classes only: a subclass may hold state the
    format does not know)."""
    if isinstance(obj, BookObject):
        name = type(obj).__name__
    else:
        name = next((n for n, kind in CLASSES.items() if type(obj) is kind.cls), None)
        if name is None:
            raise ValueError(
                f"{where}: {key} is a {type(obj).__module__}.{type(obj).__qualname__}, which "
                "the safe format cannot describe (supported: "
                f"{', '.join(CLASSES)}); save_parameters() stores the parameters of any model")
    if name not in CLASSES or not name.startswith(_SLOTS[slot]):
        raise ValueError(f"{key}: a {name} cannot be used as {slot}")
    return name


def _build_model(meta, arrays, model_cls, path):
    """A finalized model from a description. Nothing draws from NumPy's global RNG: Dense
    layers are made from the stored arrays (``Layer_Dense._from_arrays``)."""
    try:
        model = model_cls(fuse=bool(meta.get("fuse", True)))
        width = None  # outputs of the last Dense layer so far
        for i, layer in enumerate(_sequence(meta.get("layers"), "layers")):
            model.add(_build(layer, f"layers/{i}", "layers", arrays))
            if isinstance(model.layers[-1], layers.Layer_Dense):
                n_inputs, n_neurons = model.layers[-1].weights.shape
                if width is not None and n_inputs != width:
                    raise ValueError(f"layers/{i} (Layer_Dense): {n_inputs} inputs, but the "
                                     f"Dense layer before it has {width} outputs")
                width = n_neurons
        model.set(**{slot: _build(meta.get(slot), slot, slot, arrays)
                     for slot in ("loss", "optimizer", "accuracy")})
        _check_optimizer_state(meta.get("optimizer"), model.layers, arrays)
        model.finalize()
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: invalid model description: {exc}") from None
    return model


def _check_optimizer_state(optimizer, layer_list, arrays):
    """Each layer holds all of the state the optimizer keeps on it, or none of it (then the
    optimizer makes it afresh): a partial set would fail, or be silently reset, at the first
    update after loading."""
    needs = _needed_state(optimizer)
    for i in range(len(layer_list)):
        present = [a for a in needs if f"layers/{i}/{a}" in arrays]
        if present and len(present) != len(needs):
            missing = [a for a in needs if a not in present]
            raise ValueError(f"layers/{i}: optimizer state {missing} missing "
                             f"({optimizer['class']} keeps {list(needs)} on each layer it "
                             "updates)")


def _build(desc, key, slot, arrays):
    if desc is None:
        if slot == "layers":
            raise ValueError(f"{key}: missing")
        return None
    if not isinstance(desc, dict) or desc.get("class") not in CLASSES \
            or not desc["class"].startswith(_SLOTS[slot]):
        raise ValueError(f"{key}: not an allowed {slot} class: "
                         f"{desc.get('class') if isinstance(desc, dict) else desc!r}")
    name, kind = desc["class"], CLASSES[desc["class"]]
    args = _scalars(desc.get("args"), kind.args, f"{key} ({name}): arguments")
    attrs = _scalars(desc.get("attrs"), kind.attrs, f"{key} ({name}): attributes")
    stored = {a: arrays.get(f"{key}/{a}") for a in kind.required + kind.state}
    missing = [a for a in kind.required if stored[a] is None]
    if missing:
        raise ValueError(f"{key} ({name}): missing arrays {missing}")
    if name == "Layer_Dense":
        weights, biases = stored.pop("weights"), stored.pop("biases")
        n = (args.pop("n_inputs"), args.pop("n_neurons"))
        if weights.shape != n or biases.size != n[1]:
            raise ValueError(f"{key} ({name}): weights of shape {weights.shape} and biases of "
                             f"shape {biases.shape} do not fit n_inputs, n_neurons = {n}")
        obj = layers.Layer_Dense._from_arrays(weights, biases.reshape(1, -1), **args)
    else:
        obj = kind.cls(**args)
    for a, value in attrs.items():
        if not _ATTR_CHECKS[a][0](value):
            raise ValueError(f"{key} ({name}): {a} must be {_ATTR_CHECKS[a][1]}, got {value!r}")
        setattr(obj, a, value)
    for a, value in stored.items():
        if value is not None:
            reference = obj.weights if a.startswith("weight") else obj.biases
            if value.shape != reference.shape:
                raise ValueError(f"{key} ({name}): {a} has shape {value.shape}, expected "
                                 f"{reference.shape}")
            setattr(obj, a, value)
    return obj


def _real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


_FLOAT32_MAX = float(np.finfo(np.float32).max)

# attributes restored after the constructor (which checks its own arguments)
_ATTR_CHECKS = {
    "rate": (lambda v: _real(v) and 0 < v <= 1, "the keep probability, in (0, 1]"),
    # the kernels take it as a float32
    "current_learning_rate": (lambda v: _real(v) and 0 <= v <= _FLOAT32_MAX,
                              "a finite number >= 0 (within float32's range)"),
    "iterations": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                   "an int >= 0"),
    "precision": (lambda v: v is None or (_real(v) and v >= 0), "None or a finite number >= 0"),
}


def _scalars(values, expected, key):
    """The JSON scalars of ``values``, which must name exactly the ``expected`` ones (the
    writer stores every one: a missing one would silently become a default). Integers must
    fit in 64 bits: JSON allows 10**400, which no float expression can take."""
    if not isinstance(values, dict) or set(values) != set(expected):
        have = sorted(values) if isinstance(values, dict) else values
        raise ValueError(f"{key}: expected {list(expected)}, got {have!r}")
    scalars = {a: _scalar(v, a) for a, v in values.items()}
    for a, v in scalars.items():
        if isinstance(v, int) and not -2**63 <= v < 2**63:
            raise ValueError(f"{key}: {a} must be a number within 64-bit range, got an "
                             f"integer of {len(str(abs(v)))} digits")
    return scalars


def _scalar(value, name):
    """A JSON scalar (bool, int, float or None) from a Python or NumPy scalar."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    raise TypeError(f"{name} must be a number, got {type(value).__name__}")


def _float32(array, name):
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real NumPy array, got "
                        f"{getattr(array, 'dtype', type(array).__name__)}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _sequence(value, name):
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a list, got {type(value).__name__}")
    return value


def _pair(value):
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("expected (weights, biases) pairs")
    return value


# ------------------------------------------------------------------------ the safe archive

def _write_archive(path, meta, arrays, where):
    """The safe archive (JSON description + .npy members, uncompressed), written atomically."""
    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(META, json.dumps(meta, indent=1))
            for name, array in arrays.items():
                with archive.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
    atomic_write(path, write, where)


def _is_zip(f, path, where, allow_pickle):
    """True for a zip archive; False for another file when pickles are allowed; else a
    ValueError that says what the file looks like. ``f`` is left at its start."""
    head = f.read(4)
    f.seek(0)
    if head in _ZIP_MAGIC:
        return True
    if not head:
        raise ValueError(f"{path}: empty file, not an nnfs_fast file")
    if allow_pickle:
        return False
    if head[:1] == b"\x80":
        raise ValueError(
            f"{path}: this is a pickle file (the format of the book's {where.split('.')[-1]}). "
            "Unpickling can run code from the file, so it is off by default; if you trust this "
            f"file, call {where}(path, allow_pickle=True)")
    raise ValueError(f"{path}: not an nnfs_fast file (it starts with {head!r}, not a zip "
                     "archive)")


def _read_archive(f, path, kind):
    """(meta, {name: float32 array}) from our zip archive in the open file ``f``, checking
    it thoroughly: every check on the members runs before any array is read."""
    try:
        with zipfile.ZipFile(f) as archive:
            names = set(archive.namelist())
            _check_members(archive, f, path)
            if META not in names:
                raise ValueError(f"{path}: a zip archive but not an nnfs_fast file (no {META} "
                                 "entry)")
            meta = json.loads(archive.read(META).decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"{path}: {META} does not describe an nnfs_fast file")
            version = meta.get("version")
            if not isinstance(version, int) or version < 1:
                raise ValueError(f"{path}: corrupted nnfs_fast file: bad version {version!r}")
            if version > VERSION:
                raise ValueError(f"{path}: written by a newer nnfs_fast (format version "
                                 f"{version}); this one reads up to version {VERSION}")
            if meta.get("kind") != kind:
                hint = {"model": "Model.load(path)",
                        "parameters": "model.load_parameters(path)"}.get(meta.get("kind"))
                raise ValueError(f"{path}: holds nnfs_fast {meta.get('kind')!r}, not {kind}"
                                 + (f"; read it with {hint}" if hint else ""))
            expected = _expected_members(meta, kind, path)
            unexpected = sorted(name for name in names - {META} if not expected(name))
            if unexpected:
                raise ValueError(f"{path}: corrupted nnfs_fast file: {len(unexpected)} "
                                 f"member(s) its description does not call for: "
                                 f"{', '.join(map(repr, unexpected[:3]))}"
                                 + (", ..." if len(unexpected) > 3 else ""))
            arrays = {member[:-4]: _read_npy(archive.read(member), member)
                      for member in sorted(names - {META})}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, UnicodeDecodeError,
            json.JSONDecodeError, TypeError, NotImplementedError, RuntimeError) as exc:
        # NotImplementedError, RuntimeError: zip features zipfile cannot read (a newer zip
        # version, encryption); RuntimeError also covers RecursionError (deeply nested JSON)
        if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError)):
            raise
        raise ValueError(f"{path}: truncated or corrupted nnfs_fast file ({exc})") from None
    except ValueError as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        raise ValueError(f"{path}: truncated or corrupted nnfs_fast file ({exc})") from None
    return meta, arrays


_MEMBER = re.compile(r"(layers|parameters)/(0|[1-9][0-9]*)/([a-z_]+)\.npy", re.ASCII)


def _expected_members(meta, kind, path):
    """A test for member names: true for the arrays that the description ``meta`` calls for
    (``layers/<i>/<array>.npy`` of each described class, ``parameters/<i>/{weights,biases}
    .npy`` for i < n_layers)."""
    if kind == "parameters":
        n = meta.get("n_layers")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{path}: corrupted nnfs_fast file: bad n_layers {n!r}")

        def arrays_of(i):
            return ("weights", "biases") if i < n else ()
    else:
        described = meta.get("layers") if isinstance(meta.get("layers"), list) else []

        def arrays_of(i):
            desc = described[i] if i < len(described) else None
            name = desc.get("class") if isinstance(desc, dict) else None
            found = CLASSES.get(name) if isinstance(name, str) else None
            return found.required + found.state if found else ()

    def expected(member):
        match = _MEMBER.fullmatch(member)
        return bool(match) and match.group(1) == ("layers", "parameters")[kind != "model"] \
            and match.group(3) in arrays_of(int(match.group(2)))
    return expected


def _check_members(archive, f, path):
    """Refuse zip features that nnfs_fast never writes (compression, encryption, patch data):
    reading stored members needs no decompressor, and no member can expand beyond its size
    in the file. Duplicate names are refused too (zip readers differ on which one counts),
    and so are members whose bytes overlap another member or the central directory (the
    "overlapping files" zip bomb: many members reading one payload): with both, the members
    together never decode to more bytes than the file holds."""
    infos = archive.infolist()
    if len({info.filename for info in infos}) != len(infos):
        raise ValueError(f"{path}: corrupted nnfs_fast file: duplicate member names")
    spans = []
    for info in infos:
        if info.flag_bits & _ZIP_UNSUPPORTED_FLAGS or info.compress_type != zipfile.ZIP_STORED:
            raise ValueError(f"{path}: not an nnfs_fast file: member {info.filename!r} is "
                             f"compressed or encrypted (method {info.compress_type}, flags "
                             f"{info.flag_bits:#x}); nnfs_fast stores members uncompressed")
        f.seek(info.header_offset)
        header = f.read(_LOCAL_HEADER.size)
        if len(header) < _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
            raise ValueError(f"{path}: corrupted nnfs_fast file: no local header for member "
                             f"{info.filename!r} at offset {info.header_offset}")
        name_length, extra_length = _LOCAL_HEADER.unpack(header)[1:]
        end = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length \
            + info.compress_size
        spans.append((info.header_offset, end, info.filename))
    spans.sort()
    next_starts = [start for start, _, _ in spans[1:]] + [archive.start_dir]
    for (start, end, name), next_start in zip(spans, next_starts):
        if end > next_start:
            raise ValueError(f"{path}: not an nnfs_fast file: zip member {name!r} (bytes "
                             f"{start}..{end}) overlaps the member or central directory that "
                             f"starts at byte {next_start}")


def _read_npy(data, member):
    """The float32 array stored in the bytes of one .npy member. The header is checked
    against the member's size before anything is allocated (a header may claim any shape),
    and only float32 is accepted: another dtype would be converted, and a narrower one (uint8,
    float16) would decode to more bytes than the file holds."""
    stream = io.BytesIO(data)
    version = np.lib.format.read_magic(stream)
    if version not in _NPY_HEADER_READERS:
        raise ValueError(f"{member}: .npy format version {version} is not one nnfs_fast writes")
    shape, _, dtype = _NPY_HEADER_READERS[version](stream)
    if dtype.hasobject:
        raise ValueError(f"{member}: holds Python objects, which only a pickle can restore "
                         "(refused: allow_pickle=False)")
    if dtype.kind != "f" or dtype.itemsize != 4:
        raise ValueError(f"{member}: holds {dtype} values, but nnfs_fast files hold float32 "
                         "only (refused rather than converted)")
    expected, present = math.prod(shape) * dtype.itemsize, len(data) - stream.tell()
    if expected != present:
        raise ValueError(f"{member}: the header says shape {shape} of {dtype} ({expected} bytes), "
                         f"but {present} bytes follow")
    stream.seek(0)
    return _float32(np.lib.format.read_array(stream, allow_pickle=False), member)


# the fixed part of a zip local file header: signature, then (skipped) version, flags,
# method, time, date, CRC, sizes; then the lengths of the file name and of the extra field
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_ZIP_UNSUPPORTED_FLAGS = 0x1 | 0x20 | 0x40   # encrypted, compressed patch data, strong encryption
_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}
