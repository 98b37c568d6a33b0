"""Every user error of the command line is one line on stderr and exit status 2, never a
traceback (docs/CLI.md): one table of arguments and damaged input files, run in-process
through ``nnfs_fast.cli.main`` (fast: nothing is trained, every row is refused before).

Each row: an id, the argument list (``{d}`` is the folder of the files below, ``{m}`` a saved
model with 2 inputs and 3 classes) and a fragment the error line must contain.
"""
import importlib
import os
import struct
import sys
import zlib

import numpy as np
import pytest

from nnfs_fast import (
    Accuracy_Categorical,
    Activation_ReLU,
    Activation_Softmax,
    Layer_Dense,
    Loss_CategoricalCrossentropy,
    Model,
    Optimizer_Adam,
)

cli = importlib.import_module("nnfs_fast.cli.main")
BIG = 10 ** 9


def _png_header(side):
    """A PNG announcing side x side 8-bit gray pixels, with a few bytes of data."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0,
                                                              0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b""))


def _npy_bytes(header_shape, n_values):
    """An .npy file whose header announces ``header_shape`` but holds ``n_values`` floats."""
    import io
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False,
                                                  "shape": header_shape})
    return buffer.getvalue() + np.zeros(n_values, np.float32).tobytes()


# name -> bytes, or an array to np.save (.npy) / a dict to np.savez (.npz)
FILES = {
    "empty.csv": b"",
    "blank.csv": b"\n  \r\n\n",
    "header_only.csv": b"x0,x1\n",
    "nan.csv": b"x0,x1\n0.1,0.2\nnan,0.3\n",
    "inf_y.csv": b"1,2,0\n3,4,inf\n",
    "ragged.csv": b"0.1,0.2\n0.3\n",
    "mixed_first_row.csv": b"0.1,0.2,x\n0.3,0.4,1\n",
    "word.csv": b"1,2\n3,two\n",
    "one_column.csv": b"1\n2\n3\n",
    "latin1.csv": "\u00e9t\u00e9,1\n".encode("latin-1") + b"1,\xff\n",
    "ids.csv": b"".join(b"%d,%d,%d\n" % (i, i, 5_000_000 + i) for i in range(10)),
    "empty.npy": b"",
    "empty.npz": b"",
    "garbage.npz": b"PK\x03\x04 not really a zip archive",
    "garbage.npy": b"\x93NUMPY garbage",
    "announces_more.npy": _npy_bytes((10 ** 6, 2), 4),
    "objects.npy": np.array([1, None], dtype=object),
    "strings.npy": np.array([["a", "b"]]),
    "rows0.npy": np.zeros((0, 2), np.float32),
    "nan.npy": np.array([[0, 0], [0, np.nan]], np.float32),
    "too_big.npy": np.array([[0.0, 1e300]]),
    "three_d.npy": np.zeros((2, 2, 2), np.float32),
    "five.npy": np.zeros((3, 5), np.float32),
    "two_arrays.npz": {"a": np.zeros((2, 2)), "b": np.zeros((2, 2))},
    "no_y.npz": {"X": np.zeros((4, 2))},
    "short_y.npz": {"X": np.zeros((4, 2)), "y": np.zeros(3)},
    "nan_X.npz": {"X": np.array([[0.0, 1.0], [np.nan, 1.0]]), "y": np.zeros(2)},
    "ids.npz": {"X": np.zeros((10, 2)), "y": 5_000_000 + np.arange(10)},
    "huge_label.npz": {"X": np.zeros((10, 2)), "y": np.full(10, 1e300)},
    "scalar_y.npz": {"X": np.zeros((4, 2)), "y": np.float64(1)},
    "text_y.npz": {"X": np.zeros((2, 2)), "y": np.array(["a", "b"])},
    "garbage.model": b"not a model at all",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The damaged files, a saved model ({m}) and a folder ({d}/folder.csv)."""
    d = tmp_path_factory.mktemp("cli_errors")
    for name, content in FILES.items():
        if isinstance(content, bytes):
            (d / name).write_bytes(content)
        elif isinstance(content, dict):
            np.savez(d / name, **content)
        else:
            np.save(d / name, content)
    os.mkdir(d / "folder.csv")
    (d / "bomb" / "train" / "3").mkdir(parents=True)      # Pillow's decompression-bomb size
    (d / "bomb" / "train" / "3" / "big.png").write_bytes(_png_header(100_000))
    np.save(d / "X.npy", np.zeros((3, 2), np.float32))
    np.random.seed(0)
    model = Model()
    for layer in (Layer_Dense(2, 4), Activation_ReLU(), Layer_Dense(4, 3),
                  Activation_Softmax()):
        model.add(layer)
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(),
              accuracy=Accuracy_Categorical())
    model.finalize()
    model.save(d / "m.model")
    return d


