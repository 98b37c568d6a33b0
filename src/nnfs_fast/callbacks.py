"""Training callbacks for ``Model.train(callbacks=[...])``, in the style of Keras.

``Model.train`` calls, in order::

    on_train_begin()
    for each epoch (1, 2, ...):       on_epoch_begin(epoch, logs={})
        for each step (0, 1, ...):    on_batch_end(step, logs)   # after the optimizer update
                                      on_epoch_end(epoch, logs)  # after validation, if any
    on_train_end()                    # also when training ends by an exception or Ctrl-C

Epochs are numbered from 1, as the book prints them; steps from 0 within each epoch. Step logs
hold ``loss``, ``data_loss``, ``reg_loss``, ``acc`` and ``lr`` of that step; epoch logs hold the
same keys for the epoch (the values of the ``training, ...`` line) plus ``val_loss`` and
``val_acc`` in the epochs that were validated. Before ``on_train_begin`` each callback gets
``self.model`` and ``self.params`` (``epochs``, ``steps``, ``validation``,
``validation_every``). Setting ``model.stop_training = True`` ends training after the current
step (the epoch's ``training`` line, validation and ``on_epoch_end`` still run).
"""
import math
import os
import warnings

import numpy as np

from nnfs_fast import progress

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "TerminateOnNaN",
           "LearningRateScheduler", "CSVLogger"]

TRAINING_KEYS = ("loss", "data_loss", "reg_loss", "acc", "lr")
VALIDATION_KEYS = ("val_loss", "val_acc")


class Callback:
    """Base class: override the hooks you need (each does nothing here)."""

    model = None
    params = None

    def set_model(self, model, params):
        self.model, self.params = model, params

    def on_train_begin(self):
        pass

    def on_train_end(self):
        pass

    def on_epoch_begin(self, epoch, logs):
        pass

    def on_epoch_end(self, epoch, logs):
        pass

    def on_batch_end(self, step, logs):
        pass

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if not k.startswith("_") and k not in ("model", "params"))
        return f"{type(self).__name__}({args})"


def logged_keys(params):
    """The keys of the epoch logs of a run with these ``params``."""
    return TRAINING_KEYS + (VALIDATION_KEYS if params["validation"] else ())


