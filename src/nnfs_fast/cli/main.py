"""The ``nnfs-fast`` command line (also ``python -m nnfs_fast``).

    nnfs-fast train   [--data spiral|vertical|sine|digits|mnist:DIR|FILE] [options]
    nnfs-fast predict MODEL INPUT [--output FILE]
    nnfs-fast export  MODEL [--onnx FILE] [--torch FILE] [--safetensors FILE]
    nnfs-fast bench   [--quick] [--json FILE] [--plot FILE.png] [--threads N ...]
    nnfs-fast info

``train`` builds the book's Model (Dense -> activation [-> Dropout] ... -> Dense -> Softmax
or Linear), trains it with ``Model.train`` and reports validation accuracy, loss, wall time
and samples per second. A bad argument or file, or a model too large for the machine's
memory, prints one line on stderr and exits with status 2 (only a bug in nnfs_fast gives a
traceback); Ctrl-C exits with status 130 and writes nothing (the model file is written once,
at the end, atomically, so an earlier one stays whole). How a file was read when that was
guessed (a CSV header line, one-hot labels) is said on stderr as a ``note:`` line.
"""
import argparse
import math
import os
import sys
import time
from importlib.util import find_spec

import numpy as np

from nnfs_fast import progress
from nnfs_fast.callbacks import Callback

PROG = "nnfs-fast"
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Per-dataset defaults of `train`; any option given on the command line wins.
# spiral: the book's chapter 18 model and optimizer, narrower and for fewer epochs so that it
# runs in seconds (the book trains Dense(2, 512) for 10,000 epochs); sine: chapter 17;
# mnist: chapter 19; digits and files: the chapter 19 recipe scaled to small data.
PRESETS = {
    "spiral": dict(hidden=[256], dropout=0.1, l2=5e-4, optimizer="adam", lr=0.05,
                   decay=5e-5, epochs=1000, batch_size=None),
    "vertical": dict(hidden=[64], dropout=0.0, l2=5e-4, optimizer="adam", lr=0.05,
                     decay=5e-5, epochs=200, batch_size=None),
    "sine": dict(hidden=[64, 64], dropout=0.0, l2=0.0, optimizer="adam", lr=0.005,
                 decay=1e-3, epochs=5000, batch_size=None),
    "digits": dict(hidden=[128, 128], dropout=0.0, l2=0.0, optimizer="adam", lr=0.001,
                   decay=1e-3, epochs=30, batch_size=32),
    "mnist": dict(hidden=[128, 128], dropout=0.0, l2=0.0, optimizer="adam", lr=0.001,
                  decay=1e-3, epochs=10, batch_size=128),
    "file": dict(hidden=[64, 64], dropout=0.0, l2=0.0, optimizer="adam", lr=0.001,
                 decay=1e-3, epochs=20, batch_size=128),
}
# The book's default learning rates, for an --optimizer other than the preset's
DEFAULT_LR = {"sgd": 1.0, "adagrad": 1.0, "rmsprop": 0.001, "adam": 0.001}
OPTIMIZER_OPTIONS = {"momentum": "sgd", "rho": "rmsprop", "beta1": "adam", "beta2": "adam"}
# --threads above this is a typo, not a request (OpenMP would try to start that many threads)
MAX_THREADS = 1024
# More classes than this is a column of identifiers or measurements, not class labels (the
# output layer would have that many neurons); ImageNet-21k has 21,841.
MAX_CLASSES = 100_000


