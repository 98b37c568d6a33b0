"""The ``nnfs-fast`` command line, run as ``python -m nnfs_fast`` in subprocesses: train,
predict, bench, info, and every error path (one line on stderr, exit status 2)."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nnfs_fast import Model, datasets

TINY = ["--samples", "30", "--hidden", "8", "--epochs", "3", "--threads", "1"]


def cli(*args, timeout=120, **kwargs):
    return subprocess.run([sys.executable, "-m", "nnfs_fast", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, **kwargs)


def assert_usage_error(result, *fragments):
    """Exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnfs-fast: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny spiral model trained and saved by the CLI, with samples to predict."""
    folder = tmp_path_factory.mktemp("cli")
    model = folder / "spiral.model"
    result = cli("train", *TINY, "--save", model)
    assert result.returncode == 0, result.stderr
    datasets.init(1)
    X, _ = datasets.spiral_data(10, 3)
    np.save(folder / "X.npy", X)
    return folder, model, X, result.stdout


def test_train_prints_results_and_saves(trained):
    folder, model, X, stdout = trained
    assert "data: spiral, 90 training samples (2 features, 3 classes), 9 validation" in stdout
    assert "Dense(2, 8, Wl2 0.0005) -> ReLU -> Dropout(0.1) -> Dense(8, 3) -> Softmax" in stdout
    assert "epoch: 3, acc: " in stdout
    assert "validation, acc: " in stdout
    assert "samples/s" in stdout and f"saved the model to {model}" in stdout
    assert Model.load(model).get_parameters()[0][0].shape == (2, 8)


def test_train_is_reproducible_and_quiet(trained):
    result = cli("train", *TINY, "--quiet")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("time: "), result.stdout
    # same seed, same data, same numbers as the fixture's run
    assert lines[0].startswith("validation, acc: ") and lines[0] in trained[3]


def test_predict_npy_matches_model(trained):
    folder, model, X, _ = trained
    result = cli("predict", model, folder / "X.npy")
    assert result.returncode == 0, result.stderr
    expected = np.argmax(Model.load(model).predict(X), axis=1)
    assert [int(v) for v in result.stdout.split()] == expected.tolist()


def test_predict_csv_to_files(trained):
    folder, model, X, _ = trained
    csv = folder / "X.csv"
    np.savetxt(csv, X, delimiter=",", header="x0,x1", comments="")
    expected = Model.load(model).predict(X)
    result = cli("predict", model, csv, "--output", folder / "classes.npy")
    assert result.returncode == 0, result.stderr
    assert np.load(folder / "classes.npy").tolist() == np.argmax(expected, axis=1).tolist()
    result = cli("predict", model, csv, "--probabilities", "-o", folder / "p.csv")
    assert result.returncode == 0, result.stderr
    probabilities = np.loadtxt(folder / "p.csv", delimiter=",")
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_regression_and_files(tmp_path):
    model = tmp_path / "sine.model"
    result = cli("train", "--data", "sine", "--samples", "50", "--epochs", "2", "--hidden",
                 "4", "--quiet", "--save", model)
    assert result.returncode == 0, result.stderr
    np.save(tmp_path / "x.npy", np.array([[0.25], [0.5]]))
    result = cli("predict", model, tmp_path / "x.npy")
    values = [float(v) for v in result.stdout.split()]
    assert result.returncode == 0 and len(values) == 2, result.stderr

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.uint8)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.savetxt(tmp_path / "d.csv", np.column_stack([X, y]), delimiter=",")
    for data in ("d.npz", "d.csv"):
        result = cli("train", "--data", tmp_path / data, "--epochs", "2", "--batch-size", "16",
                     "--hidden", "4", "--optimizer", "sgd", "--momentum", "0.5")
        assert result.returncode == 0, result.stderr
        assert "32 training samples (3 features, 2 classes), 8 validation" in result.stdout
        assert "Optimizer_SGD(learning_rate=1.0, decay=0.0, momentum=0.5)" in result.stdout


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "curves.png"
    result = cli("train", *TINY, "--quiet", "--plot", png)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_quick_json(tmp_path):
    out = tmp_path / "bench.json"
    result = cli("bench", "--quick", "--threads", "1", "--json", out, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "Dense layer kernels" in result.stdout and "Training step" in result.stdout
    data = json.loads(out.read_text())
    assert data["machine"]["kernel_level"] and data["threads"] == [1]
    assert [r["shape"] for r in data["dense"]] == [[300, 2, 64], [128, 784, 128]]
    assert [r["model"] for r in data["train"]] == ["ch10", "ch19"]
    for row in data["train"]:
        assert {"nnfs_fast", "numpy"} <= set(row["seconds"])
        assert all(t > 0 for t in row["seconds"].values())
        assert ("book" in row["seconds"]) == bool(_installed("nnfs"))
        assert ("torch" in row["seconds"]) == bool(_installed("torch"))
        assert ("jax" in row["seconds"]) == bool(_installed("jax"))


def test_info_and_version():
    result = cli("info")
    assert result.returncode == 0, result.stderr
    assert "kernel_level:" in result.stdout and "openmp:" in result.stdout
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("nnfs_fast ")


def _installed(module):
    from importlib.util import find_spec
    return find_spec(module) is not None


# --------------------------------------------------------------------------- error paths

def test_argument_errors(tmp_path):
    assert_usage_error(cli("train", "--activation", "tanh"), "--activation", "'tanh'")
    assert_usage_error(cli("train", "--epochs", "0"), "--epochs")
    assert_usage_error(cli("train", "--classes", "300"), "at most 256")
    assert_usage_error(cli("train", "--optimizer", "adam", "--momentum", "0.9"),
                       "--momentum applies to --optimizer sgd only")
    assert_usage_error(cli("train", "--save", tmp_path / "nope" / "m.model"), "does not exist")
    assert_usage_error(cli("train", "--data", tmp_path / "missing.csv"), "no such file")
    assert_usage_error(cli("train", "--data", "data.xyz"), ".npz/.csv")
    assert_usage_error(cli("train", "--data", "mnist:" + str(tmp_path)), "no train data")
    assert_usage_error(cli(), "required")
    assert_usage_error(cli("bench", "--threads", "0"), "--threads")


def test_file_errors(trained, tmp_path):
    folder, model, X, _ = trained
    assert_usage_error(cli("predict", tmp_path / "none.model", folder / "X.npy"),
                       "no such model file")
    garbage = tmp_path / "garbage.model"
    garbage.write_bytes(b"not a model at all")
    assert_usage_error(cli("predict", garbage, folder / "X.npy"), "cannot load the model")
    np.save(tmp_path / "five.npy", np.zeros((4, 5), dtype=np.float32))
    assert_usage_error(cli("predict", model, tmp_path / "five.npy"),
                       "5 features per sample, but the model expects 2")
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    assert_usage_error(cli("predict", model, tmp_path / "bad.csv"),
                       "bad.csv: line 2, column 2: 'x' is not a number")
    np.savez(tmp_path / "noy.npz", X=np.zeros((4, 2)))
    assert_usage_error(cli("train", "--data", tmp_path / "noy.npz"), "no array named y")


def test_missing_optional_packages(tmp_path):
    """--data digits without scikit-learn, --plot without matplotlib: a clear pip hint."""
    def without(module, *args):
        code = (f"import sys; sys.modules[{module!r}] = None; from nnfs_fast.cli import main; "
                f"sys.exit(main({[str(a) for a in args]!r}))")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120)
    assert_usage_error(without("sklearn", "train", "--data", "digits"),
                       "needs scikit-learn", "nnfs_fast[digits]")
    assert_usage_error(without("matplotlib", "train", "--plot", tmp_path / "p.png"),
                       "needs matplotlib")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_ctrl_c_keeps_the_saved_model(trained, tmp_path):
    folder, model, X, _ = trained
    before = model.read_bytes()
    process = subprocess.Popen(
        [sys.executable, "-m", "nnfs_fast", "train", "--samples", "30", "--hidden", "8",
         "--epochs", "1000000", "--print-every", "1", "--threads", "1", "--save", model],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a shell may start background jobs with SIGINT ignored: give the child the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not process.stdout.readline().startswith("epoch: "):
            assert time.monotonic() < deadline and process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert "interrupted after" in stderr and "Traceback" not in stderr
    assert model.read_bytes() == before
    assert not [p for p in os.listdir(folder) if ".tmp" in p]


# ------------------------------------------------------------------ one training loop (#15)

def test_train_has_no_loop_of_its_own(monkeypatch, capsys):
    """Every epoch, validation and printed line comes from a single Model.train call."""
    from nnfs_fast.cli import main
    calls = []
    original = Model.train

    def counting(self, *args, **kwargs):
        calls.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Model, "train", counting)
    assert main(["train", *TINY, "--epochs", "7", "--print-every", "3"]) == 0
    assert len(calls) == 1 and calls[0]["epochs"] == 7 and calls[0]["validation_every"] == 3
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines if line.startswith("epoch")] == [
        "epoch: 3", "epoch: 6", "epoch: 7"]


def test_early_stopping_checkpoint_and_csv_log(tmp_path):
    best, log = tmp_path / "best.model", tmp_path / "log.csv"
    result = cli("train", *TINY, "--epochs", "60", "--early-stopping", "2", "--checkpoint",
                 best, "--csv-log", log, "--save", tmp_path / "final.model")
    assert result.returncode == 0, result.stderr
    stopped = [line for line in result.stdout.splitlines() if line.startswith("early stopping")]
    assert len(stopped) == 1 and "its weights restored" in stopped[0]
    best_epoch = int(stopped[0].split("epoch ")[1].split(",")[0].split(";")[0])
    rows = log.read_text().splitlines()
    assert rows[0] == "epoch,loss,data_loss,reg_loss,acc,lr,val_loss,val_acc"
    val_losses = [float(row.split(",")[6]) for row in rows[1:]]
    assert 1 + int(np.argmin(val_losses)) == best_epoch
    # the checkpoint holds the best epoch, which is also what --save wrote after restoring
    saved, final = Model.load(best), Model.load(tmp_path / "final.model")
    for (a, b), (c, d) in zip(saved.get_parameters(), final.get_parameters()):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert sorted(os.listdir(tmp_path)) == ["best.model", "final.model", "log.csv"]


def test_validation_split_option():
    result = cli("train", *TINY, "--validation-split", "0.25")
    assert result.returncode == 0, result.stderr
    assert "67 training samples (2 features, 3 classes), 23 validation samples" in result.stdout


def test_training_option_errors(tmp_path):
    assert_usage_error(cli("train", "--early-stopping", "-1"),
                       "--early-stopping: expected an integer >= 0")
    assert_usage_error(cli("train", "--validation-split", "1.5"), "--validation-split")
    assert_usage_error(cli("train", "--checkpoint", tmp_path / "no" / "m.model"),
                       "--checkpoint", "does not exist")
    assert_usage_error(cli("train", "--csv-log", tmp_path), "--csv-log", "is a folder")
