"""Readers bound what they allocate by what the file holds, and files are written safely
(docs/GUARANTEES.md, "Files"; issue 16, classes 2 and 5).

Readers: a gzipped IDX file is decompressed only as far as its header announces; zip members
may not overlap, be unexpected or hold another dtype than float32; named pipes, devices and
directories are refused before they are opened; loading a model draws no random weights.
Writers: saves go through symbolic links to a regular file, refuse other targets, leave
temporary files of a recognisable name that the next save removes once their process is gone,
and a SIGKILL mid-save leaves the old file whole. Loading refuses incomplete optimizer state
and out-of-range counters.
"""
import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading
import warnings
import zipfile
import zlib

import numpy as np
import pytest

from conftest import run_python
from nnfs_fast.accuracy import Accuracy_Categorical
from nnfs_fast.activations import Activation_ReLU, Activation_Softmax
from nnfs_fast.datasets import load_mnist, load_mnist_dataset
from nnfs_fast.io import archive as _persistence
from nnfs_fast.layers import Layer_Dense
from nnfs_fast.losses import Loss_CategoricalCrossentropy
from nnfs_fast.model import Model
from nnfs_fast.optimizers import Optimizer_Adagrad, Optimizer_Adam, Optimizer_RMSprop, Optimizer_SGD

posix_only = pytest.mark.skipif(os.name != "posix", reason="named pipes, signals, /dev/null")


def classifier(optimizer=None, train=True):
    np.random.seed(0)
    model = Model()
    model.add(Layer_Dense(2, 8))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(8, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=optimizer or Optimizer_Adam(0.05),
              accuracy=Accuracy_Categorical())
    model.finalize()
    if train:
        X = np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2)
        model.train(X, np.arange(10) % 3, epochs=2, verbose=False)
    return model


def rewrite_archive(src, dst, meta=None, members=None):
    """Copy the archive ``src`` to ``dst``, editing its description with ``meta(dict)`` and
    its members with ``members(dict name -> bytes)`` (both edit in place)."""
    with zipfile.ZipFile(src) as archive:
        content = {info.filename: archive.read(info) for info in archive.infolist()}
    description = json.loads(content[_persistence.META])
    if meta:
        meta(description)
    content[_persistence.META] = json.dumps(description).encode()
    if members:
        members(content)
    with zipfile.ZipFile(dst, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    return dst


def npy(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def peak_rss_growth_mib(code):
    """Run ``code`` in a fresh interpreter; return (its output, how far its peak resident set
    grew while the code ran, in MiB). ``code`` must not print the last line itself."""
    result = run_python(
        "import resource\nimport numpy, nnfs_fast.datasets, nnfs_fast.model\n"
        "_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        + code + "\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _before)\n",
        timeout=300)
    assert result.returncode == 0, result.stderr
    *output, growth_kib = result.stdout.splitlines()
    return "\n".join(output), int(growth_kib) / 1024


# -------------------------------------------------------------------- IDX files: bombs

def idx_header(magic, shape):
    return magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape)


def write_labels(folder, n):
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_header(2049, (n,)) + bytes(n))


def write_gzip_with_zeros(path, prefix, zero_mib):
    """A valid gzip file of ``prefix`` then ``zero_mib`` MiB of zeros, streamed: one deflate
    block of 1 MiB of zeros, compressed once and repeated (after a full flush the compressor
    keeps no history, so every repeat decodes on its own). About 1 KB per MiB."""
    zeros = bytes(1 << 20)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head)  # deflate, no name
        for _ in range(zero_mib):
            f.write(block)
            crc = zlib.crc32(zeros, crc)
        f.write(compressor.flush(zlib.Z_FINISH))
        f.write(struct.pack("<II", crc, (len(prefix) + (zero_mib << 20)) & 0xFFFFFFFF))