class UsageError(Exception):
    """A problem with the arguments or files: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _number(kind, low=None, high=None, *, low_open=False):
    """An argparse type: an int (kind=int) or a finite float (kind=float) in [low, high]
    ((low, high] with low_open); a bad value is reported as ``argument --x: expected ...``."""
    expected = "an integer" if kind is int else "a finite number"
    if low is not None or high is not None:
        expected += (f" {'>' if low_open else '>='} {low}" if high is None else
                     f" in {'(' if low_open else '['}{low}, {high}]")

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or (kind is float and not math.isfinite(value)) or (
                low is not None and (value <= low if low_open else value < low)) or (
                high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


def _note(message):
    """How an input was read, when that was guessed: one line on stderr."""
    print(f"{PROG}: note: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------- data

class Data:
    """Training and validation arrays plus what the model needs to know about them.

    n_classes: the width of one-hot labels the class indices came from (their last classes
    may be absent from the samples), else None."""

    def __init__(self, name, X, y, X_val, y_val, task, n_classes=None):
        self.name, self.task = name, task
        self.X = _features(X, f"{name}: X")
        self.X_val = _features(X_val, f"{name}: validation X")
        self.y = _targets(y, task, f"{name}: y")
        self.y_val = _targets(y_val, task, f"{name}: validation y")
        for X_, y_, what in ((self.X, self.y, "training"), (self.X_val, self.y_val,
                                                            "validation")):
            if len(X_) != len(y_):
                raise UsageError(f"{name}: {len(X_)} {what} samples in X but {len(y_)} in y")
        if self.X.shape[1] != self.X_val.shape[1]:
            raise UsageError(f"{name}: training X has {self.X.shape[1]} features but "
                             f"validation X has {self.X_val.shape[1]}")
        if len(self.X) == 0 or len(self.X_val) == 0:
            raise UsageError(f"{name}: needs at least one training and one validation sample")
        if task == "classification":
            self.n_outputs = max(int(max(self.y.max(), self.y_val.max())) + 1, n_classes or 0)
        else:
            self.n_outputs = self.y.shape[1]
            if self.y_val.shape[1] != self.n_outputs:
                raise UsageError(f"{name}: {self.n_outputs} training targets per sample but "
                                 f"{self.y_val.shape[1]} validation targets")

    def hold_out(self, fraction):
        """Validate on the last ``fraction`` of the training samples instead (``Model.train``'s
        validation_split rule)."""
        from nnfs_fast.model import split_validation
        self.X, self.y, (self.X_val, self.y_val) = split_validation(self.X, self.y, fraction)

    def describe(self):
        what = (f"{self.n_outputs} classes" if self.task == "classification"
                else f"{self.n_outputs} regression target{'s' * (self.n_outputs > 1)}")
        return (f"data: {self.name}, {len(self.X):,} training samples ({self.X.shape[1]} "
                f"features, {what}), {len(self.X_val):,} validation samples")


def _features(X, what):
    from nnfs_fast.datasets.files import as_finite_float32
    X = np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise UsageError(f"{what}: expected numbers, got dtype {X.dtype}")
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        X = X.reshape(len(X), -1)
    try:
        return as_finite_float32(X, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _targets(y, task, what):
    from nnfs_fast.datasets.files import as_finite_float32, check_finite
    y = np.asarray(y)
    if y.dtype.kind not in "fiub":
        raise UsageError(f"{what}: expected numbers, got dtype {y.dtype}")
    if y.ndim == 0:
        raise UsageError(f"{what}: expected one target per sample, got a scalar")
    if task == "regression":
        try:
            return as_finite_float32(y.reshape(len(y), -1), what)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise UsageError(f"{what}: class labels must be one integer per sample, got shape "
                         f"{y.shape}")
    try:
        check_finite(y, what)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if y.size and (np.any(y != np.round(y)) or y.min() < 0):
        raise UsageError(f"{what}: class labels must be integers >= 0 (use --task "
                         f"regression for real-valued targets)")
    if y.size and y.max() >= MAX_CLASSES:
        raise UsageError(f"{what}: the largest class label is {y.max():.15g}, which would make "
                         f"{int(y.max()) + 1:,} classes (at most {MAX_CLASSES:,}): is the target "
                         f"column an identifier or a measurement? (--task regression for "
                         f"real-valued targets)")
    return y.astype(np.int64)


def load_data(args, preset_name):
    """The Data of ``--data`` (the NumPy global RNG is seeded with --seed first)."""
    from nnfs_fast import datasets
    source = args.data
    if source in ("spiral", "vertical"):
        n_val = max(1, args.samples // 10)
        _check_memory((args.samples + n_val) * args.classes * 9,  # float32 x, y; uint8 label
                      f"--samples {args.samples} --classes {args.classes}: the data")
        make = getattr(datasets, f"{source}_data")
        X, y = make(args.samples, args.classes)          # the book's order: training set,
        X_val, y_val = make(n_val, args.classes)         # then validation
        return Data(source, X, y, X_val, y_val, _task(args, "classification"))
    if source == "sine":
        _check_memory(args.samples * 32, f"--samples {args.samples}: the data")
        X, y = datasets.sine_data(args.samples)
        X_val = (np.arange(args.samples).reshape(-1, 1) + 0.5) / args.samples  # midpoints
        return Data("sine", X, y, X_val, np.sin(2 * np.pi * X_val),
                    _task(args, "regression"))
    if source == "digits":
        try:
            X, y, X_val, y_val = datasets.load_digits()
        except ImportError:
            raise UsageError('--data digits needs scikit-learn: pip install '
                             '"nnfs_fast[digits]"') from None
        return Data("digits (scikit-learn, 8x8 images)", X, y, X_val, y_val,
                    _task(args, "classification"))
    if preset_name == "mnist":
        path = source.split(":", 1)[1] if source.startswith("mnist:") else source
        try:
            X, y, X_val, y_val = datasets.load_mnist(path)
        except ImportError:
            raise UsageError(f"{path}: reading PNG folders needs Pillow: pip install "
                             f'"nnfs_fast[images]"') from None
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        keys = np.arange(len(X))
        np.random.shuffle(keys)  # the book's chapter 19 shuffles the training set once
        return Data(f"MNIST-format images in {path}", X[keys], y[keys], X_val, y_val,
                    _task(args, "classification"))
    return _load_file(source, args)


def _task(args, default):
    return default if args.task == "auto" else args.task


def _load_file(path, args):
    """An .npz (X, y and optionally X_test/y_test or X_val/y_val) or a .csv (features, then
    the target in the last column; a header line by --header, or detected), read by
    ``nnfs_fast.datasets.files.read_xy``. One-hot y becomes class indices unless --task
    regression."""
    from nnfs_fast.datasets.files import read_xy
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv"):
        raise UsageError(f"--data {path!r}: expected spiral, vertical, sine, digits, "
                         f"mnist:DIR, a folder of MNIST files, or a .npz/.csv file")
    try:
        X, y, X_val, y_val, columns = read_xy(path, header=args.header)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if ext == ".csv":
        _header_note(path, args.header, columns)
    n_classes = None
    if args.task != "regression":
        y, n_classes = _from_one_hot(path, "y", y)
        y_val, n_val_classes = _from_one_hot(path, "validation y", y_val)
        n_classes = max(n_classes or 0, n_val_classes or 0) or None
    task = _file_task(args, y)
    if X_val is not None:
        return Data(path, X, y, X_val, y_val, task, n_classes)
    n_val = math.ceil(args.val_split * len(X))
    if not 0 < n_val < len(X):
        raise UsageError(f"{path}: --val-split {args.val_split} leaves no training or no "
                         f"validation samples out of {len(X)}")
    order = np.random.permutation(len(X))
    train, val = order[n_val:], order[:n_val]
    return Data(path, X[train], np.asarray(y)[train], X[val], np.asarray(y)[val], task,
                n_classes)


def _from_one_hot(path, name, y):
    """(y, n_classes): one-hot rows as class indices (said on stderr) and their width; any
    other y as it is, and None."""
    from nnfs_fast.datasets.files import one_hot_labels
    indices = None if y is None else one_hot_labels(y)
    if indices is None:
        return y, None
    _note(f"{path}: {name} holds one-hot rows ({y.shape[0]:,} x {y.shape[1]}): read as class "
          f"indices 0-{y.shape[1] - 1} (--task regression keeps them as {y.shape[1]} targets)")
    return indices, y.shape[1]


def _file_task(args, y):
    if args.task != "auto":
        return args.task
    y = np.asarray(y)
    integral = y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.all(y == np.round(y)))
    return "classification" if integral and (y.ndim == 1 or y.shape[1] == 1) else "regression"


def _header_note(path, header, columns):
    """With --header/--no-header left out, say what the first line was taken for."""
    if header is not None:
        return
    if columns is None:
        _note(f"{path}: no header line (the first line holds numbers; --header would skip it)")
    else:
        names = ", ".join(columns[:6]) + (", ..." if len(columns) > 6 else "")
        _note(f"{path}: the first line ({names}) read as column names (--no-header would read "
              f"it as data)")


def read_input(path, header=None):
    """Samples for ``predict`` (``nnfs_fast.datasets.files.read_samples``): .npy, .npz (array
    X, or its only array) or .csv; (n_samples, n_features) float32, all finite."""
    from nnfs_fast.datasets.files import read_samples
    try:
        X, columns = read_samples(path, header=header)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if os.path.splitext(path)[1].lower() in (".csv", ".txt"):
        _header_note(path, header, columns)
    return X


def _check_memory(n_bytes, what):
    """UsageError when ``n_bytes`` (a lower bound of what ``what`` needs) is more memory than
    this machine has, before anything of that size is allocated (it would fail with a
    MemoryError, or be killed by the system, only after a long wait)."""
    limit = _memory_limit()
    if limit is not None and n_bytes > limit:
        raise UsageError(f"{what} needs at least {n_bytes / 2**30:,.1f} GiB of memory, more "
                         f"than the {limit / 2**30:,.1f} GiB this machine has")


def _memory_limit():
    """Bytes of memory this process may use: the physical memory, or a smaller cgroup (v2)
    limit; None when unknown."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not on Windows
        pass
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    return min(limits) if limits else None


