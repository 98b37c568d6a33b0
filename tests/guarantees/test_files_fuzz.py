"""Loading files is safe (docs/GUARANTEES.md): whatever the bytes, Model.load,
load_parameters and the MNIST IDX reader either return a usable result or raise a clean
ValueError (naming the file) or OSError -- never another exception, never a crash, never code
from the file. tests/api/test_persistence.py covers each named failure (truncated, corrupted,
foreign, pickles, wrong kind/version, missing arrays, architecture mismatch, atomic saves);
here hypothesis feeds random bytes and mutated valid files: bit flips, truncations,
insertions, swapped/renamed/dropped/duplicated zip members, edited JSON and edited .npy
headers.
"""
import gzip
import io
import json
import os
import pickle
import struct
import warnings
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnfs_fast.accuracy import Accuracy_Categorical
from nnfs_fast.activations import Activation_ReLU, Activation_Softmax
from nnfs_fast.datasets import load_mnist_dataset
from nnfs_fast.io import archive as _persistence
from nnfs_fast.layers import Layer_Dense, Layer_Dropout
from nnfs_fast.losses import Loss_CategoricalCrossentropy
from nnfs_fast.model import Model
from nnfs_fast.optimizers import Optimizer_Adam

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SLOW = settings(FAST, max_examples=600)


def classifier():
    np.random.seed(0)
    model = Model()
    model.add(Layer_Dense(2, 8, weight_regularizer_l2=5e-4))
    model.add(Activation_ReLU())
    model.add(Layer_Dropout(0.1))
    model.add(Layer_Dense(8, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(learning_rate=0.05),
              accuracy=Accuracy_Categorical())
    model.finalize()
    X = np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2)
    model.train(X, np.arange(10) % 3, epochs=2, verbose=False)
    return model


class Files(dict):
    """name -> bytes, with a short repr for hypothesis's failure reports."""

    def __repr__(self):
        return f"<valid files: {', '.join(self)}>"


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """The bytes of a valid model file, parameters file and MNIST IDX pair."""
    folder = tmp_path_factory.mktemp("originals")
    model = classifier()
    model.save(folder / "m.model")
    model.save_parameters(folder / "m.parms")
    images = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    idx_images = (2051).to_bytes(4, "big") + b"".join(
        n.to_bytes(4, "big") for n in images.shape) + images.tobytes()
    idx_labels = (2049).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes([1, 7, 9])
    return Files(model=(folder / "m.model").read_bytes(),
                 parameters=(folder / "m.parms").read_bytes(),
                 images=idx_images, labels=idx_labels)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------ the checks

CLEAN = (ValueError, OSError)


def check_model_file(path, allow_pickle=False):
    """Model.load either gives a model that predicts, or raises a clean error naming path."""
    try:
        model = Model.load(path, allow_pickle=allow_pickle)
    except CLEAN as exc:
        assert isinstance(exc, OSError) or str(path) in str(exc), repr(exc)
        return None
    n_inputs = model.trainable_layers[0].weights.shape[0] if model.trainable_layers else 2
    output = model.predict(np.zeros((2, n_inputs), np.float32))
    assert output.shape[0] == 2
    return model


def check_parameters_file(path, allow_pickle=False):
    try:
        parameters = _persistence.load_parameters(path, allow_pickle=allow_pickle)
    except CLEAN as exc:
        assert isinstance(exc, OSError) or str(path) in str(exc), repr(exc)
        return None
    for weights, biases in parameters:
        assert weights.dtype == np.float32 and biases.dtype == np.float32
    return parameters


def check_idx_folder(folder):
    try:
        X, y = load_mnist_dataset("train", folder)
    except CLEAN as exc:
        return exc
    assert X.dtype == np.uint8 and X.shape[1:] == (28, 28) and len(X) == len(y)
    return None


# --------------------------------------------------------------------------- random bytes