def test_gzip_writer_of_these_tests_makes_valid_files(tmp_path):
    import gzip
    write_gzip_with_zeros(tmp_path / "z.gz", b"abc", 3)
    assert gzip.decompress((tmp_path / "z.gz").read_bytes()) == b"abc" + bytes(3 << 20)


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "raw sparse file"])
def test_idx_data_beyond_the_header_is_not_read(tmp_path, gz):
    """10 images announced, followed by 1.5 GB of zeros (a 1.5 MB gzip file, or a sparse
    raw file): refused as trailing data, with the peak resident set barely moving (reading
    it all took +3 GB)."""
    prefix = idx_header(2051, (10, 28, 28)) + bytes(range(256)) * 30 + bytes(160)
    if gz:
        write_gzip_with_zeros(tmp_path / "train-images-idx3-ubyte.gz", prefix, 1500)
        assert (tmp_path / "train-images-idx3-ubyte.gz").stat().st_size < 2_000_000
    else:
        with open(tmp_path / "train-images-idx3-ubyte", "wb") as f:
            f.write(prefix)
            f.truncate(len(prefix) + 1500 * 2**20)   # sparse: no disk space used
    write_labels(tmp_path, 10)
    output, growth = peak_rss_growth_mib(f"""
try:
    nnfs_fast.datasets.load_mnist_dataset("train", {str(tmp_path)!r})
except ValueError as exc:
    print(exc)""")
    assert "train-images-idx3-ubyte" in output and "has trailing bytes" in output, output
    assert growth < 100, f"peak resident set grew by {growth:.0f} MiB"


def test_idx_header_claiming_more_than_the_gzip_can_hold(tmp_path):
    """4e9 images of 28x28 announced in a 60-byte gzip file: refused before allocating."""
    write_gzip_with_zeros(tmp_path / "train-images-idx3-ubyte.gz",
                          idx_header(2051, (2**32 - 1, 28, 28)), 0)
    write_labels(tmp_path, 10)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz: truncated: the header "
                                         r"says shape \(4294967295, 28, 28\).*more than a "
                                         r"gzip file of \d+ bytes can hold"):
        load_mnist_dataset("train", tmp_path)


