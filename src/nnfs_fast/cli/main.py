"""The ``nnfs-fast`` command line (also ``python -m nnfs_fast``).

    nnfs-fast train   [--data spiral|vertical|sine|digits|mnist:DIR|FILE] [options]
    nnfs-fast predict MODEL INPUT [--output FILE]
    nnfs-fast export  MODEL [--onnx FILE] [--torch FILE] [--safetensors FILE]
    nnfs-fast bench   [--quick] [--json FILE] [--plot FILE.png] [--threads N ...]
    nnfs-fast info

``train`` builds the book's Model (Dense -> activation [-> Dropout] ... -> Dense -> Softmax
or Linear), trains it with one ``Model.train`` call and reports validation accuracy, loss,
wall time and samples per second. This module holds the parser and the dispatch (and
``info``); each other command lives in its own module (train.py, predict.py, export.py,
bench.py; plots.py draws train's figure; common.py holds what they share).

A bad argument or file, or a model too large for the machine's memory, prints one line on
stderr and exits with status 2 (only a bug in nnfs_fast gives a traceback); Ctrl-C exits with
status 130 and --save writes nothing (the model file is written once, at the end, atomically,
so an earlier one stays whole; a --checkpoint file holds the best epoch so far). How a file
was read when that was guessed (a CSV header line, one-hot labels) is said on stderr as a
``note:`` line.
"""
import argparse
import math
import sys
from importlib.util import find_spec

from nnfs_fast.cli import bench, export, predict, train
from nnfs_fast.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, PROG, UsageError

# --threads above this is a typo, not a request (OpenMP would try to start that many threads)
MAX_THREADS = 1024


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


def cmd_info(args):
    import nnfs_fast
    nnfs_fast.show_config()
    extras = {name: "yes" if find_spec(module) else "no" for name, module in (
        ("matplotlib", "matplotlib"), ("tqdm", "tqdm"), ("scikit-learn", "sklearn"),
        ("Pillow", "PIL"), ("torch", "torch"), ("nnfs", "nnfs"))}
    print(f"{'optional:':15} " + ", ".join(f"{k} {v}" for k, v in extras.items()))
    return 0


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
    p.set_defaults(func=train.cmd_train)

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
    p.set_defaults(func=predict.cmd_predict)

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
    p.set_defaults(func=export.cmd_export)

    p = sub.add_parser("bench", help="benchmark the kernels and training steps",
                       description="Time the dense-layer kernels against NumPy, and one "
                       "training step of the book's chapter 10 and chapter 19 models against "
                       "the book's code in NumPy (also under nnfs.init() when nnfs is "
                       "installed), PyTorch and JAX (when installed). Blocks of calls alternate "
                       "between contenders; medians are reported.")
    p.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    p.add_argument("--threads", type=_number(int, 1, MAX_THREADS), nargs="+", metavar="N",
                   help="thread counts to run (default: all threads)")
    p.add_argument("--suite", nargs="+", choices=("dense", "train"),
                   default=["dense", "train"])
    p.add_argument("--frameworks", nargs="+", choices=_bench.FRAMEWORKS,
                   help="training-step contenders (default: those installed)")
    p.add_argument("--repeat", type=_number(int, 1), help="blocks per contender (15)")
    p.add_argument("--seconds", type=_number(float, 0, low_open=True), help="length of one block")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="bar charts (needs matplotlib)")
    p.set_defaults(func=bench.cmd_bench)

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
    except MemoryError as exc:  # what check_memory's lower bounds let through
        print(f"{PROG}: error: out of memory{f' ({exc})' if str(exc) else ''}: try smaller "
              f"--hidden, --batch-size or --samples", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `nnfs-fast predict ... | head`
        sys.stderr.close()
        return 0

