"""MNIST / Fashion-MNIST from local files (IDX files or the book's PNG folders): images as
(N, 784) float32 or the book's raw (N, 28, 28) uint8, labels (N,) uint8; nothing is downloaded.

Two on-disk layouts are read, for MNIST and Fashion-MNIST alike (same formats, same names):

* the IDX files of the original distributions, raw or gzipped::

      train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
      t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

  (``train-images.idx3-ubyte``-style names, with a dot, are accepted too);
* the book's folders of PNG files (``fashion_mnist_images.zip`` of chapter 19)::

      train/<label>/*.png   test/<label>/*.png

  read with Pillow (``pip install "nnfs_fast[images]"``). The book lists both levels with
  ``os.listdir``, whose order depends on the file system; here label folders are taken in
  numeric order and files in sorted name order, so the same folder gives the same arrays on
  every machine (the book's script shuffles the training set anyway).

When a folder holds both layouts, the IDX files are read (one file instead of 70,000).

    >>> from nnfs_fast.datasets import load_mnist
    >>> X, y, X_test, y_test = load_mnist("fashion_mnist_images")   # doctest: +SKIP
    >>> X.shape, X.dtype, float(X.min()), float(X.max())             # doctest: +SKIP
    ((60000, 784), dtype('float32'), -1.0, 1.0)
"""
import gzip
import math
import os
import warnings
import zlib

import numpy as np

from nnfs_fast.io.files import open_regular

_F32 = np.float32
_SIDE = 28                          # MNIST images are 28 x 28
_IDX_IMAGES, _IDX_LABELS = 2051, 2049   # magic numbers: 0x0803 (ubyte, 3 dims), 0x0801 (1 dim)
_IDX_PREFIX = {"train": "train", "test": "t10k"}
# (pixel - 127.5) / 127.5 as in the book's chapter 19, or pixel / 255; computed once per byte
# value in float32 exactly as the book's float32 expression does, so a lookup is bit-identical
_SCALES = {
    "book": (np.arange(256, dtype=_F32) - 127.5) / 127.5,
    "unit": np.arange(256, dtype=_F32) / _F32(255),
}
_KINDS = ("both", "train", "test")
# deflate expands at most 1032:1 (a 258-byte match per two bits): a gzip file of n bytes holds
# at most 1032 n bytes, so a header claiming more is refused before anything is allocated
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20   # gzip data is decompressed this many bytes at a time


# ------------------------------------------------------------------------------ public API

def load_mnist(path, *, scale="book", kind="both"):
    """MNIST or Fashion-MNIST from ``path`` (IDX files or the book's PNG folders).

    Args:
        path: folder holding the four IDX files, or the ``train``/``test`` PNG folders.
        scale: ``"book"``: (pixel - 127.5) / 127.5, in [-1, 1] (chapter 19's scaling);
            ``"unit"``: pixel / 255, in [0, 1].
        kind: ``"both"``, ``"train"`` or ``"test"``.
    Returns:
        ``(X, y, X_test, y_test)`` for ``kind="both"``, else ``(X, y)``: X (N, 784) float32,
        C-contiguous, images flattened row by row; y (N,) uint8. Files are read in order;
        nothing is shuffled (the book shuffles the training set in its script).
    Raises:
        FileNotFoundError: no data of either layout in ``path``.
        ValueError: a malformed file (the message names it).
        ImportError: PNG folders without Pillow installed.
    """
    if scale not in _SCALES:
        raise ValueError(f"load_mnist: scale must be one of {sorted(_SCALES)}, got {scale!r}")
    if kind not in _KINDS:
        raise ValueError(f"load_mnist: kind must be one of {list(_KINDS)}, got {kind!r}")
    table = _SCALES[scale]
    out = []
    for dataset in (("train", "test") if kind == "both" else (kind,)):
        images, labels = load_mnist_dataset(dataset, path)
        out += [table[images.reshape(len(images), -1)], labels]
    return tuple(out)