# --------------------------------------------------------------------------------- model

def build_model(args, data):
    """The book's Model for ``data``: hidden Dense layers (with L1/L2 on weights and biases)
    each followed by the activation and, with --dropout, a Dropout layer; then the output
    layer: Softmax + categorical cross-entropy, or Linear + mean squared error."""
    from nnfs_fast import (Accuracy_Categorical, Accuracy_Regression, Activation_Linear,
                           Activation_ReLU, Activation_Sigmoid, Activation_Softmax,
                           Layer_Dense, Layer_Dropout, Loss_CategoricalCrossentropy,
                           Loss_MeanSquaredError, Model)
    activation = {"relu": Activation_ReLU, "sigmoid": Activation_Sigmoid}[args.activation]
    model = Model()
    n_inputs = data.X.shape[1]
    for width in args.hidden:
        model.add(Layer_Dense(n_inputs, width, weight_regularizer_l1=args.l1,
                              weight_regularizer_l2=args.l2, bias_regularizer_l1=args.l1,
                              bias_regularizer_l2=args.l2))
        model.add(activation())
        if args.dropout:
            model.add(Layer_Dropout(args.dropout))
        n_inputs = width
    model.add(Layer_Dense(n_inputs, data.n_outputs))
    if data.task == "classification":
        model.add(Activation_Softmax())
        model.set(loss=Loss_CategoricalCrossentropy(), accuracy=Accuracy_Categorical())
    else:
        for layer in model.layers:  # chapter 17: regression starts from 0.1 * randn
            if hasattr(layer, "weights"):
                layer.weights *= np.float32(10)
        model.add(Activation_Linear())
        model.set(loss=Loss_MeanSquaredError(), accuracy=Accuracy_Regression())
    model.set(optimizer=build_optimizer(args))
    model.finalize()
    return model


