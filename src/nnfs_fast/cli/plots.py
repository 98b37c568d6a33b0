"""The figures of ``nnfs-fast train --plot``: loss and accuracy curves, and the decision regions
(2-D classification) or the fitted curve (1-D regression); needs matplotlib."""
import os

import numpy as np

from nnfs_fast.cli.common import UsageError


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