ROWS = []


def row(id, args, fragment, needs=None):
    """One case; ``needs``: an optional module the case needs (skipped without it)."""
    from importlib.util import find_spec
    marks = [pytest.mark.skipif(find_spec(needs) is None, reason=f"needs {needs}")] \
        if needs else []
    ROWS.append(pytest.param(args, fragment, id=id, marks=marks))


# ----------------------------------------------------------------------------- arguments
row("train --threads 99999999999", "train --threads 99999999999",
    "argument --threads: expected an integer in [1, 1024], got '99999999999'")
row("train --threads 0", "train --threads 0", "argument --threads")
row("predict --threads huge", "predict {m} {d}/X.npy --threads 99999999999",
    "argument --threads")
row("bench --threads 0", "bench --threads 1 0", "argument --threads")
row("predict --batch-size -1", "predict {m} {d}/X.npy --batch-size -1",
    "argument --batch-size: expected an integer >= 0, got '-1'")
row("train --batch-size -1", "train --batch-size -1", "argument --batch-size")
row("train --l2 nan", "train --l2 nan", "argument --l2: expected a finite number >= 0, got 'nan'")
row("train --l2 inf", "train --l2 inf", "argument --l2: expected a finite number")
row("train --l1 -1", "train --l1 -1", "argument --l1")
row("train --lr nan", "train --lr nan", "argument --lr: expected a finite number")
row("train --lr -1", "train --lr -1", "learning_rate must be a finite number in (0, inf)")
row("train --decay inf", "train --decay inf", "argument --decay")
row("train --epsilon 0", "train --epsilon 0", "epsilon")
row("train --beta1 1.5", "train --beta1 1.5", "beta_1")
row("train --momentum with adam", "train --momentum 0.9", "--momentum applies to --optimizer")
row("train --dropout 1", "train --dropout 1", "--dropout must be in [0, 1)")
row("train --dropout nan", "train --dropout nan", "argument --dropout")
row("train --val-split 0", "train --val-split 0", "argument --val-split")
row("train --val-split nan", "train --val-split nan", "argument --val-split")
row("train --epochs 0", "train --epochs 0", "argument --epochs")
row("train --print-every 0", "train --print-every 0", "argument --print-every")
row("train --seed -1", "train --seed -1", "argument --seed")
row("train --seed 2**32", f"train --seed {2 ** 32}", "argument --seed")
row("train --samples abc", "train --samples abc", "expected an integer >= 1, got 'abc'")
row("train --hidden 0", "train --hidden 8 0", "argument --hidden")
row("train --classes 300", "train --classes 300", "at most 256")
row("bench --repeat 0", "bench --repeat 0", "argument --repeat")
row("bench --seconds 0", "bench --seconds 0", "argument --seconds")
row("bench --seconds nan", "bench --seconds nan", "argument --seconds")
row("no command", "", "required")

# ------------------------------------------------------------------------- predict input
row("predict empty.csv", "predict {m} {d}/empty.csv", "empty.csv: no data rows")
row("predict blank.csv", "predict {m} {d}/blank.csv", "blank.csv: no data rows")
row("predict header_only.csv", "predict {m} {d}/header_only.csv",
    "header_only.csv: no data rows after the header (line 1)")
row("predict nan.csv", "predict {m} {d}/nan.csv",
    "nan.csv: line 3, column 1: nan is not a finite number")