class _Monitor:
    """Which way ``monitor`` improves: ``mode`` "min", "max" or "auto" (max for accuracies,
    min for losses), with ``min_delta`` >= 0 the smallest change that counts."""

    def __init__(self, owner, monitor, mode, min_delta=0.0):
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) \
                or not math.isfinite(min_delta):
            raise ValueError(f"{owner}: min_delta must be a finite number, got {min_delta!r}")
        if not isinstance(monitor, str):
            raise TypeError(f"{owner}: monitor must be the name of a logged value such as "
                            f"'val_loss', got {monitor!r}")
        if mode == "auto":
            mode = "max" if monitor.endswith("acc") else "min"
        self.owner, self.monitor, self.mode, self.min_delta = owner, monitor, mode, abs(min_delta)

    def check(self, params):
        """Refuse, before training starts, a monitor that no epoch will log."""
        keys = logged_keys(params)
        if self.monitor not in keys:
            hint = (" (give validation_data or validation_split to log val_*)"
                    if self.monitor in VALIDATION_KEYS else "")
            raise ValueError(f"{self.owner}: monitor {self.monitor!r} is not logged by this "
                             f"run; it logs {', '.join(keys)}{hint}")

    def initial(self):
        return math.inf if self.mode == "min" else -math.inf

    def improves(self, current, reference):
        """True if ``current`` beats ``reference`` by more than min_delta (NaN never does)."""
        if self.mode == "min":
            return current + self.min_delta < reference
        return current - self.min_delta > reference


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` measured epochs.

    An epoch improves when its value beats the best so far by more than ``min_delta`` (lower
    for mode "min", higher for "max"; "auto" picks max for ``*acc`` and min otherwise). Epochs
    in which ``monitor`` was not measured (``validation_every`` > 1) do not count. Training stops
    at the end of the epoch in which ``patience`` measured epochs in a row have not improved
    (``stopped_epoch``). With ``baseline``, an epoch must also beat the baseline to reset the
    count.

    ``restore_best_weights=True`` puts back the parameters (weights and biases; not the
    optimizer state) of the best epoch (``best_epoch``) at the end of training, whatever ended
    it: this callback, another one, ``epochs`` being reached, an exception or Ctrl-C. (Keras
    restores only when the callback itself stopped training, keras-team/keras#12511.)
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 baseline=None, restore_best_weights=False):
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, (int, np.integer)) \
                or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        if baseline is not None and (isinstance(baseline, bool)
                                     or not isinstance(baseline, (int, float))):
            raise ValueError(f"EarlyStopping: baseline must be None or a number, "
                             f"got {baseline!r}")
        self.monitor, self.min_delta, self.patience = monitor, min_delta, int(patience)
        self.mode, self.baseline = mode, baseline
        self.restore_best_weights = bool(restore_best_weights)

    def on_train_begin(self):
        self._monitor.check(self.params)
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._monitor.initial()
        self.best_epoch = 0
        self.best_weights = None

    def on_epoch_end(self, epoch, logs):
        current = logs.get(self.monitor)
        if current is None:   # not measured this epoch
            return
        self.wait += 1
        if self._monitor.improves(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = [(w.copy(), b.copy())
                                     for w, b in self.model.get_parameters()]
            if self.baseline is None or self._monitor.improves(current, self.baseline):
                self.wait = 0
                return
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_parameters(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model with ``Model.save`` (atomic: a crash mid-save leaves the previous file)
    at the end of each epoch, or with ``save_best_only`` only in the epochs where ``monitor``
    improved (lower for losses, higher for ``*acc``; ``mode`` as in EarlyStopping).
    ``path`` may hold ``{epoch}`` and logged names, e.g. ``"model-{epoch:03d}.nnfs"``."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"ModelCheckpoint: path must be a file name, got {path!r}")
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode)
        self.path, self.monitor, self.save_best_only = path, monitor, bool(save_best_only)
        self.mode = mode

    def on_train_begin(self):
        if self.save_best_only:
            self._monitor.check(self.params)
        self.best = self._monitor.initial()
        self.saved_epochs = []

    def on_epoch_end(self, epoch, logs):
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None or not self._monitor.improves(current, self.best):
                return
            self.best = current
        self.model.save(os.fspath(self.path).format(epoch=epoch, **logs))
        self.saved_epochs.append(epoch)


class TerminateOnNaN(Callback):
    """Stop training after the step whose loss is NaN or infinite (that step's update has
    been applied); prints which step. ``stopped`` is (epoch, step), or None."""

    def on_train_begin(self):
        self.stopped = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs):
        self._epoch = epoch

    def on_batch_end(self, step, logs):
        if not math.isfinite(logs["loss"]):
            self.stopped = (self._epoch, step)
            progress.write(f"epoch {self._epoch}, step {step}: loss is {logs['loss']}, "
                           "terminating training")
            self.model.stop_training = True


class LearningRateScheduler(Callback):
    """Set the learning rate of each epoch to ``schedule(epoch)`` (epochs from 1).

    The rate holds for every step of the epoch: it replaces the optimizer's ``decay`` for the
    run (decay is set to 0 while training, with a warning if it was not 0, and restored at
    the end together with ``learning_rate``).
    """

    def __init__(self, schedule):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function "
                            f"epoch -> learning rate, got {schedule!r}")
        self.schedule = schedule

    def on_train_begin(self):
        optimizer = self.model.optimizer
        self._saved = (optimizer.learning_rate, optimizer.current_learning_rate,
                       optimizer.decay)
        if optimizer.decay:
            warnings.warn(f"LearningRateScheduler replaces the optimizer's decay "
                          f"({optimizer.decay!r}) for this run", stacklevel=3)
            optimizer.decay = 0.0

    def on_epoch_begin(self, epoch, logs):
        rate = self.schedule(epoch)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) \
                or not math.isfinite(rate) or rate <= 0:
            raise ValueError(f"LearningRateScheduler: schedule({epoch}) must return a "
                             f"finite number > 0, got {rate!r}")
        self.model.optimizer.learning_rate = self.model.optimizer.current_learning_rate = \
            float(rate)

    def on_train_end(self):
        optimizer = self.model.optimizer
        optimizer.learning_rate, _, optimizer.decay = self._saved


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` and the epoch logs (an empty field where a
    value was not measured that epoch).

    Line-buffered, not atomic: the header is written at the start and each row is flushed at
    the end of its epoch, so a crash or Ctrl-C leaves the rows of every finished epoch.
    ``append=True`` adds to an existing file (without a second header)."""

    def __init__(self, path, separator=",", append=False):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"CSVLogger: path must be a file name, got {path!r}")
        self.path, self.separator, self.append = path, separator, bool(append)
        self._file = None

    def on_train_begin(self):
        self._keys = logged_keys(self.params)
        exists = self.append and os.path.exists(self.path) and os.path.getsize(self.path) > 0
        self._file = open(self.path, "a" if self.append else "w", buffering=1)
        if not exists:
            self._file.write(self.separator.join(("epoch",) + self._keys) + "\n")

    def on_epoch_end(self, epoch, logs):
        values = [str(epoch)] + [repr(logs[k]) if k in logs else "" for k in self._keys]
        self._file.write(self.separator.join(values) + "\n")
        self._file.flush()

    def on_train_end(self):
        if self._file is not None:
            self._file.close()
            self._file = None