def load_mnist_dataset(dataset, path):
    """The book's loader: one split (``"train"`` or ``"test"``) as raw pixels.

    Returns X (N, 28, 28) uint8 and y (N,) uint8, like the book's ``load_mnist_dataset``
    (which reads ``path/dataset/<label>/*.png``); IDX files in ``path`` are read as well.
    """
    if dataset not in _IDX_PREFIX:
        raise ValueError(f"load_mnist_dataset: dataset must be 'train' or 'test', "
                         f"got {dataset!r}")
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"MNIST data folder not found: {path!r}")
    idx = _idx_files(path, dataset)
    if idx is not None:
        return _read_idx_pair(*idx)
    folder = os.path.join(path, dataset)
    if os.path.isdir(folder):
        return _read_png_folder(folder)
    prefix = _IDX_PREFIX[dataset]
    raise FileNotFoundError(
        f"no {dataset} data in {path!r}: expected the IDX files {prefix}-images-idx3-ubyte and "
        f"{prefix}-labels-idx1-ubyte (optionally .gz), or the book's folder {dataset}/<label>/"
        f"*.png (nothing is downloaded: get MNIST or Fashion-MNIST yourself, e.g. the book's "
        f"fashion_mnist_images.zip, and unpack it there)")


def create_data_mnist(path):
    """The book's ``create_data_mnist``: ``X, y, X_test, y_test`` as raw uint8 images
    (N, 28, 28) and uint8 labels, from the ``train`` and ``test`` splits in ``path``."""
    X, y = load_mnist_dataset("train", path)
    X_test, y_test = load_mnist_dataset("test", path)
    return X, y, X_test, y_test


# ------------------------------------------------------------------------------- IDX files

def _idx_files(path, dataset):
    """(images file, labels file) of one split in ``path``, or None when neither exists."""
    prefix = _IDX_PREFIX[dataset]
    found = [_find_first(path, [f"{prefix}-{what}{sep}{ext}{gz}"
                                for sep in ("-", ".") for gz in ("", ".gz")])
             for what, ext in (("images", "idx3-ubyte"), ("labels", "idx1-ubyte"))]
    if found == [None, None]:
        return None
    if None in found:
        have = next(f for f in found if f is not None)
        missing = ("images", "labels")[found.index(None)]
        raise FileNotFoundError(f"found {have!r} but not the matching {missing} file "
                                f"{prefix}-{missing}-idx{3 if missing == 'images' else 1}"
                                f"-ubyte[.gz] in {path!r}")
    return found


def _find_first(folder, names):
    """The first of ``names`` that exists in ``folder`` (of any file type: the reader refuses
    what is not a regular file), or None."""
    for name in names:
        candidate = os.path.join(folder, name)
        if os.path.exists(candidate):
            return candidate
    return None


def _read_idx_pair(images_file, labels_file):
    images = _read_idx(images_file, _IDX_IMAGES, (_SIDE, _SIDE))
    labels = _read_idx(labels_file, _IDX_LABELS)
    if len(images) != len(labels):
        raise ValueError(f"{images_file} holds {len(images)} images but {labels_file} holds "
                         f"{len(labels)} labels")
    return images, labels


def _read_idx(filename, magic, item_shape=()):
    """The uint8 array of an IDX file (big-endian header: magic number, then one uint32 per
    dimension), checking the magic number, the shape after the first dimension
    (``item_shape``) and that the data matches the header's size exactly.

    Only what the header announces is read: a raw file's size is compared with it before
    anything is allocated, and a gzipped file is decompressed in chunks up to that size and
    then one byte more (trailing data is refused without decompressing it all); a header
    claiming more than the gzip file can hold is refused before allocating."""
    try:
        with open_regular(filename, "load_mnist") as raw:
            file_size = os.fstat(raw.fileno()).st_size
            if filename.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="rb") as f:
                    return _read_idx_stream(f, filename, magic, item_shape,
                                            file_size * _DEFLATE_MAX_RATIO, gz=True)
            return _read_idx_stream(raw, filename, magic, item_shape, file_size, gz=False)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{filename}: cannot read the file ({exc})") from exc


