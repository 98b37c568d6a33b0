"""Real-data loaders of nnfs_fast.datasets: MNIST-format IDX files and the book's PNG folders
(made here on the fly, small), and scikit-learn's bundled digits."""
import gzip
import os

import numpy as np
import pytest

from nnfs_fast import datasets
from nnfs_fast.datasets import create_data_mnist, load_digits, load_mnist, load_mnist_dataset

IDX_NAMES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def make_images(n, seed):
    """n random 28x28 uint8 images and labels 0..9; pixel 0 of image i encodes i (mod 256)
    so that tests can check the order."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    images[0, 1, :2] = (0, 255)  # both ends of the pixel range
    return images, rng.integers(0, 10, size=n, dtype=np.uint8)


def idx_bytes(array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def write(path, data, gz=False):
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)


def write_idx(folder, splits, gz=False, names=IDX_NAMES):
    """splits: {"train": (images, labels), ...} -> IDX files in folder."""
    for split, (images, labels) in splits.items():
        image_name, label_name = names[split]
        suffix = ".gz" if gz else ""
        write(folder / (image_name + suffix), idx_bytes(images, 2051), gz)
        write(folder / (label_name + suffix), idx_bytes(labels, 2049), gz)


@pytest.fixture
def data():
    return {"train": make_images(23, 1), "test": make_images(7, 2)}


# --------------------------------------------------------------------------------- IDX

@pytest.mark.parametrize("gz", [False, True])
def test_idx_values_order_and_book_scaling(tmp_path, data, gz):
    write_idx(tmp_path, data, gz=gz)
    X, y, X_test, y_test = load_mnist(tmp_path)
    for (images, labels), (Xs, ys) in zip(data.values(), [(X, y), (X_test, y_test)]):
        assert Xs.dtype == np.float32 and Xs.shape == (len(images), 784)
        assert Xs.flags.c_contiguous
        assert ys.dtype == np.uint8
        np.testing.assert_array_equal(ys, labels)
        # the book's chapter-19 expression, bit for bit
        expected = (images.reshape(len(images), -1).astype(np.float32) - 127.5) / 127.5
        np.testing.assert_array_equal(Xs, expected)
    assert X[0, 28] == -1.0 and X[0, 29] == 1.0


def test_idx_unit_scale_and_kinds(tmp_path, data):
    write_idx(tmp_path, data)
    X, y = load_mnist(str(tmp_path), scale="unit", kind="train")
    np.testing.assert_allclose(X, data["train"][0].reshape(23, -1) / 255, rtol=1e-7)
    assert X.dtype == np.float32 and X.min() == 0.0 and X.max() == 1.0
    X_test, y_test = load_mnist(tmp_path, kind="test")
    np.testing.assert_array_equal(y_test, data["test"][1])
    assert X_test.shape == (7, 784)


def test_book_names_return_raw_images(tmp_path, data):
    write_idx(tmp_path, data, gz=True)
    X, y, X_test, y_test = create_data_mnist(tmp_path)
    assert X.dtype == np.uint8 and X.shape == (23, 28, 28)
    np.testing.assert_array_equal(X, data["train"][0])
    np.testing.assert_array_equal(y_test, data["test"][1])
    images, labels = load_mnist_dataset("test", tmp_path)
    np.testing.assert_array_equal(images, data["test"][0])


def test_idx_dotted_names(tmp_path, data):
    names = {"train": ("train-images.idx3-ubyte", "train-labels.idx1-ubyte"),
             "test": ("t10k-images.idx3-ubyte", "t10k-labels.idx1-ubyte")}
    write_idx(tmp_path, data, names=names)
    np.testing.assert_array_equal(load_mnist(tmp_path, kind="train")[1], data["train"][1])


def test_only_train_files_present(tmp_path, data):
    write_idx(tmp_path, {"train": data["train"]})
    assert len(load_mnist(tmp_path, kind="train")[0]) == 23
    with pytest.raises(FileNotFoundError, match="no test data.*t10k-images-idx3-ubyte"):
        load_mnist(tmp_path)


def test_missing_labels_file(tmp_path, data):
    write_idx(tmp_path, data)
    os.remove(tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.*labels"):
        load_mnist(tmp_path)


def test_mismatched_counts(tmp_path, data):
    images, labels = data["train"]
    write_idx(tmp_path, {"train": (images, labels[:-1])})
    with pytest.raises(ValueError, match="23 images but .*train-labels-idx1-ubyte holds 22"):
        load_mnist(tmp_path, kind="train")


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic(tmp_path, data, gz):
    write_idx(tmp_path, data, gz=gz)
    suffix = ".gz" if gz else ""
    # a labels file where the images file should be
    write(tmp_path / ("train-images-idx3-ubyte" + suffix), idx_bytes(data["train"][1], 2049), gz)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.*magic number 0x00000803, "
                                         r"found 00000801"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("cut", [1, 10, 500])
def test_truncated_file(tmp_path, data, cut):
    write_idx(tmp_path, data)
    full = idx_bytes(data["test"][0], 2051)
    write(tmp_path / "t10k-images-idx3-ubyte", full[:len(full) - cut])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: truncated"):
        load_mnist(tmp_path, kind="test")


def test_truncated_header_and_empty_file(tmp_path, data):
    write_idx(tmp_path, data)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(data["test"][1], 2049)[:6])
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: truncated IDX header"):
        load_mnist(tmp_path, kind="test")
    write(tmp_path / "t10k-labels-idx1-ubyte", b"")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: not an IDX file.*empty"):
        load_mnist(tmp_path, kind="test")


def test_trailing_bytes(tmp_path, data):
    write_idx(tmp_path, data)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(data["test"][1], 2049) + b"\0")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: has trailing bytes"):
        load_mnist(tmp_path, kind="test")


def test_corrupt_and_truncated_gzip(tmp_path, data):
    write_idx(tmp_path, data, gz=True)
    name = tmp_path / "train-labels-idx1-ubyte.gz"
    raw = name.read_bytes()
    write(name, raw[:len(raw) // 2])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: cannot read"):
        load_mnist(tmp_path, kind="train")
    write(name, b"not gzip at all")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz: cannot read"):
        load_mnist(tmp_path, kind="train")


def test_not_28x28(tmp_path, data):
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    write_idx(tmp_path, {"test": (images, np.zeros(3, dtype=np.uint8))})
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte: expected 28x28 images, "
                                         "got 8x8"):
        load_mnist(tmp_path, kind="test")


def test_bad_arguments(tmp_path, data):
    write_idx(tmp_path, data)
    with pytest.raises(ValueError, match="scale must be one of.*'float'"):
        load_mnist(tmp_path, scale="float")
    with pytest.raises(ValueError, match="kind must be one of.*'validation'"):
        load_mnist(tmp_path, kind="validation")
    with pytest.raises(ValueError, match="dataset must be 'train' or 'test', got 'val'"):
        load_mnist_dataset("val", tmp_path)


def test_missing_folder_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="MNIST data folder not found.*nowhere"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no train data.*nothing is downloaded"):
        load_mnist(tmp_path)


def test_nothing_downloads():
    """The loaders never open a network connection (no URL anywhere in their modules)."""
    import nnfs_fast.datasets.digits
    import nnfs_fast.datasets.mnist
    for module in (nnfs_fast.datasets.mnist, nnfs_fast.datasets.digits):
        source = open(module.__file__, encoding="utf-8").read()
        assert "http" not in source and "urllib" not in source and "socket" not in source


# ----------------------------------------------------------------------- book PNG folders

def write_png_folders(root, splits, names=lambda i: f"{i:04d}.png"):
    """The book's layout: root/<split>/<label>/NNNN.png, image i of a split named names(i)."""
    Image = pytest.importorskip("PIL.Image")
    for split, (images, labels) in splits.items():
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, mode="L").save(folder / names(i))


