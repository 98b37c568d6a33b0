"""``nnfs-fast train``: the dataset's arrays (``Data``), the book's Model built from the
options, and one ``Model.train`` call with callbacks for the options (validation every
--print-every epochs, --early-stopping, --checkpoint, --csv-log); no training loop of its own."""
import math
import os
import sys
import time

import numpy as np

from nnfs_fast import progress
from nnfs_fast.callbacks import Callback
from nnfs_fast.cli.common import (
    EXIT_INTERRUPTED,
    PROG,
    UsageError,
    check_memory,
    check_plot,
    check_writable,
    header_note,
    note,
)

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


# More classes than this is a column of identifiers or measurements, not class labels (the
# output layer would have that many neurons); ImageNet-21k has 21,841.
MAX_CLASSES = 100_000


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
        check_memory((args.samples + n_val) * args.classes * 9,  # float32 x, y; uint8 label
                      f"--samples {args.samples} --classes {args.classes}: the data")
        make = getattr(datasets, f"{source}_data")
        X, y = make(args.samples, args.classes)          # the book's order: training set,
        X_val, y_val = make(n_val, args.classes)         # then validation
        return Data(source, X, y, X_val, y_val, _task(args, "classification"))
    if source == "sine":
        check_memory(args.samples * 32, f"--samples {args.samples}: the data")
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
        header_note(path, args.header, columns)
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
    note(f"{path}: {name} holds one-hot rows ({y.shape[0]:,} x {y.shape[1]}): read as class "
          f"indices 0-{y.shape[1] - 1} (--task regression keeps them as {y.shape[1]} targets)")
    return indices, y.shape[1]


def _file_task(args, y):
    if args.task != "auto":
        return args.task
    y = np.asarray(y)
    integral = y.dtype.kind in "iub" or (y.dtype.kind == "f" and np.all(y == np.round(y)))
    return "classification" if integral and (y.ndim == 1 or y.shape[1] == 1) else "regression"


def build_model(args, data):
    """The book's Model for ``data``: hidden Dense layers (with L1/L2 on weights and biases)
    each followed by the activation and, with --dropout, a Dropout layer; then the output
    layer: Softmax + categorical cross-entropy, or Linear + mean squared error."""
    from nnfs_fast import (
        Accuracy_Categorical,
        Accuracy_Regression,
        Activation_Linear,
        Activation_ReLU,
        Activation_Sigmoid,
        Activation_Softmax,
        Layer_Dense,
        Layer_Dropout,
        Loss_CategoricalCrossentropy,
        Loss_MeanSquaredError,
        Model,
    )
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
    check_memory(n_bytes, f"the model (--hidden {' '.join(map(str, args.hidden))}: "
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
        from nnfs_fast.cli.plots import plot_training
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
            check_writable(getattr(args, option), "--" + option.replace("_", "-"))
    if args.plot:
        check_plot(args.plot, "--plot")


def _silent(*args, **kwargs):
    pass