def _read_idx_stream(f, filename, magic, item_shape, max_size, gz):
    """_read_idx on an open stream ``f`` that holds at most ``max_size`` bytes (exactly that
    many when not ``gz``)."""
    ndim = magic & 0xFF
    what = "images (idx3-ubyte)" if magic == _IDX_IMAGES else "labels (idx1-ubyte)"
    header = f.read(4 * (1 + ndim))
    if len(header) < 4 or int.from_bytes(header[:4], "big") != magic:
        found = header[:4].hex() or "an empty file"
        raise ValueError(f"{filename}: not an IDX file of {what}: expected magic number "
                         f"{magic:#010x}, found {found}")
    if len(header) < 4 * (1 + ndim):
        raise ValueError(f"{filename}: truncated IDX header ({len(header)} bytes)")
    shape = tuple(int.from_bytes(header[4 * i:4 * i + 4], "big") for i in range(1, ndim + 1))
    if item_shape and shape[1:] != item_shape:
        raise ValueError(f"{filename}: expected {'x'.join(map(str, item_shape))} images, got "
                         f"{'x'.join(map(str, shape[1:]))}")
    size = math.prod(shape)
    expected = len(header) + size
    if not gz and max_size != expected:
        problem = "truncated" if max_size < expected else "has trailing bytes"
        raise ValueError(f"{filename}: {problem}: the header says shape {shape}, "
                         f"{expected} bytes, but the file has {max_size}")
    if size > max_size:
        raise ValueError(f"{filename}: truncated: the header says shape {shape}, {size} bytes "
                         f"of data, more than a gzip file of {max_size // _DEFLATE_MAX_RATIO} "
                         "bytes can hold")
    data = np.empty(size, dtype=np.uint8)
    done = 0
    while done < size:
        chunk = f.read(min(_CHUNK, size - done))
        if not chunk:
            raise ValueError(f"{filename}: truncated: the header says shape {shape}, "
                             f"{expected} bytes, but the data ends after {len(header) + done}")
        data[done:done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        done += len(chunk)
    if f.read(1):  # (for gzip, reading to the end also checks the CRC and length)
        raise ValueError(f"{filename}: has trailing bytes: the header says shape {shape}, "
                         f"{expected} bytes, and more follow")
    return data.reshape(shape)


# ------------------------------------------------------------------------ the book's PNGs

def _read_png_folder(folder):
    """All images of ``folder/<label>/*`` (labels in numeric order, files in sorted order)."""
    Image = _pillow()
    labels = _label_folders(folder)
    images, y = [], []
    for label, name in labels:
        label_folder = os.path.join(folder, name)
        for file in sorted(os.listdir(label_folder)):
            filename = os.path.join(label_folder, file)
            if file.startswith(".") or os.path.isdir(filename):  # .DS_Store, ._0001.png
                continue
            images.append(_read_png(Image, filename))
            y.append(label)
    if not images:
        raise ValueError(f"{folder}: no images in the label folders "
                         f"{[name for _, name in labels]}")
    return np.stack(images), np.array(y, dtype=np.uint8)


def _label_folders(folder):
    """[(label, folder name)] sorted by label; every sub-folder must be named by an integer
    0..255 (files beside them are ignored)."""
    labels = []
    for name in os.listdir(folder):
        if name.startswith(".") or not os.path.isdir(os.path.join(folder, name)):
            continue
        if not (name.isdigit() and int(name) <= 255):
            raise ValueError(f"{os.path.join(folder, name)}: label folders must be named by "
                             f"an integer class label 0..255, got {name!r}")
        labels.append((int(name), name))
    if not labels:
        raise FileNotFoundError(f"{folder}: no label folders (expected {folder}/0/, "
                                f"{folder}/1/, ... holding the images)")
    return sorted(labels)


def _read_png(Image, filename):
    """One 28 x 28 image as uint8 grayscale (colour images are converted with Pillow's
    luma transform, like chapter 22's ``cv2.IMREAD_GRAYSCALE``). Size and mode come from the
    header and are checked before any pixel is decoded; an image over Pillow's
    decompression-bomb limit is refused like any other size."""
    with open_regular(filename, "load_mnist") as f:
        try:
            with warnings.catch_warnings():  # the warning below the limit's double
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(f)   # reads the header only
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ValueError(f"{filename}: expected a {_SIDE}x{_SIDE} image, got one too "
                             f"large to open ({exc})") from None
        except (OSError, SyntaxError, ValueError) as exc:  # unreadable or not an image
            raise ValueError(f"{filename}: cannot decode the image ({exc})") from exc
        with image:
            if image.size != (_SIDE, _SIDE):
                raise ValueError(f"{filename}: expected a {_SIDE}x{_SIDE} image, got "
                                 f"{image.size[0]}x{image.size[1]}")
            if image.mode in ("I", "I;16", "I;16B", "F"):
                raise ValueError(f"{filename}: expected an 8-bit image, got mode {image.mode!r}")
            try:
                image.load()
                return np.asarray(image if image.mode == "L" else image.convert("L"),
                                  dtype=np.uint8)
            except (OSError, SyntaxError, ValueError) as exc:  # truncated, corrupted
                raise ValueError(f"{filename}: cannot decode the image ({exc})") from exc


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError("reading the book's PNG folders needs Pillow: "
                          "pip install 'nnfs_fast[images]' (or pip install Pillow)") from exc
    return Image
