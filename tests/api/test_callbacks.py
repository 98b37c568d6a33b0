"""Model.train's callbacks (nnfs_fast.callbacks), validation options, stop_training, summary,
set_seed, and resuming a run from Model.save / Model.load bit for bit (docs/TRAINING.md)."""
import os

import numpy as np
import pytest

import nnfs_fast
from nnfs_fast import (
    Accuracy_Categorical,
    Activation_ReLU,
    Activation_Softmax,
    Layer_Dense,
    Layer_Dropout,
    Loss_CategoricalCrossentropy,
    Model,
    Optimizer_Adam,
    Optimizer_SGD,
)
from nnfs_fast.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    TerminateOnNaN,
)
from nnfs_fast.datasets import spiral_data


def data():
    np.random.seed(0)
    X, y = spiral_data(samples=100, classes=3)
    return X, y, spiral_data(samples=30, classes=3)


def model(optimizer=None, parameters=None):
    """Dense(2, 16) -> ReLU -> Dense(16, 3) -> Softmax, Adam, no dropout (no RNG in training)."""
    np.random.seed(1)
    m = Model()
    m.add(Layer_Dense(2, 16))
    m.add(Activation_ReLU())
    m.add(Layer_Dense(16, 3))
    m.add(Activation_Softmax())
    m.set(loss=Loss_CategoricalCrossentropy(), accuracy=Accuracy_Categorical(),
          optimizer=optimizer or Optimizer_Adam(learning_rate=0.05, decay=5e-4))
    m.finalize()
    if parameters is not None:
        m.set_parameters([(w.copy(), b.copy()) for w, b in parameters])
    return m


def copy(parameters):
    return [(w.copy(), b.copy()) for w, b in parameters]


def assert_same(a, b):
    assert len(a) == len(b)
    for (w1, b1), (w2, b2) in zip(a, b):
        np.testing.assert_array_equal(w1, w2)
        np.testing.assert_array_equal(b1, b2)


class Scripted(Callback):
    """Replaces logs[key], where logged, by a constructed sequence (epoch 1 -> values[0], ...)
    and keeps a copy of the parameters at the end of every epoch (before the callbacks after
    it run)."""

    def __init__(self, key, values):
        self.key, self.values, self.snapshots = key, values, {}

    def on_epoch_end(self, epoch, logs):
        if self.key in logs:
            logs[self.key] = self.values[epoch - 1]
        self.snapshots[epoch] = copy(self.model.get_parameters())


# ------------------------------------------------------------------------------ EarlyStopping

# best 0.70 at epoch 4; 0.69 (epoch 6) is not better by more than min_delta = 0.02; patience 3:
# epochs 5, 6, 7 do not improve, so training stops at the end of epoch 7.
SEQUENCE = [1.0, 0.8, 0.9, 0.70, 0.75, 0.69, 0.71, 0.5, 0.4, 0.3]


def test_early_stopping_stops_at_the_documented_epoch_and_restores_the_best():
    X, y, validation = data()
    m = model()
    script = Scripted("val_loss", SEQUENCE)
    stop = EarlyStopping(monitor="val_loss", min_delta=0.02, patience=3,
                         restore_best_weights=True)
    history = m.train(X, y, epochs=10, batch_size=100, validation_data=validation,
                      callbacks=[script, stop], verbose=False)
    assert stop.stopped_epoch == 7 and stop.best_epoch == 4 and stop.best == 0.70
    assert len(history["loss"]) == 7
    assert m.optimizer.iterations == 7 * 3
    assert_same(m.get_parameters(), script.snapshots[4])


def test_early_stopping_restores_when_training_reaches_epochs():
    X, y, validation = data()
    m = model()
    script = Scripted("val_loss", [1.0, 0.6, 0.7, 0.8])
    stop = EarlyStopping(patience=5, restore_best_weights=True)
    m.train(X, y, epochs=4, batch_size=100, validation_data=validation,
            callbacks=[script, stop], verbose=False)
    assert stop.stopped_epoch == 0 and stop.best_epoch == 2   # not stopped by the callback
    assert_same(m.get_parameters(), script.snapshots[2])


def test_early_stopping_restores_when_another_callback_stops():
    X, y, validation = data()
    m = model()
    script = Scripted("val_acc", [0.5, 0.9, 0.7])
    stop = EarlyStopping(monitor="val_acc", patience=5, restore_best_weights=True)

    class StopAt3(Callback):
        def on_epoch_end(self, epoch, logs):
            self.model.stop_training = epoch == 3

    history = m.train(X, y, epochs=10, validation_data=validation,
                      callbacks=[script, stop, StopAt3()], verbose=False)
    assert len(history["loss"]) == 3 and stop.mode == "auto" and stop.best == 0.9
    assert_same(m.get_parameters(), script.snapshots[2])