def _check_model_memory(args, data):
    """Refuse --hidden sizes whose weights and gradients, with one batch's activations and
    their gradients (float32), cannot fit in memory, before a layer is built."""
    widths = [data.X.shape[1], *args.hidden, data.n_outputs]
    layers = list(zip(widths, widths[1:]))
    params = sum(n_in * n_out + n_out for n_in, n_out in layers)
    rows = max(min(args.batch_size or len(data.X), len(data.X)),
               min(args.eval_batch_size or len(data.X_val), len(data.X_val)))
    # + the float64 draw of the largest layer's initial weights (Layer_Dense, as the book)
    n_bytes = 8 * params + 8 * max(a * b for a, b in layers) + 8 * rows * sum(widths[1:])
    _check_memory(n_bytes, f"the model (--hidden {' '.join(map(str, args.hidden))}: "
                           f"{params:,} parameters) with batches of {rows:,} samples")


def build_optimizer(args):
    from nnfs_fast import Optimizer_Adagrad, Optimizer_Adam, Optimizer_RMSprop, Optimizer_SGD
    kwargs = {"learning_rate": args.lr, "decay": args.decay}
    if args.epsilon is not None:
        if args.optimizer == "sgd":
            raise UsageError("--epsilon does not apply to --optimizer sgd")
        kwargs["epsilon"] = args.epsilon
    for option, optimizer in OPTIMIZER_OPTIONS.items():
        value = getattr(args, option)
        if value is not None:
            if args.optimizer != optimizer:
                raise UsageError(f"--{option} applies to --optimizer {optimizer} only")
            kwargs[{"beta1": "beta_1", "beta2": "beta_2"}.get(option, option)] = value
    cls = {"sgd": Optimizer_SGD, "adagrad": Optimizer_Adagrad, "rmsprop": Optimizer_RMSprop,
           "adam": Optimizer_Adam}[args.optimizer]
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def describe_model(model):
    parts = []
    for layer in model.layers:
        name = type(layer).__name__.split("_", 1)[-1]
        if hasattr(layer, "weights"):
            n_in, n_out = layer.weights.shape
            regs = [f"{k[0].upper()}{k[-2:]} {getattr(layer, k):g}" for k in (
                "weight_regularizer_l1", "weight_regularizer_l2") if getattr(layer, k)]
            parts.append(f"Dense({n_in}, {n_out}{''.join(', ' + r for r in regs)})")
        elif name == "Dropout":
            parts.append(f"Dropout({1 - layer.rate:.3g})")
        else:
            parts.append(name)
    opt = model.optimizer
    args = ", ".join(f"{k}={getattr(opt, k)!r}" for k in ("learning_rate", "decay", "momentum",
                                                           "rho", "beta_1", "beta_2")
                     if hasattr(opt, k))
    loss = type(model.loss).__name__.replace("Loss_", "")
    return f"model: {' -> '.join(parts)}; {loss}; {type(opt).__name__}({args})"


# ---------------------------------------------------------------------------------- train

