"""The book's pickles, read only behind ``allow_pickle=True``: a restricted unpickler whose
allow-list turns the book's objects into inert records and admits nothing else but NumPy arrays.

The book's files (``pickle.dump`` of a Model whose classes live in ``__main__``, or of a list of
(weights, biases) tuples) are read only with ``allow_pickle=True``. Even then the unpickler
builds no nnfs_fast object directly: allow-listed class names become inert records holding the
pickled attributes, NumPy array/dtype/scalar reconstruction is the only other thing allowed,
and the model is then rebuilt from those attributes exactly as from the safe format
(``nnfs_fast.io.archive``).
"""
import functools
import pickle

import numpy as np

# the book's model-level classes that may appear in its pickles (rebuilt, not read)
BOOK_ONLY = ("Model", "Layer_Input", "Activation_Softmax_Loss_CategoricalCrossentropy")


class BookObject:
    """Inert record of one of the book's objects read from a pickle: its attributes and its
    class name, nothing else."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise pickle.UnpicklingError(f"unexpected state for {type(self).__name__}")
        self.__dict__.update(state)


@functools.cache
def _record(name):
    """The inert record class (a BookObject subclass) named after the book's class ``name``."""
    return type(name, (BookObject,), {"__module__": "book"})


_core = np._core if hasattr(np, "_core") else np.core
_NUMPY = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    **{(f"numpy.{core}.multiarray", name): getattr(_core.multiarray, name)
       for core in ("core", "_core") for name in ("_reconstruct", "scalar")},
    **{(f"numpy.{core}.numeric", "_frombuffer"): _core.numeric._frombuffer
       for core in ("core", "_core")},
    ("_codecs", "encode"): lambda text, encoding="utf-8": str(text).encode(encoding),
}


_PY2_MODULES = {"copy_reg": "copyreg", "__builtin__": "builtins"}


def _reconstructor(cls, base, state):
    """copyreg._reconstructor for protocol 0/1 pickles, limited to the inert records."""
    if not (isinstance(cls, type) and issubclass(cls, BookObject)) or base is not object \
            or state is not None:
        raise pickle.UnpicklingError("copyreg._reconstructor: only the book's classes allowed")
    return object.__new__(cls)


class _BookUnpickler(pickle.Unpickler):
    """Resolves the book's class names in ``class_names`` (from any module, normally
    ``__main__``) to inert records, and NumPy's array reconstruction; refuses every other
    global."""

    def __init__(self, f, class_names):
        super().__init__(f)
        self._class_names = class_names

    def find_class(self, module, name):
        module = _PY2_MODULES.get(module, module)  # protocol 0-2 pickles name Python 2 modules
        if name in self._class_names:
            return _record(name)
        if (module, name) in _NUMPY:
            return _NUMPY[(module, name)]
        if (module, name) == ("copyreg", "_reconstructor"):
            return _reconstructor
        if (module, name) == ("builtins", "object"):
            return object
        raise pickle.UnpicklingError(f"refers to {module}.{name}, which is not one of the "
                                     "book's classes or a NumPy array")


def load(f, path, class_names):
    """The object pickled in the open binary file ``f``: the book's objects named in
    ``class_names`` or ``BOOK_ONLY`` as BookObject records, arrays as NumPy arrays (any dtype
    and shape the pickle holds). Raises ValueError naming ``path`` for any malformed pickle
    or any global outside the allow-list; nothing outside it runs."""
    try:
        return _BookUnpickler(f, frozenset(class_names) | set(BOOK_ONLY)).load()
    except Exception as exc:  # any malformed pickle; nothing outside the allow-list ran
        raise ValueError(f"{path}: could not read the book's pickle file: "
                         f"{type(exc).__name__}: {exc}") from None