def test_idx_wrong_image_size_refused_before_reading_the_data(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(idx_header(2051, (1, 8, 8)))  # no data
    write_labels(tmp_path, 1)
    with pytest.raises(ValueError, match="expected 28x28 images, got 8x8"):
        load_mnist_dataset("train", tmp_path)


# --------------------------------------------------------------------- PNG folders: bombs

def png_header(width, height):
    """A PNG announcing ``width`` x ``height`` 8-bit gray pixels, with a few bytes of data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [100_000, 10_000, 5_000],
                         ids=["over twice Pillow's limit", "over the limit", "under it"])
def test_oversized_png_is_a_value_error_naming_the_file(tmp_path, side):
    pytest.importorskip("PIL")
    (tmp_path / "train" / "3").mkdir(parents=True)
    (tmp_path / "train" / "3" / "big.png").write_bytes(png_header(side, side))
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # no DecompressionBombWarning escapes either
        with pytest.raises(ValueError, match=r"big\.png: expected a 28x28 image, got "):
            load_mnist(tmp_path, kind="train")


# -------------------------------------------------------------- model archives: bounds

def _local_header(name, data):
    """A stored zip local header for ``data`` padded (extra field) to a multiple of 4."""
    pad = -(30 + len(name)) % 4
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data),
                       len(data), len(data), len(name), pad) + name + bytes(pad)


def overlapping_parameters_archive(n_layers, payload_floats):
    """A parameters file whose 2 * n_layers array members overlap (the "quoted" zip bomb):
    each member's data is a float32 .npy header followed by every later member, local headers
    included, so the one payload is decoded once per member. Every member is a valid
    (1, k) float32 array, so only the overlap is wrong."""
    names = [f"parameters/{i}/{what}.npy".encode() for i in range(n_layers)
             for what in ("weights", "biases")]
    rest = np.arange(payload_floats, dtype="<f4").tobytes()
    members = []  # (name, data, bytes before the next member's local header), last first
    for name in reversed(names):
        buffer = io.BytesIO()
        np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                      "shape": (1, len(rest) // 4)})
        data = buffer.getvalue() + rest
        header = _local_header(name, data)
        members.append((name, data, len(header) + len(buffer.getvalue())))
        rest = header + data
    members.reverse()
    meta = json.dumps({"format": "nnfs_fast", "kind": "parameters", "version": 1,
                       "n_layers": n_layers}).encode()
    blob = _local_header(b"nnfs_fast.json", meta) + meta
    entries, offset = [(b"nnfs_fast.json", meta, 0)], len(blob)
    for name, data, to_next in members:
        entries.append((name, data, offset))
        offset += to_next
    blob += rest
    central = b"".join(
        struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 0, 0, 0,
                    zlib.crc32(data), len(data), len(data), len(name), 0, 0, 0, 0, 0, at)
        + name for name, data, at in entries)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(blob), 0)
    return blob + central + end


def test_overlapping_zip_members_are_refused(tmp_path):
    path = tmp_path / "overlap.parms"
    path.write_bytes(overlapping_parameters_archive(n_layers=20, payload_floats=65536))
    with zipfile.ZipFile(path) as archive:   # what the old reader decoded: 39x the file
        assert sum(info.file_size for info in archive.infolist()) > 30 * path.stat().st_size
    with pytest.raises(ValueError, match=r"overlap\.parms: not an nnfs_fast file: zip member "
                                         r"'parameters/0/weights\.npy' \(bytes \d+\.\.\d+\) "
                                         r"overlaps the member or central directory"):
        _persistence.load_parameters(path)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained model (Adam state on both Dense layers) and its parameters, saved."""
    folder = tmp_path_factory.mktemp("saved")
    model = classifier()
    model.save(folder / "m.model")
    model.save_parameters(folder / "m.parms")
    return folder


@pytest.mark.parametrize("extra", ["notes.txt", "layers/0/extra.npy", "layers/9/weights.npy",
                                   "layers/1/weights.npy", "layers/01/weights.npy"])
def test_members_the_description_does_not_call_for_are_refused(tmp_path, saved, extra):
    """(layers/1 is the ReLU, which has no arrays)"""
    path = rewrite_archive(saved / "m.model", tmp_path / "extra.model",
                           members=lambda m: m.update({extra: npy(np.zeros((2, 8), "f4"))}))
    with pytest.raises(ValueError, match=rf"extra\.model: corrupted nnfs_fast file: 1 "
                                         rf"member\(s\) its description does not call for: "
                                         rf"'{extra}'"):
        Model.load(path)
    path = rewrite_archive(saved / "m.parms", tmp_path / "extra.parms",
                           members=lambda m: m.update({"parameters/2/weights.npy": b""}))
    with pytest.raises(ValueError, match=r"'parameters/2/weights\.npy'"):
        _persistence.load_parameters(path)


@pytest.mark.parametrize("dtype", ["<f2", "|u1", "|i1", "<f8", "|b1", "<i4"])
def test_other_dtypes_are_refused_not_converted(tmp_path, saved, dtype):
    """uint8 or float16 members would decode to 4x or 2x the bytes the file holds."""
    def narrow(members):
        members["parameters/0/weights.npy"] = npy(np.ones((2, 8), dtype))
    path = rewrite_archive(saved / "m.parms", tmp_path / "narrow.parms", members=narrow)
    with pytest.raises(ValueError, match=rf"narrow\.parms: .*parameters/0/weights\.npy: holds "
                                         rf"{np.dtype(dtype)} values, but nnfs_fast files "
                                         rf"hold float32 only"):
        _persistence.load_parameters(path)


def test_big_endian_float32_is_read(tmp_path, saved):
    weights = np.linspace(-1, 1, 16, dtype=">f4").reshape(2, 8)
    path = rewrite_archive(saved / "m.parms", tmp_path / "be.parms", members=lambda m: m.update(
        {"parameters/0/weights.npy": npy(weights)}))
    loaded = _persistence.load_parameters(path)[0][0]
    assert loaded.dtype == np.float32 and loaded.dtype.isnative
    np.testing.assert_array_equal(loaded, weights)


# ------------------------------------------------------- only regular files are opened

def call_unblocking_fifo(function, fifo):
    """``function()`` in a thread; if it blocks (opening the named pipe ``fifo`` waits for a
    writer), a writer is opened to release it and the test fails instead of hanging."""
    outcome = {}

    def run():
        try:
            outcome["result"] = function()
        except BaseException as exc:   # noqa: B036 -- handed to the test
            outcome["error"] = exc
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        with open(fifo, "wb"):
            pass
        thread.join(10)
        pytest.fail(f"{function} blocked on the named pipe {fifo}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


@posix_only
@pytest.mark.parametrize("loader", [
    lambda path: Model.load(path), lambda path: Model.load(path, allow_pickle=True),
    lambda path: _persistence.load_parameters(path),
    lambda path: _persistence.load_parameters(path, allow_pickle=True),
    lambda path: classifier(train=False).load_parameters(path)],
    ids=["Model.load", "Model.load pickle", "load_parameters", "load_parameters pickle",
         "model.load_parameters"])
def test_named_pipes_are_refused_without_blocking(tmp_path, loader):
    fifo = tmp_path / "pipe.model"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=r"pipe\.model: a named pipe, not a regular file"):
        call_unblocking_fifo(lambda: loader(fifo), fifo)


@posix_only
@pytest.mark.parametrize("what", ["images", "labels"])
def test_named_pipe_as_an_idx_file_is_refused(tmp_path, what):
    for kind, magic, shape in (("images", 2051, (1, 28, 28)), ("labels", 2049, (1,))):
        path = tmp_path / f"train-{kind}-idx{len(shape)}-ubyte"
        if kind == what:
            os.mkfifo(path)
        else:
            path.write_bytes(idx_header(magic, shape) + bytes(int(np.prod(shape))))
    with pytest.raises(ValueError, match=rf"train-{what}-idx\d-ubyte: a named pipe, not a "
                                         r"regular file"):
        call_unblocking_fifo(lambda: load_mnist_dataset("train", tmp_path),
                             next(tmp_path.glob(f"train-{what}-*")))


@posix_only
def test_named_pipe_in_a_png_folder_is_refused(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "train" / "0").mkdir(parents=True)
    os.mkfifo(tmp_path / "train" / "0" / "0001.png")
    with pytest.raises(ValueError, match=r"0001\.png: a named pipe, not a regular file"):
        call_unblocking_fifo(lambda: load_mnist(tmp_path, kind="train"),
                             tmp_path / "train" / "0" / "0001.png")


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_directories_and_devices_are_refused(tmp_path, allow_pickle):
    with pytest.raises(ValueError, match=r"a directory, not a regular file \(Model.load "):
        Model.load(tmp_path, allow_pickle=allow_pickle)
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match=r"/dev/zero: a character device, not a regular "
                                             r"file \(load_parameters "):
            _persistence.load_parameters("/dev/zero", allow_pickle=allow_pickle)