def expected_png_order(images, labels, names=lambda i: f"{i:04d}.png"):
    """Label folders in numeric order, files in sorted name order."""
    order = sorted(range(len(labels)), key=lambda i: (int(labels[i]), names(i)))
    return images[order], labels[order]


def test_png_folders_deterministic_order_and_scaling(tmp_path, data):
    pytest.importorskip("PIL")
    write_png_folders(tmp_path, data)
    X, y, X_test, y_test = load_mnist(tmp_path)
    for (images, labels), (Xs, ys) in zip(data.values(), [(X, y), (X_test, y_test)]):
        images, labels = expected_png_order(images, labels)
        np.testing.assert_array_equal(ys, labels)
        assert ys.dtype == np.uint8
        np.testing.assert_array_equal(
            Xs, (images.reshape(len(images), -1).astype(np.float32) - 127.5) / 127.5)
    raw, labels = load_mnist_dataset("train", tmp_path)
    assert raw.dtype == np.uint8 and raw.shape == (23, 28, 28)


def test_png_label_folders_sort_numerically(tmp_path):
    """Folder "10" comes after "9" (a string sort would put it after "1")."""
    pytest.importorskip("PIL")
    images, _ = make_images(4, 3)
    labels = np.array([10, 9, 1, 2], dtype=np.uint8)
    write_png_folders(tmp_path, {"train": (images, labels)})
    X, y = load_mnist_dataset("train", tmp_path)
    np.testing.assert_array_equal(y, [1, 2, 9, 10])
    np.testing.assert_array_equal(X, images[[2, 3, 1, 0]])