row("predict ragged.csv", "predict {m} {d}/ragged.csv",
    "ragged.csv: line 2 has 1 field, expected 2 like line 1")
row("predict mixed first row", "predict {m} {d}/mixed_first_row.csv",
    "line 1, column 3: 'x' is not a number (if line 1 is a header")
row("predict word.csv", "predict {m} {d}/word.csv", "line 2, column 2: 'two' is not a number")
row("predict latin1.csv", "predict {m} {d}/latin1.csv --header", "line 2, column 2:")
row("predict empty.npy", "predict {m} {d}/empty.npy", "empty.npy: not a readable .npy file")
row("predict garbage.npy", "predict {m} {d}/garbage.npy", "not a readable .npy file")
row("predict announces_more.npy", "predict {m} {d}/announces_more.npy",
    "not a readable .npy file")
row("predict objects.npy", "predict {m} {d}/objects.npy", "not a readable .npy file")
row("predict strings.npy", "predict {m} {d}/strings.npy", "expected numbers, got dtype <U1")
row("predict rows0.npy", "predict {m} {d}/rows0.npy", "rows0.npy: no samples (0 rows)")
row("predict nan.npy", "predict {m} {d}/nan.npy",
    "nan.npy: X[1, 1] is nan: expected finite numbers (row 1, counting from 0)")
row("predict too_big.npy", "predict {m} {d}/too_big.npy", "X[0, 1] is 1e+300, beyond float32")
row("predict three_d.npy", "predict {m} {d}/three_d.npy", "expected a 2-D array")
row("predict five.npy", "predict {m} {d}/five.npy",
    "5 features per sample, but the model expects 2")
row("predict empty.npz", "predict {m} {d}/empty.npz", "empty.npz: not a readable .npz file")
row("predict garbage.npz", "predict {m} {d}/garbage.npz", "not a readable .npz file")
row("predict two_arrays.npz", "predict {m} {d}/two_arrays.npz", "expected an array named X")
row("predict folder", "predict {m} {d}/folder.csv", "folder.csv: a directory, not a regular")
row("predict missing input", "predict {m} {d}/missing.csv", "missing.csv: no such file")
row("predict .xyz input", "predict {m} {d}/m.model", "expected a .npy, .npz or .csv file")
row("predict garbage model", "predict {d}/garbage.model {d}/X.npy", "cannot load the model")
row("predict missing model", "predict {d}/none.model {d}/X.npy", "no such model file")

# -------------------------------------------------------------------------- train --data
row("train empty.csv", "train --data {d}/empty.csv", "empty.csv: no data rows")
row("train header_only.csv", "train --data {d}/header_only.csv", "no data rows after the header")
row("train one_column.csv", "train --data {d}/one_column.csv",
    "expected feature columns and a target column, got 1 column")
row("train inf target", "train --data {d}/inf_y.csv",
    "inf_y.csv: line 2, column 3: inf is not a finite number")
row("train ragged.csv", "train --data {d}/ragged.csv", "line 2 has 1 field")
row("train huge float labels", "train --data {d}/huge_label.npz",
    "the largest class label is 1e+300")
row("train empty.npz", "train --data {d}/empty.npz", "not a readable .npz file")
row("train no_y.npz", "train --data {d}/no_y.npz", "no array named y")
row("train short_y.npz", "train --data {d}/short_y.npz", "has 4 samples but ")
row("train nan_X.npz", "train --data {d}/nan_X.npz", "nan_X.npz: X[1, 0] is nan")
row("train scalar y", "train --data {d}/scalar_y.npz", "expected one row per sample")
row("train text y", "train --data {d}/text_y.npz", "expected numbers, got dtype <U1")
row("train missing file", "train --data {d}/missing.csv", "missing.csv: no such file")
row("train unknown data", "train --data {d}/data.xyz", ".npz/.csv file")
row("train missing mnist folder", "train --data mnist:{d}/nothing", "nothing")
row("train oversized PNG", "train --data mnist:{d}/bomb", "big.png: expected a 28x28 image",
    needs="PIL")