@FAST
@given(data=st.one_of(st.binary(max_size=600),
                      st.binary(max_size=600).map(lambda b: b"PK\x03\x04" + b),
                      st.binary(max_size=600).map(lambda b: b"\x80\x04" + b)))
def test_random_bytes(workdir, data):
    path = workdir / "random.bin"
    path.write_bytes(data)
    for allow_pickle in (False, True):
        check_model_file(path, allow_pickle)
        check_parameters_file(path, allow_pickle)
    idx = workdir / "idx"
    idx.mkdir(exist_ok=True)
    (idx / "train-images-idx3-ubyte").write_bytes(data)
    (idx / "train-labels-idx1-ubyte").write_bytes(data)
    check_idx_folder(idx)


# --------------------------------------------------------------------- byte-level mutations

def byte_mutation():
    """A function bytes -> bytes: flip bits, truncate, insert or delete bytes."""
    flips = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 7)),
                     min_size=1, max_size=8).map(lambda fs: ("flip", fs))
    cut = st.floats(0, 1, exclude_max=True).map(lambda f: ("cut", f))
    insert = st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=16)).map(
        lambda t: ("insert", t))
    delete = st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 64)).map(
        lambda t: ("delete", t))
    return st.one_of(flips, cut, insert, delete)


def apply_bytes(data, mutation):
    kind, arg = mutation
    data = bytearray(data)
    if kind == "flip":
        for where, bit in arg:
            data[int(where * len(data))] ^= 1 << bit
    elif kind == "cut":
        data = data[:int(arg * len(data))]
    elif kind == "insert":
        at = int(arg[0] * len(data))
        data[at:at] = arg[1]
    else:
        at = int(arg[0] * len(data))
        del data[at:at + arg[1]]
    return bytes(data)


@FAST
@given(which=st.sampled_from(["model", "parameters"]), mutation=byte_mutation())
def test_mutated_files(originals, workdir, which, mutation):
    path = workdir / f"mutated.{which}"
    path.write_bytes(apply_bytes(originals[which], mutation))
    (check_model_file if which == "model" else check_parameters_file)(path)


@pytest.mark.slow
@SLOW
@given(which=st.sampled_from(["model", "parameters"]), mutation=byte_mutation(),
       allow_pickle=st.booleans())
def test_mutated_files_many(originals, workdir, which, mutation, allow_pickle):
    path = workdir / f"many.{which}"
    path.write_bytes(apply_bytes(originals[which], mutation))
    (check_model_file if which == "model" else check_parameters_file)(path, allow_pickle)