# ------------------------------------------------------------ loading draws no weights

def test_load_never_touches_the_global_rng(saved, monkeypatch):
    """Layers are built from the stored arrays: no draw of float64 weights of the full size,
    and no saving and restoring of the RNG state (which would undo another thread's draws)."""
    def forbidden(*args, **kwargs):
        raise AssertionError("Model.load used NumPy's global RNG")
    for name in ("randn", "standard_normal", "get_state", "set_state", "seed", "binomial"):
        monkeypatch.setattr(np.random, name, forbidden)
    model = Model.load(saved / "m.model")
    monkeypatch.undo()
    assert model.layers[0].weights.dtype == np.float32
    np.testing.assert_array_equal(model.layers[0].weights, classifier().layers[0].weights)


def test_layer_dense_from_arrays_checks_what_it_is_given():
    weights, biases = np.ones((3, 4), np.float32), np.zeros((1, 4), np.float32)
    layer = Layer_Dense._from_arrays(weights, biases, weight_regularizer_l2=5e-4)
    assert layer.weights is weights and layer.biases is biases
    assert repr(layer) == "Layer_Dense(n_inputs=3, n_neurons=4, weight_regularizer_l2=0.0005)"
    assert (layer.weight_regularizer_l1, layer.bias_regularizer_l1,
            layer.bias_regularizer_l2) == (0, 0, 0)
    with pytest.raises(TypeError, match="weights must be a float32 ndarray, got float64"):
        Layer_Dense._from_arrays(weights.astype(np.float64), biases)
    with pytest.raises(ValueError, match=r"weights must have shape .* got \(0, 4\)"):
        Layer_Dense._from_arrays(np.ones((0, 4), np.float32), biases)
    with pytest.raises(ValueError, match=r"biases must have shape \(1, 4\) .* got \(4,\)"):
        Layer_Dense._from_arrays(weights, biases.ravel())
    with pytest.raises(ValueError, match="bias_regularizer_l1: expected a finite real >= 0"):
        Layer_Dense._from_arrays(weights, biases, bias_regularizer_l1=-1)


