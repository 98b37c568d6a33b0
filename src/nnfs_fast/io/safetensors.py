"""safetensors files in pure NumPy: a reader that refuses damaged files, a writer, and the
parameter files of ``Model.save_parameters``/``load_parameters``.

The format (https://github.com/huggingface/safetensors): an 8-byte little-endian unsigned
header length N, N bytes of UTF-8 JSON starting with ``{`` (padded with spaces), then the
data. The JSON maps each tensor name to ``{"dtype": "F32", "shape": [...], "data_offsets":
[begin, end]}`` (offsets relative to the start of the data) and may hold ``"__metadata__"``,
a map of strings to strings. The data is little-endian and C-ordered.

Reading executes nothing and checks everything before it allocates an array: a regular file,
a header that fits in the file (at most 100 MB, the reference implementation's limit), JSON
without duplicate names, known dtypes, shapes of non-negative ints whose size matches the
offsets, and offsets that cover the data exactly once, in order, without gaps or overlaps (as
the reference implementation requires). Arrays are therefore never larger in total than the
file. Any violation raises ValueError naming the file and the problem.

Parameter files use the names of ``nnfs_fast.export.to_torch(model).state_dict()``: Dense
layer ``model.layers[i]`` is stored as ``"{i}.weight"`` (n_neurons, n_inputs) -- torch's
(out, in) layout, the transpose of ``Layer_Dense.weights`` -- and ``"{i}.bias"``
(n_neurons,), float32, so that ``torch.nn.Sequential.load_state_dict`` takes
``safetensors.torch.load_file(path)`` directly.
"""
import json
import os
import re
import stat

import numpy as np

from nnfs_fast.io.atomic import atomic_write

SUFFIX = ".safetensors"
MAX_HEADER = 100_000_000
METADATA = "__metadata__"
# safetensors dtype names -> little-endian NumPy dtypes (BF16 is read as its 16 bits)
DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
          "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
          "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_NAMES = {np.dtype(v).newbyteorder("<"): k for k, v in DTYPES.items() if k != "BF16"}
_PARAMETER = re.compile(r"(0|[1-9][0-9]*)\.(weight|bias)")


def is_safetensors_path(path):
    """True when the file name ends in ``.safetensors`` (any case): the parameter files
    written in this format."""
    return os.fsdecode(os.fspath(path)).lower().endswith(SUFFIX)


