"""nnfs_fast: the framework of *Neural Networks from Scratch in Python* on Cython + OpenMP
kernels. Same class names, arguments, attributes and formulas as the book; float32 throughout."""
__version__ = "0.1.0"

try:
    from nnfs_fast._openmp import get_num_threads, openmp_enabled, set_num_threads
    from nnfs_fast.layers import Layer_Dense
except ImportError as exc:  # a source checkout without built extensions, or a broken build
    raise ImportError(
        f"nnfs_fast's compiled kernels could not be loaded ({exc}). Install the package with "
        "'pip install .' (or a wheel) instead of importing it from the source tree; if you "
        "built it yourself, rebuild with 'pip install --force-reinstall --no-cache-dir .'."
    ) from exc

from nnfs_fast._config import show_config

__all__ = ["Layer_Dense", "get_num_threads", "set_num_threads", "show_config",
           "openmp_enabled"]