def fit(model, data, args, say):
    """Train with one Model.train call: validation every --print-every epochs (every epoch
    with --early-stopping), a line after each validation that is printed, the options'
    callbacks. Returns (history, seconds in Model.train, callbacks by option name)."""
    from nnfs_fast import callbacks
    print_every = args.print_every or max(1, args.epochs // 10)
    show_bar = args.progress == "on" or (args.progress == "auto" and not args.quiet
                                         and sys.stderr.isatty())
    printer = EpochLines(say, print_every)
    chosen = {}
    if args.early_stopping is not None:
        chosen["early_stopping"] = callbacks.EarlyStopping(
            monitor="val_loss", patience=args.early_stopping, restore_best_weights=True)
    if args.checkpoint:
        chosen["checkpoint"] = callbacks.ModelCheckpoint(args.checkpoint, monitor="val_loss",
                                                         save_best_only=True)
    if args.csv_log:
        chosen["csv_log"] = callbacks.CSVLogger(args.csv_log)
    t0 = time.perf_counter()
    try:
        history = model.train(
            data.X, data.y, epochs=args.epochs, batch_size=args.batch_size,
            shuffle=args.shuffle, verbose=False, progress="epochs" if show_bar else False,
            validation_every=1 if "early_stopping" in chosen else print_every,
            validation_batch_size=args.eval_batch_size,
            validation_data=(data.X_val, data.y_val), callbacks=[printer, *chosen.values()])
    finally:
        fit.epochs_done = printer.epochs_done
    seconds = time.perf_counter() - t0
    printer.finish()
    if "val_epoch" not in history:
        history["val_epoch"] = list(range(1, len(history["val_loss"]) + 1))
    return history, seconds, chosen


class EpochLines(Callback):
    """The command line's ``epoch: N, acc: ..., val_loss: ...`` line every ``print_every``
    epochs and after the last one (``finish``), above the progress bar if one is shown."""

    def __init__(self, say, print_every):
        self.say, self.print_every = say, print_every
        self.epochs_done, self._pending = 0, None

    def on_epoch_end(self, epoch, logs):
        self.epochs_done = epoch
        self._pending = (epoch, dict(logs))
        if epoch % self.print_every == 0:
            self.finish()

    def finish(self):
        """Print the last epoch's line if it has not been printed."""
        if self._pending is None:
            return
        epoch, h = self._pending
        self._pending = None
        self.say(f"epoch: {epoch}, acc: {h['acc']:.3f}, loss: {h['loss']:.3f} ("
                 f"data_loss: {h['data_loss']:.3f}, reg_loss: {h['reg_loss']:.3f}), "
                 f"lr: {h['lr']}, val_acc: {h['val_acc']:.3f}, val_loss: {h['val_loss']:.3f}")


def cmd_train(args):
    start = time.perf_counter()
    preset_name = _preset_name(args.data)
    _apply_preset(args, PRESETS[preset_name])
    _check_train_args(args)
    import nnfs_fast
    from nnfs_fast import datasets
    from nnfs_fast.runtime.config import config
    if args.threads:
        nnfs_fast.set_num_threads(args.threads)
    try:
        datasets.init(args.seed)
        data = load_data(args, preset_name)
        if args.validation_split:
            data.hold_out(args.validation_split)
    except (TypeError, ValueError) as exc:  # e.g. --classes 300: labels are uint8
        raise UsageError(f"--data {args.data}: {exc}") from None
    say = _silent if args.quiet else progress.write
    _check_model_memory(args, data)
    model = build_model(args, data)
    cfg = config()
    batches = ("full batch" if args.batch_size is None
               else f"batch size {args.batch_size}{', shuffled' * args.shuffle}")
    say(data.describe())
    say(describe_model(model))
    say(f"training: {args.epochs} epochs, {batches}; {cfg['threads']} thread"
        f"{'s' * (cfg['threads'] > 1)}, {cfg['kernel_level']} kernels")
    try:
        history, seconds, chosen = fit(model, data, args, say)
    except KeyboardInterrupt:
        print(f"{PROG} train: interrupted after {fit.epochs_done} epochs; "
              f"nothing was saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    stop = chosen.get("early_stopping")
    if stop is not None and stop.best_epoch:
        say(f"early stopping: best validation loss at epoch {stop.best_epoch}"
            + (f", stopped after epoch {stop.stopped_epoch}" if stop.stopped_epoch else "")
            + "; its weights restored")
        val = model.evaluate(data.X_val, data.y_val, batch_size=args.eval_batch_size,
                             verbose=False)
    else:
        val = {"loss": history["val_loss"][-1], "acc": history["val_acc"][-1]}
    print(f"validation, acc: {val['acc']:.3f}, loss: {val['loss']:.3f}")
    epochs_run = len(history["loss"])
    samples = epochs_run * len(data.X)
    print(f"time: {seconds:.2f} s training ({samples:,} samples in {epochs_run} epochs, "
          f"{samples / seconds:,.0f} samples/s), {time.perf_counter() - start:.2f} s in all")
    if args.save:
        try:
            model.save(args.save)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--save {args.save}: {exc}") from None
        print(f"saved the model to {args.save}")
    if args.plot:
        plot_training(history, model, data, args.plot)
        print(f"saved the plot to {args.plot}")
    return 0


def _preset_name(source):
    if source in PRESETS and source not in ("mnist", "file"):
        return source
    if source.startswith("mnist:") or os.path.isdir(source):
        return "mnist"
    return "file"


def _apply_preset(args, preset):
    """Fill the options left unset from the dataset's preset."""
    for key, value in preset.items():
        if key in ("lr", "decay", "optimizer", "batch_size"):
            continue
        if getattr(args, key) is None:
            setattr(args, key, value)
    same_optimizer = args.optimizer in (None, preset["optimizer"])
    if args.optimizer is None:
        args.optimizer = preset["optimizer"]
    if args.lr is None:
        args.lr = preset["lr"] if same_optimizer else DEFAULT_LR[args.optimizer]
    if args.decay is None:
        args.decay = preset["decay"] if same_optimizer else 0.0
    if args.batch_size is None:
        args.batch_size = preset["batch_size"]
    elif args.batch_size == 0:
        args.batch_size = None  # --batch-size 0: the whole training set in one step
    if args.eval_batch_size is None:
        args.eval_batch_size = args.batch_size and max(args.batch_size, 1024)
    if args.samples is None:
        args.samples = 1000


def _check_train_args(args):
    """What the argparse types (``_number``) cannot say alone."""
    if not args.dropout < 1:
        raise UsageError(f"--dropout must be in [0, 1), got {args.dropout}")
    if not args.val_split < 1:
        raise UsageError(f"--val-split must be between 0 and 1, got {args.val_split}")
    if args.validation_split is not None and not args.validation_split < 1:
        raise UsageError(f"--validation-split must be between 0 and 1, got "
                         f"{args.validation_split}")
    for option in ("save", "checkpoint", "csv_log"):
        if getattr(args, option):
            _check_writable(getattr(args, option), "--" + option.replace("_", "-"))
    if args.plot:
        _check_plot(args.plot, "--plot")


def _check_writable(path, option):
    """Fail before the work starts if ``path`` cannot be written later."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a folder")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{option} {path}: the folder {folder} is not writable")


def _check_plot(path, option):
    _check_writable(path, option)
    if find_spec("matplotlib") is None:
        raise UsageError(f"{option} needs matplotlib: pip install matplotlib (or "
                         f'"nnfs_fast[plot]")')
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".png", ".svg", ".pdf", ".jpg", ".jpeg"):
        raise UsageError(f"{option} {path}: expected a .png, .svg, .pdf or .jpg file name")


def _silent(*args, **kwargs):
    pass


# ----------------------------------------------------------------------------------- plots

def plot_training(history, model, data, path):
    """Loss and accuracy curves, and the decision regions (2-D classification) or the fitted
    curve (1-D regression), in one figure written atomically to ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = data.X.shape[1] == 2 and data.task == "classification" or \
        data.X.shape[1] == 1 and data.task == "regression" and data.n_outputs == 1
    fig, axes = plt.subplots(1, 3 if shown else 2, figsize=(15 if shown else 10, 4.2))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        ax.plot(epochs, history[key], label=f"training {label}", lw=1)
        ax.plot(history["val_epoch"], history[f"val_{key}"], "o-", ms=3,
                label=f"validation {label}")
        ax.set_xlabel("epoch")
        ax.set_title(label)
        values = np.asarray(history[key] + history[f"val_{key}"])
        if key == "loss" and values.min() > 0 and values.max() > 100 * values.min():
            ax.set_yscale("log")
        ax.legend()
        ax.grid(alpha=0.3)
    if shown and data.task == "classification":
        _plot_regions(axes[2], model, data)
    elif shown:
        order = np.argsort(data.X_val[:, 0])
        axes[2].plot(data.X[:, 0], data.y[:, 0], ".", ms=2, label="training data")
        axes[2].plot(data.X_val[order, 0], model.predict(data.X_val[order])[:, 0],
                     label="model")
        axes[2].set_title("fit on the validation inputs")
        axes[2].legend()
    fig.tight_layout()
    _save_figure(fig, path)
    plt.close(fig)


def _plot_regions(ax, model, data):
    lo = np.minimum(data.X.min(axis=0), data.X_val.min(axis=0)) - 0.1
    hi = np.maximum(data.X.max(axis=0), data.X_val.max(axis=0)) + 0.1
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 300), np.linspace(lo[1], hi[1], 300))
    grid = np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)
    classes = model.output_layer_activation.predictions(model.predict(grid, batch_size=8192))
    cmap = "tab10" if data.n_outputs <= 10 else "tab20"
    ax.contourf(gx, gy, classes.reshape(gx.shape), levels=np.arange(data.n_outputs + 1) - 0.5,
                cmap=cmap, alpha=0.35, vmin=0, vmax=9 if cmap == "tab10" else 19)
    step = max(1, len(data.X) // 3000)
    ax.scatter(data.X[::step, 0], data.X[::step, 1], c=data.y[::step], cmap=cmap, s=4,
               vmin=0, vmax=9 if cmap == "tab10" else 19)
    ax.set_title("decision regions and training samples")
    ax.set_aspect("equal", adjustable="box")


def _save_figure(fig, path):
    from nnfs_fast.io.atomic import atomic_write
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    try:
        atomic_write(path, lambda f: fig.savefig(f, format=ext, dpi=110))
    except (OSError, ValueError) as exc:  # ValueError: not a regular file (a device, a pipe)
        raise UsageError(f"{path}: cannot write it ({exc})") from None


# -------------------------------------------------------------------------------- predict

def cmd_predict(args):
    import nnfs_fast
    from nnfs_fast import Activation_Softmax
    if args.threads:
        nnfs_fast.set_num_threads(args.threads)
    if args.output:
        _check_writable(args.output, "--output")
    model = _load_model(args.model, args.allow_pickle)
    X = read_input(args.input, args.header)
    n_features = model.trainable_layers[0].weights.shape[0] if model.trainable_layers else None
    if n_features is not None and X.shape[1] != n_features:
        hint = " (a training .csv? leave out its last column, the target)" \
            if X.shape[1] == n_features + 1 and args.input.lower().endswith(".csv") else ""
        raise UsageError(f"{args.input}: {X.shape[1]} features per sample, but the model "
                         f"expects {n_features}{hint}")
    outputs = model.predict(X, batch_size=args.batch_size or None)  # 0: all at once
    classifier = isinstance(model.output_layer_activation, Activation_Softmax)
    if classifier and not args.probabilities:
        result = model.output_layer_activation.predictions(outputs).astype(np.int64)
    else:
        result = outputs
    write_predictions(result, args.output)
    return 0


def _load_model(path, allow_pickle):
    from nnfs_fast import Model
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such model file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, not a model file")
    try:
        return Model.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UsageError(f"{path}: cannot load the model: {exc}") from None
    except Exception as exc:  # e.g. pickle.UnpicklingError from a foreign pickle
        raise UsageError(f"{path}: cannot load the model: {type(exc).__name__}: {exc}") \
            from None


def write_predictions(result, path):
    """Print one line per sample, or write .npy / .csv (atomically)."""
    fmt = "%d" if result.dtype.kind in "iu" else "%.9g"
    rows = result.reshape(len(result), -1)
    if path is None:
        np.savetxt(sys.stdout, rows, fmt=fmt, delimiter=",")
        return
    from nnfs_fast.io.atomic import atomic_write

    def write(f):
        if path.lower().endswith(".npy"):
            np.save(f, result)
        else:
            np.savetxt(f, rows, fmt=fmt, delimiter=",")
    try:
        atomic_write(path, write)
    except (OSError, ValueError) as exc:  # ValueError: not a regular file (a device, a pipe)
        raise UsageError(f"--output {path}: cannot write it ({exc})") from None


# --------------------------------------------------------------------------------- export

def cmd_export(args):
    """Write a saved model as ONNX, a torch nn.Sequential and/or safetensors parameters."""
    from nnfs_fast import Model, export
    from nnfs_fast.io import safetensors as safetensors_io
    targets = [(option, path) for option, path in (
        ("--onnx", args.onnx), ("--torch", args.torch), ("--safetensors", args.safetensors))
        if path]
    if not targets:
        raise UsageError("export: give at least one of --onnx FILE, --torch FILE, "
                         "--safetensors FILE")
    for option, path in targets:
        _check_writable(path, option)
    if args.safetensors and not safetensors_io.is_safetensors_path(args.safetensors):
        raise UsageError(f"--safetensors {args.safetensors}: the name must end in "
                         f"{safetensors_io.SUFFIX} (Model.save_parameters writes safetensors by that "
                         "suffix)")
    model = _load_model(args.model, args.allow_pickle)
    writers = {"--onnx": ("the ONNX model", export.to_onnx),
               "--torch": ("the torch nn.Sequential", export.save_torch),
               "--safetensors": ("the parameters (safetensors)", Model.save_parameters)}
    for option, path in targets:
        what, write = writers[option]
        try:
            write(model, path)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"{option} {path}: {exc}") from None
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot write it ({exc})") from None
        print(f"saved {what} to {path}")
    return 0