# ---------------------------------------------------------------- structural mutations

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from(sorted(_persistence.CLASSES) + ["Model", "os.system", "__import__"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)


def _json_paths(value, prefix=()):
    """Every path (a tuple of keys/indices) into a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _json_paths(item, prefix + (i,))


def edit_json(text, pick, new_value, delete):
    meta = json.loads(text)
    paths = list(_json_paths(meta))[1:]
    path = paths[int(pick * len(paths))]
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new_value
    return json.dumps(meta)


NPY_DTYPES = ["<f4", ">f4", "<f8", "<f2", "<i8", "|u1", "|b1", "<c8", "|O", "<U3", "|V8",
              "[('a', '<f4')]"]


def edit_npy_header(data, shape, descr, fortran):
    """A .npy member with a rewritten header (the data bytes unchanged)."""
    stream = io.BytesIO(data)
    np.lib.format.read_magic(stream)
    np.lib.format.read_array_header_1_0(stream)
    body = data[stream.tell():]
    descr_text = descr if descr.startswith("[") else repr(descr)
    header = f"{{'descr': {descr_text}, 'fortran_order': {fortran}, 'shape': {tuple(shape)!r}, }}"
    header += " " * ((-(len(header) + 11)) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + body


def structural_mutation():
    member = st.floats(0, 1, exclude_max=True)
    return st.one_of(
        st.tuples(st.just("swap"), member, member),
        st.tuples(st.just("rename"), member, st.sampled_from(
            ["layers/0/weights.npy", "layers/9/weights.npy", "nnfs_fast.json", "x.npy",
             "parameters/0/biases.npy", "../evil.npy", "/abs.npy"])),
        st.tuples(st.just("drop"), member),
        st.tuples(st.just("duplicate"), member),
        st.tuples(st.just("json"), st.floats(0, 1, exclude_max=True), JSON_VALUES,
                  st.booleans()),
        st.tuples(st.just("json_text"), st.text(max_size=40)),
        st.tuples(st.just("npy"), member,
                  st.lists(st.one_of(st.integers(0, 40), st.integers(0, 2**62)), max_size=4),
                  st.sampled_from(NPY_DTYPES), st.booleans()),
        st.tuples(st.just("compress"), st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                                        zipfile.ZIP_LZMA])),
    )


def apply_structural(data, mutation):
    """Rewrite the zip archive ``data`` with one structural change."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    kind, *args = mutation
    compression = zipfile.ZIP_STORED
    arrays = [i for i, (name, _) in enumerate(members) if name.endswith(".npy")]
    pick = lambda f, among=None: (among or range(len(members)))[  # noqa: E731
        int(f * len(among or members))]
    if kind == "swap":
        i, j = pick(args[0]), pick(args[1])
        (a, da), (b, db) = members[i], members[j]
        members[i], members[j] = (a, db), (b, da)
    elif kind == "rename":
        i = pick(args[0])
        members[i] = (args[1], members[i][1])
    elif kind == "drop":
        del members[pick(args[0])]
    elif kind == "duplicate":
        members.append(members[pick(args[0])])
    elif kind in ("json", "json_text"):
        i = next(i for i, (name, _) in enumerate(members) if name == _persistence.META)
        text = (edit_json(members[i][1].decode(), *args) if kind == "json" else args[0])
        members[i] = (members[i][0], text.encode("utf-8", "surrogatepass"))
    elif kind == "npy":
        i = pick(args[0], arrays)
        members[i] = (members[i][0], edit_npy_header(members[i][1], *args[1:]))
    elif kind == "compress":
        compression = args[0]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile: "Duplicate name"
        for name, content in members:
            archive.writestr(name, content)
    return out.getvalue()


@FAST
@given(which=st.sampled_from(["model", "parameters"]), mutation=structural_mutation())
def test_structurally_mutated_files(originals, workdir, which, mutation):
    path = workdir / f"structural.{which}"
    path.write_bytes(apply_structural(originals[which], mutation))
    (check_model_file if which == "model" else check_parameters_file)(path)


@pytest.mark.slow
@SLOW
@given(which=st.sampled_from(["model", "parameters"]), mutation=structural_mutation())
def test_structurally_mutated_files_many(originals, workdir, which, mutation):
    path = workdir / f"structural_many.{which}"
    path.write_bytes(apply_structural(originals[which], mutation))
    (check_model_file if which == "model" else check_parameters_file)(path)


def rewrite_zip(data, edit_info):
    """The archive ``data`` rewritten, with ``edit_info(info)`` applied to each ZipInfo."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w") as rewritten:
        for info in archive.infolist():
            content = archive.read(info)
            edit_info(info)
            rewritten.writestr(info, content)
    return out.getvalue()


def _set(attribute, value):
    return lambda info: setattr(info, attribute, value)


def set_flag_bits(data, bits):
    """``data`` with general-purpose flag ``bits`` set in every local and central header
    (zipfile's writer clears them, so the bytes are patched)."""
    data = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        central = archive.start_dir
        for info in archive.infolist():
            data[info.header_offset + 6] |= bits          # local header: flags at 6
            data[central + 8] |= bits                     # central header: flags at 8
            n, m, k = struct.unpack("<HHH", data[central + 28:central + 34])
            central += 46 + n + m + k
    return bytes(data)


def _meta(edit):
    return lambda data: apply_structural(data, ("json_text", edit(
        zipfile.ZipFile(io.BytesIO(data)).read(_persistence.META).decode())))


# What the fuzzer found (each raised something other than a ValueError before the fix), and
# the checks added with them; deterministic, so that they are always run.
FOUND = {
    "encrypted flag": (lambda d: set_flag_bits(d, 0x1),
                       r"compressed or encrypted"),
    "patch data flag": (lambda d: set_flag_bits(d, 0x20),
                        r"compressed or encrypted"),
    "zip version 10.9": (lambda d: rewrite_zip(d, _set("extract_version", 109)),
                         r"truncated or corrupted.*zip file version"),
    "deflated members": (lambda d: rewrite_zip(d, _set("compress_type",
                                                       zipfile.ZIP_DEFLATED)),
                         r"compressed or encrypted \(method 8"),
    "duplicate member": (lambda d: apply_structural(d, ("duplicate", 0.5)),
                         r"duplicate member names"),
    "npy shape of 6e9": (lambda d: apply_structural(d, ("npy", 0.0, [6_319_125_627], "<f4",
                                                        False)),
                         r"the header says shape \(6319125627,\) of float32 \(25276502508 "
                         r"bytes\), but 64 bytes follow"),
    "npy object array": (lambda d: apply_structural(d, ("npy", 0.0, [8], "|O", False)),
                         r"holds Python objects"),
    "nested JSON": (_meta(lambda m: "[" * 100_000 + "]" * 100_000), r"truncated or corrupted"),
    "n_inputs edited": (
        _meta(lambda m: m.replace('"n_inputs": 8', '"n_inputs": 7')),
        r"layers/3 \(Layer_Dense\): weights of shape \(8, 3\)"),
    "dropout keep rate 2": (_meta(lambda m: m.replace('"rate": 0.9', '"rate": 2')),
                            r"layers/2 \(Layer_Dropout\): rate must be the keep probability"),
    "iterations null": (_meta(lambda m: m.replace('"iterations": 2', '"iterations": null')),
                        r"optimizer \(Optimizer_Adam\): iterations must be an int >= 0, got "
                        r"None"),
    "learning rate NaN": (_meta(lambda m: m.replace('"current_learning_rate": 0.05',
                                                    '"current_learning_rate": NaN')),
                          r"current_learning_rate must be a finite number >= 0 \(within "
                          r"float32's range\), got nan"),
}


@pytest.mark.parametrize("mutate, message", FOUND.values(), ids=FOUND.keys())
def test_what_the_fuzzer_found(originals, tmp_path, mutate, message):
    path = tmp_path / "found.model"
    path.write_bytes(mutate(originals["model"]))
    with pytest.raises(ValueError, match=r"found\.model: .*" + message):
        Model.load(path)


def test_dense_chain_is_checked_at_load(originals, tmp_path):
    """Arrays consistent with their own layer, but not with each other."""
    model = classifier()
    model.layers[3] = Layer_Dense(7, 3)
    model.finalize()
    model.save(tmp_path / "chain.model")
    with pytest.raises(ValueError, match=r"chain\.model: invalid model description: layers/3 "
                                         r"\(Layer_Dense\): 7 inputs, but the Dense layer "
                                         r"before it has 8 outputs"):
        Model.load(tmp_path / "chain.model")


# ---------------------------------------------------------------------- MNIST IDX files

@FAST
@given(target=st.sampled_from(["images", "labels"]), mutation=byte_mutation(),
       gz=st.booleans(),
       dims=st.none() | st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3))
def test_mutated_idx_files(originals, workdir, target, mutation, gz, dims):
    """One of the two IDX files of a split, its header's dimensions rewritten or not, then
    mutated (the raw bytes, or the gzip stream for .gz files)."""
    folder = workdir / "mnist"
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for what in ("images", "labels"):
        data = originals[what]
        if what == target and dims is not None:
            n_dims = data[3]
            new = b"".join(d.to_bytes(4, "big") for d in (dims + [28, 28, 3])[:n_dims])
            data = data[:4] + new + data[4 + 4 * n_dims:]
        if gz:
            data = gzip.compress(data)
        if what == target:
            data = apply_bytes(data, mutation)
        name = f"train-{what}-idx{3 if what == 'images' else 1}-ubyte" + ".gz" * gz
        (folder / name).write_bytes(data)
    exc = check_idx_folder(folder)
    if exc is not None:
        assert isinstance(exc, ValueError) and "ubyte" in str(exc), repr(exc)


# ------------------------------------------------------------------- nothing is executed

def _leave_a_mark(path):
    with open(path, "w") as f:
        f.write("code from the file ran")
    return [1]


class Payload:
    """Unpickling it would call _leave_a_mark(marker)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_leave_a_mark, (self.marker,))


def test_pickled_payloads_never_run(tmp_path, originals):
    marker = str(tmp_path / "ran")
    payload = pickle.dumps(Payload(marker), protocol=4)
    (tmp_path / "pickle.model").write_bytes(payload)
    (tmp_path / "list.parms").write_bytes(pickle.dumps([(Payload(marker), Payload(marker))]))
    # a .npy object array inside our archive, and a pickle in place of the JSON description
    npy = io.BytesIO()
    np.save(npy, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    for name, replace in (("layers/0/weights.npy", npy.getvalue()),
                          (_persistence.META, payload)):
        with zipfile.ZipFile(io.BytesIO(originals["model"])) as archive, \
                zipfile.ZipFile(tmp_path / f"{len(name)}.model", "w") as out:
            for info in archive.infolist():
                out.writestr(info.filename, replace if info.filename == name
                             else archive.read(info))
    for path in sorted(tmp_path.iterdir()):
        for allow_pickle in (False, True):
            if path.suffix == ".model":
                with pytest.raises(ValueError, match=str(path.name).replace(".", "[.]")):
                    Model.load(path, allow_pickle=allow_pickle)
            with pytest.raises(ValueError, match=str(path.name).replace(".", "[.]")):
                _persistence.load_parameters(path, allow_pickle=allow_pickle)
    assert not os.path.exists(marker)


def test_zip_member_paths_are_never_written(tmp_path, originals):
    """Loading reads members into memory; names like ../x are never extracted."""
    data = apply_structural(originals["model"], ("rename", 0.0, "../escaped.npy"))
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "m.model"
    path.write_bytes(data)
    check_model_file(path)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["m.model", "sub"]


# ---------------------------------------------------------------------------- atomic saves
# (test_persistence.py: an OSError while writing, and a process killed mid-save)

@pytest.mark.parametrize("failure", ["KeyboardInterrupt", "os.replace"])
def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    path = tmp_path / "m.model"
    classifier().save(path)
    before = path.read_bytes()
    newer = classifier()
    newer.train(np.ones((4, 2), np.float32), np.zeros(4, int), verbose=False)
    if failure == "KeyboardInterrupt":   # Ctrl-C in the middle of the archive
        real, calls = np.lib.format.write_array, []

        def write_array(fp, array, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                raise KeyboardInterrupt
            real(fp, array, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", write_array)
        expected = KeyboardInterrupt
    else:                                # the rename itself fails
        def replace(src, dst):
            raise PermissionError(13, "Permission denied", str(dst))

        monkeypatch.setattr(os, "replace", replace)
        expected = PermissionError
    with pytest.raises(expected):
        newer.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.model"]     # the temporary file was removed
    newer.save(path)                               # and a later save works
    assert path.read_bytes() != before


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        classifier().save(tmp_path / "missing" / "m.model")
    assert os.listdir(tmp_path) == []