# -------------------------------------------------------------------------------- export
row("export without a target", "export {m}", "give at least one of --onnx FILE")
row("export --safetensors name", "export {m} --safetensors {d}/p.npz", "must end in")
row("export garbage model", "export {d}/garbage.model --safetensors {d}/p.safetensors",
    "cannot load the model")


def run_main(argv, capsys):
    """(exit status, stdout, stderr) of cli.main(argv), in this process."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:       # argparse's --help/--version exit: not expected here
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, fragment):
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("nnfs-fast: error: "), err
    assert "Traceback" not in err and fragment in lines[0], lines[0]


@pytest.mark.parametrize("args, fragment", ROWS)
def test_user_error_is_one_line_and_exit_2(args, fragment, files, capsys, restore_threads):
    argv = args.format(d=files, m=files / "m.model").split()
    status, _, err = run_main(argv, capsys)
    assert_one_line_error(status, err, fragment)


@pytest.mark.parametrize("module, framework, fragment", [
    ("jax", "jax", "--frameworks jax: JAX is not installed: pip install jax"),
    ("torch", "torch", "--frameworks torch: PyTorch is not installed: pip install torch"),
])
def test_bench_framework_asked_for_but_missing(module, framework, fragment, capsys,
                                               monkeypatch):
    """A contender named in --frameworks that cannot be imported is refused before anything
    runs (by default it is skipped with a note); absence simulated by a None module entry."""
    monkeypatch.setitem(sys.modules, module, None)
    argv = ["bench", "--quick", "--suite", "train", "--threads", "1", "--repeat", "1",
            "--frameworks", "numpy", framework]
    status, out, err = run_main(argv, capsys)
    assert_one_line_error(status, err, fragment)
    assert out == ""


# Sizes that would allocate far more than the machine has if they were not refused first.
# Run in a child process whose address space is limited to 4 GiB, so that a regression
# fails with a MemoryError line (not the expected one) instead of exhausting the machine.
HUGE = [
    (f"train --hidden {BIG} {BIG}", "the model (--hidden 1000000000 1000000000: "),
    (f"train --samples {10 ** 15}", "--samples 1000000000000000 --classes 3: the data needs"),
    ("train --data {d}/ids.npz", "which would make 5,000,010 classes (at most 100,000)"),
    ("train --data {d}/ids.csv --no-header", "which would make 5,000,010 classes"),
]


@pytest.mark.parametrize("args, fragment", HUGE, ids=[a for a, _ in HUGE])
def test_sizes_beyond_memory_are_refused_before_allocating(args, fragment, files):
    import subprocess

    def limit_memory():
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
    result = subprocess.run([sys.executable, "-m", "nnfs_fast",
                             *args.format(d=files).split(), "--threads", "1"],
                            capture_output=True, text=True, timeout=120,
                            preexec_fn=None if sys.platform == "win32" else limit_memory)
    assert_one_line_error(result.returncode, result.stderr, fragment)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_named_pipe_is_refused_without_blocking(files, tmp_path, capsys):
    """Opening a named pipe for reading waits for a writer forever: refused before (an
    alarm fails the test instead of letting a regression hang it)."""
    import signal

    def hung(signum, frame):
        raise TimeoutError("predict blocked on the named pipe")
    fifo = tmp_path / "samples.csv"
    os.mkfifo(fifo)
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        status, _, err = run_main(["predict", str(files / "m.model"), str(fifo)], capsys)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert_one_line_error(status, err, "samples.csv: a named pipe, not a regular file")


@pytest.mark.parametrize("error", [ValueError("digits/train/0/0001.png: image too large "
                                              "(decompression bomb)"), MemoryError()])
def test_dataset_reader_errors_are_one_line(error, files, capsys, monkeypatch):
    """What the MNIST reader raises for a damaged folder (ValueError; e.g. an oversized PNG)
    and running out of memory anywhere are one line and exit status 2."""
    from nnfs_fast import datasets

    def fail(*args, **kwargs):
        raise error
    monkeypatch.setattr(datasets, "load_mnist", fail)
    status, _, err = run_main(["train", "--data", f"mnist:{files}"], capsys)
    assert_one_line_error(status, err, "image too large" if isinstance(error, ValueError)
                          else "out of memory")


def test_a_real_bug_still_gives_a_traceback(files, monkeypatch):
    """Only user errors are mapped: an exception nnfs_fast did not expect propagates."""
    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(importlib.import_module("nnfs_fast.cli.train"), "load_data", bug)
    with pytest.raises(ZeroDivisionError):
        cli.main(["train"])


def test_csv_header_detection_is_said_and_can_be_overridden(files, tmp_path, capsys):
    """A CSV whose first line is numbers behind a UTF-8 byte-order mark with CRLF line ends
    (what spreadsheet programs write) keeps every row: predict prints one line per input
    row, and stderr says how the first line was read; --header / --no-header decide."""
    csv = tmp_path / "points.csv"
    csv.write_bytes(b"\xef\xbb\xbf0.5,0.1\r\n\"-0.3\",-0.6\r\n0.0,0.0\r\n")
    model = str(files / "m.model")
    status, out, err = run_main(["predict", model, str(csv)], capsys)
    assert status == 0 and len(out.splitlines()) == 3, (out, err)
    assert err == ("nnfs-fast: note: " + str(csv) + ": no header line (the first line holds "
                   "numbers; --header would skip it)\n")
    expected = np.argmax(Model.load(model).predict(np.array(
        [[0.5, 0.1], [-0.3, -0.6], [0.0, 0.0]], np.float32)), axis=1)
    assert [int(v) for v in out.split()] == expected.tolist()
    status, out, err = run_main(["predict", model, str(csv), "--header"], capsys)
    assert status == 0 and len(out.splitlines()) == 2 and err == "", (out, err)
    named = tmp_path / "named.csv"
    named.write_text("x,y\n0.5,0.1\n")
    status, out, err = run_main(["predict", model, str(named)], capsys)
    assert status == 0 and len(out.splitlines()) == 1
    assert "the first line (x, y) read as column names" in err
    status, out, err = run_main(["predict", model, str(named), "--no-header"], capsys)
    assert_one_line_error(status, err, "line 1, column 1: 'x' is not a number")


def test_predict_batch_size_0_is_the_whole_input(files, capsys):
    """As for train: --batch-size 0 predicts all samples in one step (it was a traceback)."""
    model, X = str(files / "m.model"), str(files / "X.npy")
    status, out, err = run_main(["predict", model, X, "--batch-size", "0"], capsys)
    assert status == 0 and err == "" and len(out.splitlines()) == 3
    assert run_main(["predict", model, X], capsys)[1] == out


def test_one_hot_npz_labels_train_a_classifier(tmp_path, capsys, restore_threads):
    """One-hot y in an .npz trained silently as a 3-output regression: now read as class
    indices (said on stderr); --task regression keeps the regression."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 2)).astype(np.float32)
    labels = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    np.savez(tmp_path / "d.npz", X=X, y=np.eye(3)[labels])
    args = ["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden", "4",
            "--threads", "1"]
    status, out, err = run_main(args, capsys)
    assert status == 0, err
    assert "(2 features, 3 classes)" in out and "Softmax; CategoricalCrossentropy" in out
    assert "y holds one-hot rows (40 x 3): read as class indices 0-2" in err
    status, out, err = run_main(args + ["--task", "regression"], capsys)
    assert status == 0 and "3 regression targets" in out and err == "", err


def test_train_csv_keeps_the_first_row_behind_a_byte_order_mark(tmp_path, capsys,
                                                                restore_threads):
    """A header-less CSV starting with a byte-order mark lost its first row."""
    rows = [b"%d,%d,%d" % (i, -i, i % 2) for i in range(10)]
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(rows) + b"\r\n")
    status, out, err = run_main(["train", "--data", str(tmp_path / "d.csv"), "--epochs", "1",
                                 "--hidden", "4", "--threads", "1"], capsys)
    assert status == 0, err
    assert "8 training samples (2 features, 2 classes), 2 validation samples" in out
    assert "no header line" in err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