# ---------------------------------------------------------------------------- bench, info

def cmd_bench(args):
    from nnfs_fast.testing import bench as _bench
    if args.json:
        _check_writable(args.json, "--json")
    if args.plot:
        _check_plot(args.plot, "--plot")
    result = _bench.run(suites=args.suite, threads=args.threads, quick=args.quick,
                        repeat=args.repeat, seconds=args.seconds,
                        frameworks=args.frameworks)
    if args.json:
        _bench.write_json(result, args.json)
        print(f"\nsaved the results to {args.json}")
    if args.plot:
        _bench.plot(result, args.plot)
        print(f"saved the plot to {args.plot}")
    return 0


def cmd_info(args):
    import nnfs_fast
    nnfs_fast.show_config()
    extras = {name: "yes" if find_spec(module) else "no" for name, module in (
        ("matplotlib", "matplotlib"), ("tqdm", "tqdm"), ("scikit-learn", "sklearn"),
        ("Pillow", "PIL"), ("torch", "torch"), ("nnfs", "nnfs"))}
    print(f"{'optional:':15} " + ", ".join(f"{k} {v}" for k, v in extras.items()))
    return 0


# --------------------------------------------------------------------------------- parser

def make_parser():
    import nnfs_fast
    from nnfs_fast.testing import bench as _bench
    parser = _Parser(prog=PROG, description="The Neural Networks from Scratch framework on "
                     "fast kernels: train a model, predict with it, benchmark, show the build.")
    parser.add_argument("--version", action="version",
                        version=f"nnfs_fast {nnfs_fast.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="train a model (default: the book's spiral classifier)",
                       description="Train the book's Model on a dataset and report validation "
                       "accuracy, loss, time and samples per second. Options left out take "
                       "the dataset's defaults (see docs/CLI.md).")
    p.add_argument("--data", default="spiral", metavar="SOURCE",
                   help="spiral (default), vertical, sine, digits (needs scikit-learn), "
                   "mnist:DIR (IDX files or the book's train/<label>/*.png folders), or a "
                   ".npz (X, y, optional X_test/y_test) or .csv (last column = target) file")
    p.add_argument("--samples", type=_number(int, 1),
                   help="spiral/vertical: samples per class (1000); "
                   "sine: points (1000)")
    p.add_argument("--classes", type=_number(int, 1), default=3,
                   help="spiral/vertical: classes (3)")
    p.add_argument("--header", action=argparse.BooleanOptionalAction,
                   help=".csv: the first line is (--header) or is not (--no-header) a line "
                   "of column names (default: a header if none of its fields is a number; "
                   "a note on stderr says what was decided)")
    p.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="regression (Linear + MSE) or classification (Softmax + "
                   "cross-entropy); auto: regression for sine and real-valued file targets")
    p.add_argument("--val-split", type=_number(float, 0, low_open=True), default=0.2,
                   metavar="FRACTION",
                   help="files without a test set: fraction held out for validation, drawn "
                   "at random (0.2)")
    p.add_argument("--validation-split", type=_number(float, 0, low_open=True), metavar="F",
                   help="validate on the last fraction F of the training samples instead of "
                   "the dataset's validation set (Model.train's validation_split)")
    p.add_argument("--hidden", type=_number(int, 1), nargs="+", metavar="N",
                   help="hidden layer sizes, e.g. --hidden 128 128")
    p.add_argument("--activation", choices=("relu", "sigmoid"), default="relu")
    p.add_argument("--dropout", type=_number(float, 0), help="dropout rate after each hidden layer")
    p.add_argument("--l1", type=_number(float, 0), default=0.0,
                   help="L1 on hidden weights and biases")
    p.add_argument("--l2", type=_number(float, 0), help="L2 on hidden weights and biases")
    p.add_argument("--optimizer", choices=("sgd", "adagrad", "rmsprop", "adam"))
    p.add_argument("--lr", type=_number(float), help="learning rate")
    p.add_argument("--decay", type=_number(float),
                   help="learning-rate decay: lr / (1 + decay * step)")
    p.add_argument("--momentum", type=_number(float), help="sgd momentum")
    p.add_argument("--epsilon", type=_number(float), help="adagrad/rmsprop/adam epsilon")
    p.add_argument("--rho", type=_number(float), help="rmsprop cache decay")
    p.add_argument("--beta1", type=_number(float), help="adam beta_1")
    p.add_argument("--beta2", type=_number(float), help="adam beta_2")
    p.add_argument("--epochs", type=_number(int, 1), help="passes over the training data")
    p.add_argument("--batch-size", type=_number(int, 0),
                   help="samples per step; 0: the whole set")
    p.add_argument("--eval-batch-size", type=_number(int, 1), help=argparse.SUPPRESS)
    p.add_argument("--shuffle", action="store_true", help="reshuffle the samples every epoch")
    p.add_argument("--seed", type=_number(int, 0, 2**32 - 1), default=0,
                   help="seed of NumPy's global RNG (0)")
    p.add_argument("--threads", type=_number(int, 1, MAX_THREADS),
                   help="kernel threads (default: all)")
    p.add_argument("--save", metavar="MODEL", help="write the trained model here at the end")
    p.add_argument("--plot", metavar="FILE.png", help="loss/accuracy curves and decision "
                   "regions (needs matplotlib)")
    p.add_argument("--print-every", type=_number(int, 1), metavar="EPOCHS",
                   help="print a line every EPOCHS epochs (default: 10 lines in all)")
    p.add_argument("--early-stopping", type=_number(int, 0), metavar="PATIENCE",
                   help="validate every epoch; stop when the validation loss has not "
                   "improved for PATIENCE epochs and keep the best epoch's weights")
    p.add_argument("--checkpoint", metavar="FILE", help="save the model here (atomically) "
                   "each time the validation loss improves")
    p.add_argument("--csv-log", metavar="FILE", help="write one CSV row per epoch: the "
                   "training values and, where measured, the validation values")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the results")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bar over the epochs on stderr (auto: on a terminal)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="predictions of a saved model",
                       description="Class indices (or values, for regression) of a model "
                       "saved by 'train --save', one line per sample.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("input", metavar="INPUT", help=".npy, .npz or .csv of samples (rows)")
    p.add_argument("--output", "-o", metavar="FILE", help="write .npy or .csv instead")
    p.add_argument("--header", action=argparse.BooleanOptionalAction,
                   help=".csv: the first line is (--header) or is not (--no-header) a line "
                   "of column names (default: detected, with a note on stderr)")
    p.add_argument("--probabilities", action="store_true",
                   help="the raw outputs (softmax probabilities) instead of class indices")
    p.add_argument("--batch-size", type=_number(int, 0), help="samples per step (0: all)")
    p.add_argument("--threads", type=_number(int, 1, MAX_THREADS))
    p.add_argument("--allow-pickle", action="store_true",
                   help="also read the book's pickle files (only files you trust)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="write a saved model as ONNX, PyTorch or safetensors",
                       description="Write a model saved by 'train --save' (or Model.save) for "
                       "ONNX Runtime, PyTorch or any safetensors reader (docs/SCALING.md).")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--onnx", metavar="FILE", help="an ONNX graph (opset 13; needs "
                   'pip install "nnfs_fast[onnx]")')
    p.add_argument("--torch", metavar="FILE", help="the torch.nn.Sequential, torch.save'd "
                   '(read it with nnfs_fast.export.load_torch; needs "nnfs_fast[torch]")')
    p.add_argument("--safetensors", metavar="FILE", help="the parameters, named as the "
                   "torch module's state_dict (no extra needed)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="also read the book's pickle files (only files you trust)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="benchmark the kernels and training steps",
                       description="Time the dense-layer kernels against NumPy, and one "
                       "training step of the book's chapter 10 and chapter 19 models against "
                       "the book's code in NumPy (also under nnfs.init() when nnfs is "
                       "installed) and PyTorch (when installed). Blocks of calls alternate "
                       "between contenders; medians are reported.")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    p.add_argument("--threads", type=_number(int, 1, MAX_THREADS), nargs="+", metavar="N",
                   help="thread counts to run (default: all threads)")
    p.add_argument("--suite", nargs="+", choices=("dense", "train"),
                   default=["dense", "train"])
    p.add_argument("--frameworks", nargs="+", choices=_bench.FRAMEWORKS,
                   default=list(_bench.FRAMEWORKS), help="training-step contenders")
    p.add_argument("--repeat", type=_number(int, 1), help="blocks per contender (15)")
    p.add_argument("--seconds", type=_number(float, 0, low_open=True), help="length of one block")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="bar charts (needs matplotlib)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("info", help="version, compiler, OpenMP, threads, kernel path")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    """Entry point of ``nnfs-fast``; returns the exit status."""
    try:
        args = make_parser().parse_args(argv)
        return args.func(args)
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MemoryError as exc:  # what _check_memory's lower bounds let through
        print(f"{PROG}: error: out of memory{f' ({exc})' if str(exc) else ''}: try smaller "
              f"--hidden, --batch-size or --samples", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `nnfs-fast predict ... | head`
        sys.stderr.close()
        return 0
