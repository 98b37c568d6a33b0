"""``nnfs-fast predict``: class indices (or outputs) of a saved model for samples in a
.npy/.npz/.csv file, printed or written atomically."""
import os
import sys

import numpy as np

from nnfs_fast.cli.common import UsageError, check_writable, header_note, load_model


def read_input(path, header=None):
    """Samples for ``predict`` (``nnfs_fast.datasets.files.read_samples``): .npy, .npz (array
    X, or its only array) or .csv; (n_samples, n_features) float32, all finite."""
    from nnfs_fast.datasets.files import read_samples
    try:
        X, columns = read_samples(path, header=header)
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if os.path.splitext(path)[1].lower() in (".csv", ".txt"):
        header_note(path, header, columns)
    return X


def cmd_predict(args):
    import nnfs_fast
    from nnfs_fast import Activation_Softmax
    if args.threads:
        nnfs_fast.set_num_threads(args.threads)
    if args.output:
        check_writable(args.output, "--output")
    model = load_model(args.model, args.allow_pickle)
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