# ------------------------------------------------ optimizer state and counters at load

ADAM_STATE = ["weight_momentums", "bias_momentums", "weight_cache", "bias_cache"]


@pytest.mark.parametrize("optimizer, member", [
    *[(Optimizer_Adam(0.05), name) for name in ADAM_STATE],
    (Optimizer_SGD(momentum=0.5), "bias_momentums"), (Optimizer_RMSprop(), "weight_cache"),
    (Optimizer_Adagrad(), "bias_cache")], ids=lambda v: getattr(v, "__name__", str(v)))
def test_incomplete_optimizer_state_is_refused(tmp_path, optimizer, member):
    classifier(optimizer).save(tmp_path / "full.model")
    path = rewrite_archive(tmp_path / "full.model", tmp_path / "partial.model",
                           members=lambda m: m.pop(f"layers/2/{member}.npy"))
    with pytest.raises(ValueError, match=rf"partial\.model: invalid model description: "
                                         rf"layers/2: optimizer state \['{member}'\] missing "
                                         rf"\({type(optimizer).__name__} keeps "):
        Model.load(path)


def test_state_left_by_another_optimizer_is_not_saved(tmp_path):
    """SGD momentums on the layers, then Adam: Adam would make all of its state afresh at its
    first update, so the file holds none of it, loads, and trains like the model in memory."""
    model = classifier(Optimizer_SGD(momentum=0.5))
    model.set(loss=model.loss, optimizer=Optimizer_Adam(0.01), accuracy=model.accuracy)
    model.finalize()
    model.save(tmp_path / "switched.model")
    with zipfile.ZipFile(tmp_path / "switched.model") as archive:
        assert not any("momentums" in name for name in archive.namelist())
    loaded = Model.load(tmp_path / "switched.model")
    X = np.linspace(-1, 1, 20, dtype=np.float32).reshape(10, 2)
    for m in (model, loaded):
        m.train(X, np.arange(10) % 3, epochs=2, verbose=False)
    np.testing.assert_array_equal(loaded.layers[0].weights, model.layers[0].weights)


def _optimizer_edit(key, value):
    def edit(meta):
        section = "attrs" if key in ("iterations", "current_learning_rate") else "args"
        if value is _MISSING:
            del meta["optimizer"][section][key]
        else:
            meta["optimizer"][section][key] = value
    return edit