def looks_like_safetensors(path):
    """True for a regular file whose first bytes are a plausible header length and ``{``
    (never blocks on a pipe; False when the file cannot be opened)."""
    try:
        fd = _open_regular(path)
    except (OSError, ValueError):
        return False
    with os.fdopen(fd, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and \
        int.from_bytes(head[:8], "little") <= MAX_HEADER


# ----------------------------------------------------------------------------- reading

def read(path):
    """({name: array}, metadata) of a safetensors file.

    Arrays are native-endian copies in the file's dtype (BF16 widened to float32, exactly);
    metadata is the ``__metadata__`` map of str to str ({} when absent). Raises ValueError for
    anything that is not a well-formed safetensors file."""
    path = os.fspath(path)
    fd = _open_regular(path)
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < 8:
            raise ValueError(f"{path}: not a safetensors file: {size} bytes, shorter than the "
                             "8-byte header length")
        n = int.from_bytes(f.read(8), "little")
        if n > min(size - 8, MAX_HEADER):
            raise ValueError(f"{path}: truncated or not a safetensors file: the header length "
                             f"says {n} bytes, but {size - 8} bytes follow it"
                             + (f" (and the limit is {MAX_HEADER})" if n > MAX_HEADER else ""))
        header = _parse_header(f.read(n), path)
        entries, metadata = _check_entries(header, size - 8 - n, path)
        arrays = {}
        for name, (dtype, shape, begin, end) in entries.items():
            array = np.empty(shape, dtype=np.dtype(DTYPES[dtype]))
            f.seek(8 + n + begin)
            if end > begin and f.readinto(memoryview(array).cast("B")) != end - begin:
                raise ValueError(f"{path}: truncated while reading {name!r} (the file "
                                 "changed while it was read?)")
            arrays[name] = _native(array, dtype)
    return arrays, metadata


def _open_regular(path):
    """A read-only descriptor of ``path``, refusing anything but a regular file (opened
    without blocking, so a named pipe cannot hang the reader)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ValueError(f"{path}: not a regular file, so not a safetensors file")
    return fd


def _parse_header(raw, path):
    """The header's JSON object, with duplicate names refused."""
    if raw[:1] != b"{":
        raise ValueError(f"{path}: not a safetensors file: the header does not start with "
                         f"'{{' (it starts with {raw[:16]!r})")

    def unique(pairs):
        names = [k for k, _ in pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate names {sorted({k for k in names if names.count(k) > 1})}")
        return dict(pairs)
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=unique)
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:  # JSONDecodeError too
        raise ValueError(f"{path}: corrupted safetensors header: {exc}") from None


def _check_entries(header, data_size, path):
    """{name: (dtype, shape, begin, end)} in file order, and the metadata, after checking
    every field and that the offsets tile the ``data_size`` bytes of data exactly."""
    def bad(message):
        return ValueError(f"{path}: corrupted safetensors header: {message}")

    metadata = header.pop(METADATA, {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad(f"{METADATA} must map strings to strings, got {metadata!r:.200}")
    entries = {}
    for name, entry in header.items():
        # other keys are ignored, as the reference implementation does
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise bad(f"{name!r} must be {{'dtype', 'shape', 'data_offsets'}}, got "
                      f"{entry!r:.200}")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise bad(f"{name!r} has dtype {dtype!r:.50}; nnfs_fast reads "
                      f"{', '.join(DTYPES)}")
        if not isinstance(shape, list) or not all(_index(d) for d in shape):
            raise bad(f"{name!r} has shape {shape!r:.200}, not a list of ints >= 0")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(map(_index, offsets)) \
                or offsets[0] > offsets[1]:
            raise bad(f"{name!r} has data_offsets {offsets!r:.200}, not [begin, end] with "
                      "0 <= begin <= end")
        if offsets[1] > data_size:
            raise bad(f"{name!r} has data_offsets {offsets}, beyond the {data_size} bytes of "
                      "data in the file (truncated?)")
        nbytes = _nbytes(DTYPES[dtype], shape, limit=data_size)
        if nbytes != offsets[1] - offsets[0]:
            raise bad(f"{name!r}: shape {shape} of {dtype} takes "
                      f"{'more than ' + str(data_size) if nbytes is None else nbytes} bytes, "
                      f"but its data_offsets {offsets} span {offsets[1] - offsets[0]}")
        entries[name] = (dtype, tuple(shape), offsets[0], offsets[1])
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda e: e[1][2:]):
        if begin != position:
            raise bad(f"{name!r} starts at byte {begin} of the data, expected {position} "
                      f"({'overlaps the tensor before it' if begin < position else 'a gap'})")
        position = end
    if position != data_size:
        raise bad(f"the tensors end at byte {position} of the data, but the file holds "
                  f"{data_size} bytes of data"
                  + (" (truncated?)" if position > data_size else " (trailing bytes)"))
    return entries, metadata


def _nbytes(dtype, shape, limit):
    """Bytes of an array of ``shape``, or None when that is more than ``limit`` (computed
    without building huge numbers from a hostile shape)."""
    if 0 in shape:
        return 0
    nbytes = np.dtype(dtype).itemsize
    for d in shape:
        nbytes *= d
        if nbytes > limit:
            return None
    return nbytes


def _index(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _native(array, dtype):
    """A little-endian array from the file as a native-endian one; BF16 bits widened to
    float32 (exact: bfloat16 is the top half of a float32)."""
    if dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


# ----------------------------------------------------------------------------- writing

def write(path, arrays, metadata=None):
    """Write ``{name: array}`` (bool, int or float arrays of any shape) and optional
    ``metadata`` (str -> str) as a safetensors file, atomically."""
    header, blobs, position = {}, [], 0
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError(f"metadata must map str to str, got {metadata!r}")
        header[METADATA] = dict(metadata)
    for name, array in arrays.items():
        if not isinstance(name, str) or name == METADATA:
            raise ValueError(f"tensor names must be strings other than {METADATA!r}, got "
                             f"{name!r}")
        array = np.asarray(array)
        little = array.dtype.newbyteorder("<")
        if little not in _NAMES:
            raise TypeError(f"{name}: dtype {array.dtype} has no safetensors equivalent")
        data = np.ascontiguousarray(array, dtype=little).tobytes()
        header[name] = {"dtype": _NAMES[little], "shape": list(array.shape),
                        "data_offsets": [position, position + len(data)]}
        blobs.append(data)
        position += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned, as the reference does

    def write_to(f):
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for data in blobs:
            f.write(data)
    atomic_write(path, write_to)


# -------------------------------------------------------------------------- parameters

def save_parameters(parameters, path, layer_indices):
    """Write (weights (n_inputs, n_neurons), biases (1, n_neurons)) pairs as float32
    ``"{i}.weight"`` (n_neurons, n_inputs) and ``"{i}.bias"`` (n_neurons,), with ``i`` from
    ``layer_indices`` (each Dense layer's position in ``model.layers``)."""
    if layer_indices is None:
        raise ValueError("save_parameters: a safetensors file names each layer by its position "
                         "in model.layers; use Model.save_parameters(path)")
    parameters, layer_indices = list(parameters), list(layer_indices)
    if len(parameters) != len(layer_indices):
        raise ValueError(f"save_parameters: {len(parameters)} (weights, biases) pairs but "
                         f"{len(layer_indices)} layer indices")
    arrays = {}
    for i, (weights, biases) in zip(layer_indices, parameters):
        weights = np.asarray(weights, dtype=np.float32)
        arrays[f"{i}.weight"] = weights.T
        arrays[f"{i}.bias"] = np.asarray(biases, dtype=np.float32).reshape(weights.shape[1])
    write(path, arrays, {"format": "pt"})


def load_parameters(path):
    """The list of (weights (n_inputs, n_neurons), biases (1, n_neurons)) float32 pairs of a
    safetensors file of ``"{i}.weight"``/``"{i}.bias"`` tensors, in the order of ``i``."""
    arrays, _ = read(path)
    layers = {}
    for name, array in arrays.items():
        match = _PARAMETER.fullmatch(name)
        if match is None:
            raise ValueError(
                f"{path}: tensor {name!r} is not a parameter of an nn.Sequential of Linear "
                f"layers (expected names such as '0.weight' and '0.bias'; the file holds "
                f"{', '.join(sorted(arrays))[:300]})")
        if array.dtype.kind != "f":
            raise ValueError(f"{path}: {name} has dtype {array.dtype}, expected floats")
        layers.setdefault(int(match[1]), {})[match[2]] = array
    pairs = []
    for i in sorted(layers):
        found = layers[i]
        if set(found) != {"weight", "bias"}:
            missing = ({"weight", "bias"} - set(found)).pop()
            raise ValueError(f"{path}: {i}.{missing} is missing (every layer needs "
                             f"{i}.weight and {i}.bias)")
        weight, bias = found["weight"], found["bias"]
        if weight.ndim != 2 or bias.shape != weight.shape[:1]:
            raise ValueError(f"{path}: {i}.weight of shape {weight.shape} and {i}.bias of "
                             f"shape {bias.shape} are not (out, in) and (out,)")
        pairs.append((np.ascontiguousarray(weight.T, dtype=np.float32),
                      np.ascontiguousarray(bias, dtype=np.float32).reshape(1, -1)))
    return pairs