def test_early_stopping_restores_when_training_is_interrupted():
    X, y, validation = data()
    m = model()
    script = Scripted("val_loss", [0.9, 0.3, 0.5])
    stop = EarlyStopping(patience=5, restore_best_weights=True)

    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 3:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        m.train(X, y, epochs=10, validation_data=validation,
                callbacks=[script, stop, CtrlC()], verbose=False)
    assert_same(m.get_parameters(), script.snapshots[2])


def test_early_stopping_baseline_and_mode():
    X, y, validation = data()
    # max mode with a baseline of 0.8: no epoch reaches it, so patience 2 stops at epoch 2
    stop = EarlyStopping(monitor="val_acc", mode="max", baseline=0.8, patience=2)
    history = model().train(X, y, epochs=10, validation_data=validation,
                            callbacks=[Scripted("val_acc", [0.5, 0.6, 0.7, 0.9]), stop],
                            verbose=False)
    assert stop.stopped_epoch == 2 and len(history["loss"]) == 2


def test_early_stopping_counts_only_measured_epochs():
    X, y, validation = data()
    stop = EarlyStopping(patience=1)
    history = model().train(X, y, epochs=20, validation_data=validation, validation_every=3,
                            callbacks=[Scripted("val_loss", [1.0] * 20), stop],
                            verbose=False)
    # validated at 3 (first, best) and 6 (no improvement: patience 1 used up)
    assert history["val_epoch"] == [3, 6] and stop.stopped_epoch == 6


def test_monitor_errors_before_training():
    X, y, _ = data()
    m = model()
    before = copy(m.get_parameters())
    with pytest.raises(ValueError, match=r"EarlyStopping: monitor 'val_loss' is not logged "
                       r"by this run; it logs loss, data_loss, reg_loss, acc, lr \(give "
                       r"validation_data or validation_split"):
        m.train(X, y, epochs=3, callbacks=[EarlyStopping()], verbose=False)
    assert_same(m.get_parameters(), before)
    assert m.optimizer.iterations == 0
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max', got 'up'"):
        EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience must be an int >= 0, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match=r"callbacks\[1\] must be a nnfs_fast.callbacks.Callback"
                       r" \(e.g. EarlyStopping\(patience=5\)\), got the class EarlyStopping"):
        m.train(X, y, callbacks=[TerminateOnNaN(), EarlyStopping], verbose=False)
    with pytest.raises(TypeError, match="callbacks must be a list"):
        m.train(X, y, callbacks=TerminateOnNaN(), verbose=False)


# --------------------------------------------------------------------------- ModelCheckpoint

def test_model_checkpoint_keeps_the_best_model_and_no_temporary_files(tmp_path):
    X, y, validation = data()
    m = model()
    script = Scripted("val_loss", [1.0, 0.5, 0.7, 0.4, 0.9])
    path = tmp_path / "best.model"
    checkpoint = ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    m.train(X, y, epochs=5, batch_size=100, validation_data=validation,
            callbacks=[script, checkpoint], verbose=False)
    assert checkpoint.saved_epochs == [1, 2, 4]
    assert os.listdir(tmp_path) == ["best.model"]
    best = Model.load(path)
    assert_same(best.get_parameters(), script.snapshots[4])
    assert best.optimizer.iterations == 4 * 3


