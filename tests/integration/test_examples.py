"""The example scripts in examples/: each runs in quick mode in a subprocess and prints what the
book prints; the article's network and the digits classifier reach their accuracy bars."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="examples/ not in this tree")
HAVE_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_sklearn = pytest.mark.skipif(not HAVE_SKLEARN, reason="scikit-learn (digits) missing")

# The chapter-3 output printed by the book
CH3_BOOK = np.array([
    [0.0000000e+00, 0.0000000e+00, 0.0000000e+00],
    [-1.0475188e-04, 1.1395361e-04, -4.7983500e-05],
    [-2.7414842e-04, 3.1729150e-04, -8.6921798e-05],
    [-4.2188365e-04, 5.2666257e-04, -5.5912682e-05],
    [-5.7707680e-04, 7.1401405e-04, -8.9430439e-05]], dtype=np.float32)
FLOAT = r"-?\d+\.\d+"
BOOK_LINE = re.compile(rf"^epoch: \d+, acc: {FLOAT}, loss: {FLOAT} \(data_loss: {FLOAT}, "
                       rf"reg_loss: {FLOAT}\), lr: [\d.e-]+$", re.M)


def run_example(script, *args, cwd=None, timeout=120):
    """stdout of ``python examples/<script> args`` (one OpenMP thread: the test is about the
    script, and a shared CI machine makes thread teams slow)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(EXAMPLES / script), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def load_example(name):
    """Import an example script as a module (its folder on sys.path for ``_common``)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_fake_mnist(folder, n_train=300, n_test=60, seed=0):
    """Small MNIST-format IDX files (gzipped): class c images are bright in row band c, so a
    network can learn them."""
    import gzip
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 * label:2 * label + 3, 4:24] = 250
        for kind, array, magic in (("images-idx3", images, 2051), ("labels-idx1", labels, 2049)):
            header = magic.to_bytes(4, "big") + b"".join(
                d.to_bytes(4, "big") for d in array.shape)
            with gzip.open(folder / f"{prefix}-{kind}-ubyte.gz", "wb") as f:
                f.write(header + array.tobytes())
    return folder


# ------------------------------------------------------------------------ book chapters

def test_ch03_prints_the_books_layer_output():
    out = run_example("ch03_layer.py")
    rows = re.findall(r"\[\[?\s*([-\d.e+ ]+)\]", out)
    printed = np.array([[float(v) for v in row.split()] for row in rows], dtype=np.float32)
    assert printed.shape == (5, 3)
    # float32 sums against the book's float64 dot rounded once: within 2 ulp (README.md,
    # Compatibility notes)
    ulp = np.spacing(np.abs(CH3_BOOK))
    assert np.all(np.abs(printed - CH3_BOOK) <= 2 * ulp), printed


def test_ch10_four_optimizers(tmp_path):
    figure = tmp_path / "losses.png"
    out = run_example("ch10_optimizers.py", "--quick", "--plot", figure)
    lines = re.findall(rf"^epoch: (\d+), acc: ({FLOAT}), loss: ({FLOAT}), lr: (\S+)$", out, re.M)
    assert len(lines) == 4 * 3  # epochs 0, 100, 200 for each optimizer
    # same seed, data and initial weights for all four: the book's epoch-0 line
    assert [line[1:3] for line in lines[::3]] == [("0.360", "1.099")] * 4
    # learning rates are the exact decimal reprs of lr / (1 + decay * (epoch - 1))
    assert lines[2][3] == repr(1. * (1. / (1. + 1e-3 * 199)))            # SGD, epoch 200
    assert lines[-1][3] == repr(0.05 * (1. / (1. + 5e-7 * 199)))         # Adam, epoch 200
    assert len(re.findall(rf"^validation, acc: {FLOAT}, loss: {FLOAT}$", out, re.M)) == 4
    for name in ("SGD", "Adagrad", "RMSprop", "Adam"):
        assert re.search(rf"^{name}\s+{FLOAT}\s+{FLOAT}\s+{FLOAT}\s+{FLOAT}\s+{FLOAT}s$",
                         out, re.M)
    assert figure.exists() == HAVE_MATPLOTLIB


def test_ch14_15_regularization_and_dropout():
    out = run_example("ch14_15_regularization_dropout.py", "--quick")
    assert len(BOOK_LINE.findall(out)) == 2 * 3
    assert "Layer_Dropout(rate=0.1)" in out
    assert len(re.findall(rf"^validation, acc: {FLOAT}, loss: {FLOAT}$", out, re.M)) == 2
    # the regularization loss is reported and non-zero after training starts
    assert re.search(r"^epoch: 200, .*reg_loss: 0\.0[1-9]\d", out, re.M)


def test_ch16_binary():
    out = run_example("ch16_binary.py", "--quick")
    lines = BOOK_LINE.findall(out)
    assert len(lines) == 3
    assert lines[0].startswith("epoch: 0, acc: 0.500, loss: 0.693")  # ln 2 at the start
    assert re.search(rf"^validation, acc: {FLOAT}, loss: {FLOAT}$", out, re.M)


def test_ch17_regression(tmp_path):
    figure = tmp_path / "sine.png"
    out = run_example("ch17_regression.py", "--quick", "--plot", figure)
    lines = BOOK_LINE.findall(out)
    assert len(lines) == 3 and lines[0].endswith("lr: 0.005")
    error = float(re.search(r"mean absolute error (\S+)", out).group(1))
    assert error < 0.2  # 200 epochs already follow the sine roughly
    assert figure.exists() == HAVE_MATPLOTLIB


def test_ch17_initial_weights_are_the_books():
    """0.1 * randn drawn from the same RNG position as the book (float32 like nnfs.init)."""
    module = load_example("ch17_regression")
    np.random.seed(5)
    layer = module.layer_dense_ch17(3, 4)
    after = np.random.standard_normal()
    np.random.seed(5)
    expected = np.float32(0.1) * np.random.randn(3, 4).astype(np.float32)
    np.testing.assert_array_equal(layer.weights, expected)
    assert np.random.standard_normal() == after


# --------------------------------------------------------------------- Model on images

def evaluate_lines(out):
    return re.findall(rf"^validation, acc: ({FLOAT}), loss: ({FLOAT})$", out, re.M)


@needs_sklearn
def test_ch18_22_model_on_digits(tmp_path):
    figure = tmp_path / "digits.png"
    out = run_example("ch18_22_model.py", "--quick", "--save-dir", tmp_path, "--plot", figure)
    assert re.search(r"^training on 1437 samples of 64 features, validating on 360$", out, re.M)
    assert len(re.findall(r"^epoch: \d+$", out, re.M)) == 3
    # after training: evaluate, then again after load_parameters and after Model.load
    final = evaluate_lines(out)[-3:]
    assert len(set(final)) == 1, final
    assert (tmp_path / "digits.model").exists() and (tmp_path / "digits.parms").exists()
    assert len(re.findall(r"^predicted: \d\s+true: \d$", out, re.M)) == 5
    assert "confusion matrix" in out
    assert figure.exists() == HAVE_MATPLOTLIB


def test_ch18_22_model_on_fashion_mnist_files(tmp_path):
    data = write_fake_mnist(tmp_path / "fashion_mnist_idx")
    out = run_example("ch18_22_model.py", "--quick", "--data", data, "--epochs", "10",
                      "--save-dir", tmp_path)
    assert re.search(r"^training on 300 samples of 784 features, validating on 60$", out, re.M)
    assert len(re.findall(r"^step: 2, acc: .*lr: ", out, re.M)) == 10  # 128-batches: 0..2
    final = evaluate_lines(out)[-3:]
    assert len(set(final)) == 1
    assert float(final[0][0]) > 0.5  # the bands are easy to learn
    assert re.search(r"^predicted: (T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|"
                     r"Sneaker|Bag|Ankle boot)\s+true: ", out, re.M)
    assert (tmp_path / "fashion_mnist.model").exists()


def test_ch18_22_model_on_png_folders_and_image(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    from nnfs_fast.datasets import create_data_mnist
    X, y, X_test, y_test = create_data_mnist(write_fake_mnist(tmp_path / "idx", 120, 30))
    root = tmp_path / "fashion_mnist_images"
    for split, images, labels in (("train", X, y), ("test", X_test, y_test)):
        for i, (image, label) in enumerate(zip(images, labels)):
            (root / split / str(label)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / split / str(label) / f"{i:04d}.png")
    picture = tmp_path / "pants.png"
    Image.fromarray(255 - X_test[0]).resize((56, 56)).convert("RGB").save(picture)
    out = run_example("ch18_22_model.py", "--quick", "--data", root, "--image", picture,
                      "--save-dir", tmp_path)
    assert re.search(r"^training on 120 samples of 784 features, validating on 30$", out, re.M)
    assert re.search(rf"^{re.escape(str(picture))}: \S", out, re.M)


# ------------------------------------------------------------------- the article's network

@needs_sklearn
def test_article_example_quick(tmp_path):
    figure = tmp_path / "article.png"
    out = run_example("article_mnist.py", "--quick", "--plot", figure)
    lines = re.findall(r"^Epoch: (\d+), Time Spent: \d+\.\d\ds, Accuracy: (\d+\.\d\d)%$",
                       out, re.M)
    assert [int(epoch) for epoch, _ in lines] == [1, 2]
    assert 0 <= float(lines[-1][1]) <= 100
    assert "sizes=[64, 128, 64, 10]" in out and "activation='sigmoid'" in out
    assert figure.exists() == HAVE_MATPLOTLIB


def test_article_example_on_mnist_files(tmp_path):
    data = write_fake_mnist(tmp_path / "mnist")
    out = run_example("article_mnist.py", "--mnist", data, "--sizes", "784,32,10",
                      "--batch-size", "10", "--epochs", "3", "--l-rate", "0.5",
                      "--activation", "relu")
    assert "sizes=[784, 32, 10]" in out and "activation='relu'" in out
    accuracy = float(re.findall(r"Accuracy: (\d+\.\d\d)%", out)[-1])
    assert accuracy > 50


def digits():
    from nnfs_fast.datasets import load_digits
    return load_digits(scale="unit", test_size=0.15, seed=0)


@pytest.fixture
def one_thread():
    """Train on one thread: these tests are about accuracy, and thread teams on a busy
    2-core machine cost far more than they save at these sizes."""
    import nnfs_fast
    before = nnfs_fast.get_num_threads()
    nnfs_fast.set_num_threads(1)
    yield
    nnfs_fast.set_num_threads(before)


@needs_sklearn
@pytest.mark.parametrize("sizes, activation, batch_size, l_rate, epochs", [
    ([64, 128, 64, 10], "sigmoid", 32, 1.0, 30),
    ([64, 32, 10], "sigmoid", 16, 0.5, 30),
    ([64, 128, 64, 10], "relu", 32, 0.1, 20),
])
def test_article_network_reaches_93_percent_on_digits(sizes, activation, batch_size, l_rate,
                                                      epochs, one_thread):
    module = load_example("article_mnist")
    x, y, x_val, y_val = digits()
    dnn = module.DeepNeuralNetwork(sizes=sizes, epochs=epochs, l_rate=l_rate,
                                   batch_size=batch_size, activation=activation)
    history = dnn.train(x, y, x_val, y_val, verbose=False)
    assert history["val_acc"][-1] >= 0.93, history["val_acc"]
    assert len(history["loss"]) == epochs and history["loss"][-1] < history["loss"][0]


@needs_sklearn
@pytest.mark.slow
def test_article_network_per_sample_sgd_on_digits(one_thread):
    """The article's own setting: sigmoid, per-sample SGD (the example's default run)."""
    module = load_example("article_mnist")
    x, y, x_val, y_val = digits()
    dnn = module.DeepNeuralNetwork(sizes=[64, 128, 64, 10], epochs=10, l_rate=0.05)
    assert dnn.train(x, y, x_val, y_val, verbose=False)["val_acc"][-1] >= 0.93


def test_article_network_is_general(one_thread):
    """Any sizes (even no hidden layer), one-hot or index labels, clear errors."""
    module = load_example("article_mnist")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.uint8)
    for sizes in ([5, 2], [5, 7, 2], [5, 6, 4, 3, 2]):
        dnn = module.DeepNeuralNetwork(sizes=sizes, epochs=2, l_rate=0.1, batch_size=8)
        dense = [layer for layer in dnn.params if hasattr(layer, "weights")]
        assert [layer.weights.shape for layer in dense] == list(zip(sizes[:-1], sizes[1:]))
        assert all(layer.biases.shape == (1, n) for layer, n in zip(dense, sizes[1:]))
        dnn.train(x, np.eye(2, dtype=np.float32)[y], x, y, verbose=False)
        assert dnn.forward_pass(x).shape == (40, 2)
    with pytest.raises(ValueError, match="sizes"):
        module.DeepNeuralNetwork(sizes=[5])
    with pytest.raises(ValueError, match="activation"):
        module.DeepNeuralNetwork(sizes=[5, 2], activation="tanh")


@needs_sklearn
def test_dense_relu_dense_adam_reaches_95_percent_on_digits(one_thread):
    """Dense(64,128)-ReLU-Dense(128,10) with Adam (the digits run of ch18_22_model.py)."""
    from nnfs_fast.accuracy import Accuracy_Categorical
    from nnfs_fast.activations import Activation_ReLU, Activation_Softmax
    from nnfs_fast.datasets import load_digits
    from nnfs_fast.layers import Layer_Dense
    from nnfs_fast.losses import Loss_CategoricalCrossentropy
    from nnfs_fast.model import Model
    from nnfs_fast.optimizers import Optimizer_Adam

    X, y, X_test, y_test = load_digits()
    np.random.seed(0)
    model = Model()
    for layer in (Layer_Dense(64, 128), Activation_ReLU(), Layer_Dense(128, 10),
                  Activation_Softmax()):
        model.add(layer)
    model.set(loss=Loss_CategoricalCrossentropy(),
              optimizer=Optimizer_Adam(learning_rate=0.005, decay=1e-3),
              accuracy=Accuracy_Categorical())
    model.finalize()
    history = model.train(X, y, validation_data=(X_test, y_test), epochs=30, batch_size=32,
                          verbose=False)
    assert history["val_acc"][-1] >= 0.95, history["val_acc"]