_MISSING = object()
OUT_OF_RANGE = {
    "iterations -1": (("iterations", -1), r"iterations must be an int >= 0, got -1"),
    "iterations 2.0": (("iterations", 2.0), r"iterations must be an int >= 0, got 2\.0"),
    "iterations true": (("iterations", True), r"iterations must be an int >= 0, got True"),
    "lr -0.5": (("current_learning_rate", -0.5), r"current_learning_rate must be a finite "
                                                 r"number >= 0 \(within float32's range\)"),
    "lr 1e300": (("current_learning_rate", 1e300), r"current_learning_rate must be a finite "),
    "lr Infinity": (("current_learning_rate", float("inf")), r"current_learning_rate must be"),
    "iterations missing": (("iterations", _MISSING), r"optimizer \(Optimizer_Adam\): "
                                                     r"attributes: expected \["),
    "decay missing": (("decay", _MISSING), r"optimizer \(Optimizer_Adam\): arguments: "
                                           r"expected \['learning_rate', 'decay', "),
    "beta_1 1": (("beta_1", 1.0), r"beta_1 must be a finite number in \[0, 1\), got 1\.0"),
    "epsilon 0": (("epsilon", 0), r"epsilon must be a finite number in \(0, inf\), got 0"),
    "decay -1": (("decay", -1), r"decay must be a finite number in \[0, inf\), got -1"),
    # JSON integers have no size limit: float(10**400) raised OverflowError (not a
    # ValueError); every number nnfs_fast writes fits in 64 bits
    "iterations 2**63": (("iterations", 2**63), r"attributes: iterations must be a number "
                                                r"within 64-bit range, got an integer of 19 "
                                                r"digits"),
    "iterations 10**400": (("iterations", 10**400), r"iterations must be a number within"),
    "lr 10**400": (("current_learning_rate", 10**400), r"attributes: current_learning_rate "
                                                       r"must be a number within 64-bit range"),
    "learning_rate -10**400": (("learning_rate", -10**400), r"arguments: learning_rate must "
                                                            r"be a number within 64-bit range"),
}


@pytest.mark.parametrize("edit, message", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
def test_optimizer_scalars_out_of_range_are_refused(tmp_path, saved, edit, message):
    path = rewrite_archive(saved / "m.model", tmp_path / "odd.model",
                           meta=_optimizer_edit(*edit))
    with pytest.raises(ValueError, match=r"odd\.model: invalid model description: .*" + message):
        Model.load(path)


# ----------------------------------------------------------------------- atomic saves

@posix_only
def test_save_through_a_symbolic_link_updates_the_target(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "links").mkdir()
    target = tmp_path / "store" / "m.model"
    classifier(train=False).save(target)
    link = tmp_path / "links" / "current.model"
    link.symlink_to(os.path.relpath(target, link.parent))
    trained = classifier()
    trained.save(link)
    assert link.is_symlink() and os.path.samefile(link, target)
    np.testing.assert_array_equal(Model.load(target).layers[0].weights,
                                  trained.layers[0].weights)
    assert sorted(os.listdir(tmp_path / "store")) == ["m.model"]   # no temporary file left
    assert sorted(os.listdir(tmp_path / "links")) == ["current.model"]
    dangling = tmp_path / "links" / "new.model"        # a link to a file not made yet
    dangling.symlink_to(tmp_path / "store" / "new.model")
    trained.save_parameters(dangling)
    assert dangling.is_symlink() and (tmp_path / "store" / "new.model").is_file()


@posix_only
def test_save_onto_something_not_a_regular_file_writes_nothing(tmp_path):
    model = classifier(train=False)
    if os.path.exists("/dev/null"):
        link = tmp_path / "null.model"
        link.symlink_to("/dev/null")
        with pytest.raises(ValueError, match=r"null\.model \(a link to /dev/null\): a character "
                                             r"device, not a regular file \(Model.save "):
            model.save(link)
        assert os.readlink(link) == "/dev/null"     # still the link, nothing replaced
    os.mkfifo(tmp_path / "pipe.model")
    with pytest.raises(ValueError, match=r"pipe\.model: a named pipe, not a regular file"):
        model.save(tmp_path / "pipe.model")
    (tmp_path / "folder.model").mkdir()
    with pytest.raises(ValueError, match=r"folder\.model: a directory, not a regular file"):
        model.save_parameters(tmp_path / "folder.model")
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["folder.model", "pipe.model"] + (["null.model"] if os.path.exists("/dev/null") else []))
    assert os.listdir(tmp_path / "folder.model") == []


