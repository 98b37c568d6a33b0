"""Helpers shared by the example scripts: command-line options, timing, confusion matrices and
optional matplotlib figures. Not part of nnfs_fast; the scripts import it from this folder."""
import argparse
import time

import numpy as np


def parse_args(description, add_arguments=None):
    """--quick (few epochs / small data, for the test suite) and --plot FILE, plus the
    script's own options added by ``add_arguments(parser)``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="a short run: few epochs on little data (used by the tests)")
    parser.add_argument("--plot", metavar="FILE",
                        help="save a figure to FILE (PNG, SVG, PDF...; needs matplotlib)")
    if add_arguments is not None:
        add_arguments(parser)
    return parser.parse_args()


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self.seconds = time.perf_counter() - self.start


def architecture(layers):
    """A short description such as ``Dense(64,128) ReLU Dense(128,10) Softmax``."""
    parts = []
    for layer in layers:
        name = type(layer).__name__.split("_")[-1]
        if hasattr(layer, "weights"):
            name += "({},{})".format(*layer.weights.shape)
        parts.append(name)
    return " ".join(parts)


def confusion_matrix(y_true, y_pred, n_classes):
    """counts[i, j] = number of samples of class i predicted as class j."""
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.intp), np.asarray(y_pred, dtype=np.intp)), 1)
    return counts


def print_confusion(counts, names=None):
    """The confusion matrix as text: rows are true classes, columns predictions."""
    names = [f"{name[:9]:<9} " for name in names] if names else [""] * len(counts)
    margin = " " * (3 + len(names[0]))
    width = max(4, len(str(counts.max())) + 1)
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(margin + "".join(f"{i:>{width}}" for i in range(len(counts))))
    for i, row in enumerate(counts):
        print(f"{i:>2} {names[i]}" + "".join(f"{c:>{width}}" for c in row))


def pyplot():
    """matplotlib.pyplot with a file-only backend, or None (with a note) if not installed."""
    try:
        import matplotlib
    except ImportError:
        print("(matplotlib is not installed: pip install 'nnfs_fast[plot]' to get the figure)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_training(filename, history, counts=None, names=None, title=""):
    """Loss and accuracy per epoch (training and, when present, validation) and, with
    ``counts``, the confusion matrix, side by side in one figure saved to ``filename``."""
    plt = pyplot()
    if plt is None:
        return
    panels = 3 if counts is not None else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4))
    epochs = np.arange(1, len(history["loss"]) + 1)
    for ax, key, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy")):
        ax.plot(epochs, history[key], label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
        ax.grid(alpha=0.3)
    if counts is not None:
        plot_confusion(axes[2], counts, names)
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, filename)


def plot_confusion(ax, counts, names=None):
    """The confusion matrix as an image with the counts written in the cells."""
    n = len(counts)
    ax.imshow(counts, cmap="Blues")
    ticks = np.arange(n)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.set_yticklabels(names if names else ticks, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("validation confusion matrix")
    threshold = counts.max() / 2
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7,
                        color="white" if counts[i, j] > threshold else "black")


def save(fig, filename):
    fig.savefig(filename, dpi=110)
    print(f"figure saved to {filename}")