def test_model_checkpoint_every_epoch_with_a_pattern(tmp_path):
    X, y, _ = data()
    checkpoint = ModelCheckpoint(os.path.join(tmp_path, "m-{epoch:02d}.model"))
    model().train(X, y, epochs=3, callbacks=[checkpoint], verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["m-01.model", "m-02.model", "m-03.model"]


# ---------------------------------------------------------------------------- TerminateOnNaN

def test_terminate_on_nan_stops_on_the_step_that_produced_nan(capsys):
    X, y, _ = data()
    m = model()

    class Poison(Callback):   # NaN weights after epoch 2, step 0: step 1 gives a NaN loss
        def on_batch_end(self, step, logs):
            self.steps = getattr(self, "steps", 0) + 1
            if self.steps == 4:
                self.model.layers[0].weights[0, 0] = np.nan

    nan = TerminateOnNaN()
    history = m.train(X, y, epochs=5, batch_size=100, callbacks=[Poison(), nan],
                      verbose=False)
    assert nan.stopped == (2, 1)
    assert m.optimizer.iterations == 5            # 3 steps of epoch 1, steps 0 and 1 of epoch 2
    assert len(history["loss"]) == 2 and np.isnan(history["loss"][-1])
    assert capsys.readouterr().out == "epoch 2, step 1: loss is nan, terminating training\n"


def test_stop_training_ends_after_the_current_step():
    X, y, _ = data()
    m = model()

    class StopAtStep1(Callback):
        def on_batch_end(self, step, logs):
            if step == 1:
                self.model.stop_training = True

    history = m.train(X, y, epochs=5, batch_size=100, callbacks=[StopAtStep1()],
                      verbose=False)
    assert m.optimizer.iterations == 2 and len(history["loss"]) == 1
    m.train(X, y, epochs=1, batch_size=100, verbose=False)   # a new run starts afresh
    assert m.optimizer.iterations == 5


# --------------------------------------------------------------------- LearningRateScheduler

def test_learning_rate_scheduler_equals_a_manual_loop():
    X, y, _ = data()
    rates = {1: 0.05, 2: 0.02, 3: 0.01, 4: 0.005}
    scheduled = model(Optimizer_SGD(learning_rate=1.0, momentum=0.9))
    manual = model(Optimizer_SGD(learning_rate=1.0, momentum=0.9), scheduled.get_parameters())
    history = scheduled.train(X, y, epochs=4, batch_size=128,
                              callbacks=[LearningRateScheduler(rates.get)], verbose=False)
    for epoch in range(1, 5):
        manual.optimizer.learning_rate = manual.optimizer.current_learning_rate = rates[epoch]
        manual.train(X, y, epochs=1, batch_size=128, verbose=False)
    assert_same(scheduled.get_parameters(), manual.get_parameters())
    assert history["lr"] == [0.05, 0.02, 0.01, 0.005]
    assert scheduled.optimizer.learning_rate == 1.0   # restored after the run


def test_learning_rate_scheduler_replaces_decay_and_warns():
    X, y, _ = data()
    m = model(Optimizer_Adam(learning_rate=0.05, decay=1e-2))
    with pytest.warns(UserWarning, match=r"replaces the optimizer's decay \(0.01\)"):
        history = m.train(X, y, epochs=2, batch_size=100, verbose=False,
                          callbacks=[LearningRateScheduler(lambda epoch: 0.01 / epoch)])
    assert history["lr"] == [0.01, 0.005]          # no decay inside an epoch
    assert (m.optimizer.learning_rate, m.optimizer.decay) == (0.05, 1e-2)
    m.optimizer.decay = 0.0
    with pytest.raises(ValueError, match=r"schedule\(1\) must return a finite number > 0, "
                       r"got -1"):
        m.train(X, y, callbacks=[LearningRateScheduler(lambda epoch: -1)], verbose=False)
    assert m.optimizer.iterations == 6   # the refused schedule made no step


# -------------------------------------------------------------------------------- CSVLogger

def test_csv_logger_writes_a_row_per_epoch(tmp_path):
    X, y, validation = data()
    path = tmp_path / "log.csv"
    history = model().train(X, y, epochs=4, validation_data=validation, validation_every=2,
                            callbacks=[CSVLogger(path)], verbose=False)
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,data_loss,reg_loss,acc,lr,val_loss,val_acc"
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3", "4"]
    assert lines[1].endswith(",,") and not lines[2].endswith(",")
    assert float(lines[4].split(",")[1]) == history["loss"][3]
    assert float(lines[4].split(",")[-2]) == history["val_loss"][-1]


# -------------------------------------------------------------- validation_split / _every

def test_validation_split_holds_out_the_last_samples(capsys):
    X, y, _ = data()
    order = np.random.RandomState(5).permutation(len(X))
    X, y = X[order], y[order]
    split = model()
    explicit = model(parameters=split.get_parameters())
    a = split.train(X, y, epochs=2, validation_split=0.2, verbose=False)
    b = explicit.train(X[:240], y[:240], epochs=2, validation_data=(X[240:], y[240:]),
                       verbose=False)
    assert a == b
    with pytest.raises(ValueError, match="validation_split must be a fraction in"):
        split.train(X, y, validation_split=1.0)
    with pytest.raises(ValueError, match="not both"):
        split.train(X, y, validation_split=0.1, validation_data=(X, y))
    with pytest.raises(ValueError, match="validation_every must be a positive int, got 0"):
        split.train(X, y, validation_every=0)


def test_validation_every_validates_every_n_epochs_and_the_last(capsys):
    X, y, validation = data()
    history = model().train(X, y, epochs=7, validation_data=validation, validation_every=3)
    lines = capsys.readouterr().out.splitlines()
    assert history["val_epoch"] == [3, 6, 7] and len(history["val_loss"]) == 3
    assert sum(line.startswith("validation") for line in lines) == 3


def test_no_callbacks_print_the_same_lines(capsys):
    """A run with do-nothing callbacks prints exactly what a run without them prints."""
    X, y, validation = data()
    a, b = model(), model()
    a.train(X, y, epochs=3, batch_size=64, print_every=2, validation_data=validation)
    plain = capsys.readouterr().out
    b.train(X, y, epochs=3, batch_size=64, print_every=2, validation_data=validation,
            callbacks=[Callback()])
    assert capsys.readouterr().out == plain
    assert_same(a.get_parameters(), b.get_parameters())


# ------------------------------------------------------------------------------- resuming

def test_save_load_train_equals_an_uninterrupted_run(tmp_path):
    X, y, validation = data()
    whole = model()
    first = model(parameters=whole.get_parameters())
    np.random.seed(0)
    expected = whole.train(X, y, epochs=5, batch_size=64, shuffle=True,
                           validation_data=validation, verbose=False)
    np.random.seed(0)   # shuffle draws from the global RNG: keep its state across the break
    first.train(X, y, epochs=2, batch_size=64, shuffle=True, validation_data=validation,
                verbose=False)
    first.save(tmp_path / "half.model")
    rng = np.random.get_state()
    resumed = Model.load(tmp_path / "half.model")
    np.random.set_state(rng)
    rest = resumed.train(X, y, epochs=3, batch_size=64, shuffle=True,
                         validation_data=validation, verbose=False)
    assert_same(resumed.get_parameters(), whole.get_parameters())
    assert resumed.optimizer.iterations == whole.optimizer.iterations == 5 * 5
    for key in rest:
        assert rest[key] == expected[key][2:], key


def test_resuming_with_dropout_needs_the_rng_state(tmp_path):
    """Dropout draws from the global RNG: with its state kept, the resumed run is exact."""
    X, y, _ = data()

    def dropout_model(parameters=None):
        np.random.seed(1)
        m = Model()
        for layer in (Layer_Dense(2, 16), Activation_ReLU(), Layer_Dropout(0.1),
                      Layer_Dense(16, 3), Activation_Softmax()):
            m.add(layer)
        m.set(loss=Loss_CategoricalCrossentropy(), accuracy=Accuracy_Categorical(),
              optimizer=Optimizer_Adam(learning_rate=0.05))
        m.finalize()
        if parameters is not None:
            m.set_parameters(copy(parameters))
        return m

    whole = dropout_model()
    first = dropout_model(whole.get_parameters())
    np.random.seed(3)
    whole.train(X, y, epochs=4, batch_size=128, verbose=False)
    np.random.seed(3)
    first.train(X, y, epochs=2, batch_size=128, verbose=False)
    first.save(tmp_path / "half.model")
    rng = np.random.get_state()
    np.random.seed(99)                       # anything else drawn in between
    resumed = Model.load(tmp_path / "half.model")
    np.random.set_state(rng)
    resumed.train(X, y, epochs=2, batch_size=128, verbose=False)
    assert_same(resumed.get_parameters(), whole.get_parameters())


# ------------------------------------------------------------------------ summary, set_seed

def test_summary():
    lines = []
    model().summary(print_fn=lines.append)
    assert lines[0].split() == ["#", "layer", "output", "shape", "parameters"]
    assert [line.split()[-1] for line in lines[2:6]] == ["48", "0", "51", "0"]
    assert "(None, 16)" in lines[3] and "(None, 3)" in lines[5]
    assert lines[-1] == "total parameters: 99 (float32, 396 bytes)"


def test_set_seed_seeds_the_legacy_global_rng():
    nnfs_fast.set_seed(7)
    a = np.random.randn(3)
    np.random.seed(7)
    np.testing.assert_array_equal(a, np.random.randn(3))
    with pytest.raises(ValueError, match="seed must be"):
        nnfs_fast.set_seed(-1)


def test_progress_write_prints_above_the_bar():
    import io

    from nnfs_fast import progress
    bar_stream, out = io.StringIO(), io.StringIO()
    with progress.ProgressBar(3, "training", leave=False, stream=bar_stream) as bar:
        bar.update("acc: 0.5")
        progress.write("epoch: 1, ...", file=out)
    assert out.getvalue() == "epoch: 1, ...\n"
    drawn = bar_stream.getvalue()
    # cleared before the line, drawn again after it, erased at the end (leave=False)
    assert drawn.count("\r\033[K") == 2 and drawn.endswith("\r\033[K")
    assert drawn.split("\r\033[K")[1] == "\rtraining [" + "#" * 10 + "." * 20 + "] 1/3 acc: 0.5"
    progress.write("no bar", file=out)               # no bar showing: a plain print
    assert out.getvalue().endswith("no bar\n")


def test_train_progress_epochs_bar(monkeypatch, capsys):
    import nnfs_fast.progress as progress
    monkeypatch.setattr(progress, "_tqdm", None)
    X, y, _ = data()
    model().train(X, y, epochs=3, progress="epochs", verbose=False)
    err = capsys.readouterr().err
    assert "training [" + "#" * 30 + "] 3/3 acc: " in err and err.endswith("\r\033[K")
    with pytest.raises(ValueError, match="progress must be False, True, 'steps' or 'epochs'"):
        model().train(X, y, progress="bar")
