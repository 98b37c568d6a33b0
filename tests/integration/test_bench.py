"""The training-step benchmark's contenders (nnfs_fast.testing.bench): each trains like
nnfs_fast (``check_loss``, compared by ``loss_warnings``), and JAX, when installed, runs as a
contender in the quick suite (docs/CLI.md, ``nnfs-fast bench``)."""
import json
import math
import os
import subprocess
import sys
from importlib.util import find_spec

import numpy as np
import pytest

from nnfs_fast.testing import bench

needs_jax = pytest.mark.skipif(find_spec("jax") is None, reason="needs jax (pip install jax)")


def test_loss_warnings_name_a_contender_that_trains_differently():
    reference = 1.0910274
    close = reference * (1 + 0.5 * bench.CHECK_RTOL)
    assert bench.loss_warnings({"numpy": reference, "jax": close}, reference, "ch10") == []
    far = reference * (1 + 3 * bench.CHECK_RTOL)
    lines = bench.loss_warnings({"numpy": reference, "jax": far, "torch": math.nan},
                                reference, "ch10, 1 thread(s)")
    assert len(lines) == 2
    assert lines[0].startswith("warning: JAX CPU (jit) does not train like nnfs_fast "
                               "(ch10, 1 thread(s)): loss 1.091355 after 3 updates")
    assert "relative difference 3.0e-04 > 0.0001" in lines[0]
    assert lines[1].startswith("warning: PyTorch CPU does not train like nnfs_fast")


@pytest.mark.parametrize("model", list(bench.TRAIN_MODELS))
def test_book_code_trains_like_nnfs_fast_and_the_rng_is_left_alone(model):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    reference = bench.check_loss("nnfs_fast", model, quick=True)
    loss = bench.check_loss("numpy", model, quick=True)
    assert np.array_equal(np.random.get_state()[1], before)
    assert math.isfinite(reference) and bench.loss_warnings({"numpy": loss}, reference, "") == []
    # after 3 updates the loss has moved away from the initial weights' (ln(classes))
    assert reference < math.log(bench.TRAIN_MODELS[model]["quick"]["sizes"][-1])


def test_jax_environment(monkeypatch):
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    note = bench._jax_environment(1)
    assert os.environ["JAX_PLATFORMS"] == "cpu"
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x " + bench.XLA_ONE_THREAD
    assert note == f"XLA_FLAGS={os.environ['XLA_FLAGS']!r}"
    monkeypatch.delenv("XLA_FLAGS")
    note = bench._jax_environment(2)
    assert "XLA_FLAGS" not in os.environ
    assert note == "XLA's default CPU threads (no XLA_FLAGS; JAX cannot be limited to 2 threads)"


@needs_jax
def test_quick_train_suite_has_a_jax_column_that_trains_like_nnfs_fast(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "nnfs_fast", "bench", "--quick", "--suite", "train",
         "--threads", "1", "--repeat", "1", "--frameworks", "nnfs_fast", "jax", "--json", out],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "note: JAX CPU (jit), 1 thread(s): XLA_FLAGS=" in result.stdout
    assert "warning" not in result.stdout and "could not run" not in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("model"))
    assert header.split("|")[1].split() == list(bench.FRAMEWORKS)
    data = json.loads(out.read_text())
    assert data["versions"]["jax"]
    for row in data["train"]:
        assert set(row["seconds"]) == {"nnfs_fast", "jax"}
        assert math.isfinite(row["seconds"]["jax"]) and row["seconds"]["jax"] > 0
        losses = row["check_loss"]
        assert abs(losses["jax"] - losses["nnfs_fast"]) <= 1e-4 * losses["nnfs_fast"], losses


def test_run_train_prints_a_warning_after_a_row_whose_contender_trains_differently(
        monkeypatch):
    """run_train with stand-in workers: a contender whose check loss differs gets a warning
    line after its row, one whose check fails (the worker died) a warning of its own."""
    reference = bench.check_loss("nnfs_fast", "ch10", quick=True)

    class StandIn(bench._Worker):
        def __init__(self, framework, model, threads, quick):
            self.framework, self.version, self.note = framework, None, None

        def block(self, seconds):
            return 1e-3

        def check(self):
            if self.framework == "torch":
                raise RuntimeError("worker exited with code 1")
            return reference * (1.01 if self.framework == "jax" else 1)

        def close(self):
            pass

    monkeypatch.setattr(bench, "_Worker", StandIn)
    monkeypatch.setattr(bench, "available_frameworks", lambda: dict.fromkeys(bench.FRAMEWORKS))
    lines = []
    rows, _ = bench.run_train([1], ["ch10"], ["nnfs_fast", "numpy", "torch", "jax"], repeat=1,
                              seconds=0.0, quick=True, out=lines.append)
    assert lines[2].startswith("warning: PyTorch CPU's loss could not be checked: worker exited")
    assert lines[3].startswith("ch10 spiral 2-16-3, 60 rows")
    assert lines[4].startswith("warning: JAX CPU (jit) does not train like nnfs_fast (ch10, 1 "
                               "thread(s))") and "relative difference 1.0e-02" in lines[4]
    assert len(lines) == 5
    assert rows[0]["check_loss"] == {"nnfs_fast": reference, "numpy": reference,
                                     "jax": reference * 1.01}