def test_png_hidden_files_skipped_and_rgb_converted(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    images, labels = make_images(3, 4)
    write_png_folders(tmp_path, {"test": (images, labels)})
    folder = tmp_path / "test" / str(labels[0])
    (folder / ".DS_Store").write_bytes(b"\0\1junk")
    (tmp_path / "test" / "README.txt").write_text("files beside the label folders are ignored")
    gray = np.full((28, 28), 77, dtype=np.uint8)
    Image.fromarray(np.stack([gray] * 3, axis=-1), mode="RGB").save(folder / "zzzz.png")
    X, y = load_mnist_dataset("test", tmp_path)
    assert len(X) == 4
    last = np.flatnonzero(y == labels[0])[-1]
    np.testing.assert_array_equal(X[last], gray)


def test_png_not_28x28(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "train" / "3").mkdir(parents=True)
    Image.new("L", (28, 27)).save(tmp_path / "train" / "3" / "0001.png")
    with pytest.raises(ValueError, match=r"3.0001\.png: expected a 28x28 image, got 28x27"):
        load_mnist(tmp_path, kind="train")


def test_png_16_bit(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "train" / "3").mkdir(parents=True)
    Image.new("I;16", (28, 28)).save(tmp_path / "train" / "3" / "0001.png")
    with pytest.raises(ValueError, match="0001.png: expected an 8-bit image"):
        load_mnist(tmp_path, kind="train")


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n broken", "half"])
def test_png_corrupt_or_truncated(tmp_path, content):
    pytest.importorskip("PIL")
    images, labels = make_images(2, 5)
    write_png_folders(tmp_path, {"train": (images, labels)})
    target = tmp_path / "train" / str(labels[1]) / "0001.png"
    if content == "half":
        content = target.read_bytes()[:len(target.read_bytes()) // 2]
    target.write_bytes(content)
    with pytest.raises(ValueError, match="0001.png: cannot decode the image"):
        load_mnist(tmp_path, kind="train")


def test_png_bad_label_folder(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "train" / "shoes").mkdir(parents=True)
    with pytest.raises(ValueError, match="shoes: label folders must be named by an integer"):
        load_mnist(tmp_path, kind="train")


def test_png_no_label_folders_or_no_images(tmp_path):
    pytest.importorskip("PIL")
    (tmp_path / "test").mkdir()
    with pytest.raises(FileNotFoundError, match="no label folders"):
        load_mnist(tmp_path, kind="test")
    (tmp_path / "test" / "0").mkdir()
    with pytest.raises(ValueError, match="no images in the label folders"):
        load_mnist(tmp_path, kind="test")


def test_png_without_pillow(tmp_path, monkeypatch):
    (tmp_path / "train" / "0").mkdir(parents=True)
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # import PIL fails
    with pytest.raises(ImportError, match=r"needs Pillow: pip install 'nnfs_fast\[images\]'"):
        load_mnist(tmp_path, kind="train")


def test_idx_preferred_over_png_folders(tmp_path, data):
    write_idx(tmp_path, data)
    (tmp_path / "train" / "0").mkdir(parents=True)  # would fail if read
    np.testing.assert_array_equal(load_mnist(tmp_path, kind="train")[1], data["train"][1])


# ----------------------------------------------------------------------------- digits

def test_digits_shapes_scaling_and_split():
    pytest.importorskip("sklearn")
    X, y, X_test, y_test = load_digits()
    assert X.shape == (1437, 64) and X_test.shape == (360, 64)
    assert X.dtype == X_test.dtype == np.float32 and y.dtype == y_test.dtype == np.uint8
    assert X.flags.c_contiguous and X.min() == -1.0 and X.max() == 1.0
    assert sorted(np.unique(np.concatenate([y, y_test]))) == list(range(10))
    Xu, yu, _, _ = load_digits(scale="unit")
    np.testing.assert_array_equal(yu, y)
    np.testing.assert_allclose(Xu, (X + 1) / 2, atol=1e-7)
    assert Xu.min() == 0.0 and Xu.max() == 1.0


def test_digits_matches_sklearn_and_own_permutation():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    digits = sklearn_datasets.load_digits()
    X, y, X_test, y_test = load_digits(test_size=0.25, seed=7)
    order = np.random.RandomState(7).permutation(1797)
    n_test = 450  # ceil(0.25 * 1797)
    np.testing.assert_array_equal(X_test, (digits.data[order[:n_test]] - 8) / 8)
    np.testing.assert_array_equal(y, digits.target[order[n_test:]])


def test_digits_leaves_global_rng_alone_and_is_deterministic():
    pytest.importorskip("sklearn")
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = load_digits(seed=3)
    assert np.array_equal(np.random.get_state()[1], before)
    second = load_digits(seed=3)
    other = load_digits(seed=4)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[1], other[1])


@pytest.mark.parametrize("test_size", [0, 1, 1.5, -0.1, True, "0.2", 0.9999])
def test_digits_bad_test_size(test_size):
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=test_size)


def test_digits_bad_scale():
    with pytest.raises(ValueError, match="scale must be one of.*'raw'"):
        load_digits(scale="raw")


def test_digits_without_sklearn(monkeypatch):
    import importlib.util
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "sklearn" else real_find_spec(name, *a))
    with pytest.raises(ImportError, match=r"pip install 'nnfs_fast\[digits\]'"):
        load_digits()


def test_reexported_from_datasets():
    for name in ("load_mnist", "load_mnist_dataset", "create_data_mnist", "load_digits"):
        assert callable(getattr(datasets, name))
