"""nnfs_fast: the framework of *Neural Networks from Scratch in Python* on Cython + OpenMP
kernels. Same class names, arguments, attributes and formulas as the book; float32 throughout.

``from nnfs_fast import *`` gives the book's classes; ``nnfs_fast.datasets`` the book's
datasets; ``nnfs_fast.reference`` a pure-NumPy float64 implementation of the same API.
"""
__version__ = "0.2.0.dev0"   # the one place (pyproject.toml reads it); changes: CHANGELOG.md

try:
    from nnfs_fast.layers import Layer_Dense, Layer_Dropout, Layer_Input
    from nnfs_fast.runtime.openmp import get_num_threads, openmp_enabled, set_num_threads
except ImportError as exc:  # a source checkout without built extensions, or a broken build
    if type(exc).__name__ == "UnusableLevelError":  # a mistyped NNFS_FAST_ISA: its own message
        raise
    raise ImportError(
        f"nnfs_fast's compiled kernels could not be loaded ({exc}). Install the package with "
        "'pip install .' (or a wheel) instead of importing it from the source tree; if you "
        "built it yourself, rebuild with 'pip install --force-reinstall --no-cache-dir .'."
    ) from exc

from nnfs_fast.accuracy import Accuracy, Accuracy_Categorical, Accuracy_Regression
from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.datasets import (  # init and the toy sets: by name, not in __all__ (star import)
    create_data_mnist,
    load_mnist_dataset,
)
from nnfs_fast.datasets import init as init
from nnfs_fast.datasets import sine_data as sine_data
from nnfs_fast.datasets import spiral_data as spiral_data
from nnfs_fast.datasets import vertical_data as vertical_data
from nnfs_fast.losses import (
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Loss,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanAbsoluteError,
    Loss_MeanSquaredError,
)
from nnfs_fast.model import Model
from nnfs_fast.optimizers import Optimizer_Adagrad, Optimizer_Adam, Optimizer_RMSprop, Optimizer_SGD
from nnfs_fast.runtime.config import show_config


def set_seed(seed):
    """Seed NumPy's global legacy RNG (``np.random.seed(seed)``), the one every random draw
    of nnfs_fast and the book uses (initial weights, datasets, dropout masks, shuffling);
    ``seed`` is an int in [0, 2**32 - 1]. The same as ``nnfs_fast.init(seed)``."""
    init(seed)


__all__ = [
    # the book's classes and helpers
    "Layer_Dense", "Layer_Dropout", "Layer_Input",
    "Activation_ReLU", "Activation_Softmax", "Activation_Sigmoid", "Activation_Linear",
    "Loss", "Loss_CategoricalCrossentropy", "Activation_Softmax_Loss_CategoricalCrossentropy",
    "Loss_BinaryCrossentropy", "Loss_MeanSquaredError", "Loss_MeanAbsoluteError",
    "Optimizer_SGD", "Optimizer_Adagrad", "Optimizer_RMSprop", "Optimizer_Adam",
    "Accuracy", "Accuracy_Categorical", "Accuracy_Regression", "Model",
    "load_mnist_dataset", "create_data_mnist",
    # ours (nnfs_fast.init and the datasets are reached by name, not star-imported)
    "get_num_threads", "set_num_threads", "openmp_enabled", "show_config",
    "set_seed",
]