@pytest.mark.parametrize("path, message", [
    ("", r"Model\.save: the path is empty; give a file name"),
    (b"", r"Model\.save: the path is empty; give a file name"),
    ("sub" + os.sep, r"Model\.save: 'sub.' names a folder; give a file name"),
    ("new" + os.sep, r"Model\.save: 'new.' names a folder; give a file name"),
    (".", r"\.: a directory, not a regular file \(Model\.save ")],
    ids=["empty", "empty bytes", "existing folder/", "missing folder/", "."])
def test_save_to_an_empty_or_folder_path_touches_nothing(tmp_path, monkeypatch, path,
                                                         message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    before = os.stat(tmp_path).st_mtime_ns
    with pytest.raises(ValueError, match=message):
        classifier(train=False).save(path)
    with pytest.raises(ValueError, match=message.replace("Model\\.save", "save_parameters")):
        classifier(train=False).save_parameters(path)
    assert sorted(os.listdir(tmp_path)) == ["sub"] and os.listdir(tmp_path / "sub") == []
    assert os.stat(tmp_path).st_mtime_ns == before


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@posix_only
def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    path = tmp_path / "m.model"
    stale = f".m.model.nnfs-tmp-{dead_pid()}-0123abcd"
    kept = [f".m.model.nnfs-tmp-{os.getpid()}-0123abcd",      # a live process: maybe saving
            f".other.model.nnfs-tmp-{dead_pid()}-0123abcd",   # another target
            f".m.model.nnfs-tmp-{dead_pid()}-notours",        # not our pattern
            "m.model.tmp"]
    for name in [stale] + kept:
        (tmp_path / name).write_bytes(b"partial")
    classifier().save(path)
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["m.model"])
    Model.load(path)


@posix_only
def test_sigkill_mid_save_keeps_the_old_file_and_the_next_save_cleans_up(tmp_path):
    path = tmp_path / "m.model"
    classifier(train=False).save(path)
    before = path.read_bytes()
    code = f"""
import sys, time, numpy as np
from nnfs_fast.model import Model
model = Model.load({str(path)!r})
model.layers[0].weights += 1
real, calls = np.lib.format.write_array, []
def slow_write(fp, array, **kwargs):
    calls.append(1)
    real(fp, array, **kwargs)
    if len(calls) == 2:             # half of the archive is written: wait to be killed
        print("writing", flush=True)
        time.sleep(120)
np.lib.format.write_array = slow_write
model.save({str(path)!r})
"""
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "writing\n"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(60)
    assert process.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    left = [name for name in os.listdir(tmp_path) if name != "m.model"]
    assert len(left) == 1 and left[0].startswith(f".m.model.nnfs-tmp-{process.pid}-"), left
    Model.load(path)
    classifier().save(path)             # the next save removes the dead process's file
    assert os.listdir(tmp_path) == ["m.model"]


@posix_only
def test_command_line_output_onto_a_pipe_is_a_usage_error(tmp_path):
    """predict --output onto a named pipe: one line on stderr and exit status 2 (the refusal
    of atomic_write, a ValueError, was a traceback)."""
    classifier().save(tmp_path / "m.model")
    np.save(tmp_path / "X.npy", np.zeros((3, 2), np.float32))
    os.mkfifo(tmp_path / "out.csv")
    result = subprocess.run([sys.executable, "-m", "nnfs_fast", "predict", tmp_path / "m.model",
                             tmp_path / "X.npy", "--output", tmp_path / "out.csv"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("nnfs-fast: error: --output ") and \
        "a named pipe, not a regular file" in result.stderr and \
        len(result.stderr.splitlines()) == 1, result.stderr
