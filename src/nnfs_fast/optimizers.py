"""Optimizers of the book (Ch10): ``Optimizer_SGD``, ``Optimizer_Adagrad``,
``Optimizer_RMSprop``, ``Optimizer_Adam``, on the fused kernels of ``kernels/optimizers.pyx``.

Same constructor arguments, attributes, learning-rate decay and update formulas as the book.
The training loop calls ``pre_update_params()``, then ``update_params(layer)`` for every
trainable layer, then ``post_update_params()``. Optimizer state lives on the layer under the
book's names (``weight_momentums``, ``bias_momentums``, ``weight_cache``, ``bias_cache``), made
with ``np.zeros_like`` the first time a layer lacks it. ``update_params`` changes
``layer.weights`` and ``layer.biases`` in place with one pass over each array, computing the
book's float32 expressions element by element (no temporaries).
"""
import inspect
from operator import attrgetter

import numpy as np

from nnfs_fast._validation import check_interval, float32_attr
from nnfs_fast.kernels import optimizers as _optimizers
from nnfs_fast.runtime.openmp import get_num_threads


def _slots(*state):
    """The attribute names of the weights and of the biases, each (parameter, gradient,
    *state), and an attrgetter that fetches them all in that order (a kernel's ``arrays``).
    ``state`` holds weight/bias name pairs."""
    names = (("weights", "dweights", *[w for w, _ in state]),
             ("biases", "dbiases", *[b for _, b in state]))
    return names, attrgetter(*names[0], *names[1])


_NO_STATE = _slots()
_MOMENTUMS = _slots(("weight_momentums", "bias_momentums"))
_CACHE = _slots(("weight_cache", "bias_cache"))
_MOMENTUMS_AND_CACHE = _slots(("weight_momentums", "bias_momentums"),
                              ("weight_cache", "bias_cache"))

# kernel code -> (slots, the state attribute whose absence creates the state, the kernel's
# name in kernels/optimizers.pyx)
_KERNELS = {
    "sgd": (_NO_STATE, None, "sgd_update"),
    "momentum": (_MOMENTUMS, "weight_momentums", "sgd_momentum_update"),
    "cache": (_CACHE, "weight_cache", "cache_update"),
    "adam": (_MOMENTUMS_AND_CACHE, "weight_cache", "adam_update"),
}


def _update(layer, slots, created_when_missing, kernel, *scalars):
    """``kernel(arrays, *scalars)`` with the weights' and the biases' arrays named in
    ``slots`` (parameter, gradient, *state): one call updates both.

    The state attributes are created as float32 zeros when the layer lacks
    ``created_when_missing`` (the book's rule; None or one of the state names in ``slots``).
    When the layer's state exists and its arrays are what the kernel takes as they are
    (``arrays_ready``: writable 2-D C-contiguous float32 of one shape, what Layer_Dense and
    this module make), the kernel is called once with them.
    Otherwise each array is checked and converted first (``float32_attr``), which either fixes
    it or raises an error that names the attribute; there is no convert-and-retry. New state
    and converted parameters are assigned to the layer only once the kernel has accepted them,
    so a refused call leaves the layer as it was.
    """
    names, get = slots
    try:        # a layer without its state (created_when_missing is one of names) fails here
        arrays = get(layer)
    except AttributeError:
        arrays = None
    if arrays is not None and _optimizers.arrays_ready(arrays, len(names[0])):
        kernel(arrays, *scalars)
        return
    create = bool(created_when_missing) and not hasattr(layer, created_when_missing)
    arrays, kept = [], {}      # kept: what the layer holds (parameters and state, not gradients)
    for param, grad, *state in names:
        p = kept[param] = float32_attr(layer, param)
        arrays += [p, float32_attr(layer, grad, p.shape, param)]
        for name in state:
            kept[name] = (np.zeros_like(p) if create else
                          float32_attr(layer, name, p.shape, param))
            arrays.append(kept[name])
    kernel(tuple(arrays), *scalars)
    for name, arr in kept.items():
        if arr is not getattr(layer, name, None):
            setattr(layer, name, arr)


class _Optimizer:
    """Learning-rate decay and step counting shared by the four optimizers (book, Ch10)."""

    def __init__(self, learning_rate, decay):
        name = type(self).__name__
        self.learning_rate = check_interval(name, "learning_rate", learning_rate, 0, low_open=True)
        self.current_learning_rate = learning_rate
        self.decay = check_interval(name, "decay", decay, 0)
        self.iterations = 0

    def pre_update_params(self):
        """Before the updates of a step: lr / (1 + decay * iterations) when decay is set."""
        if self.decay:
            self.current_learning_rate = self.learning_rate * \
                (1. / (1. + self.decay * self.iterations))

    def post_update_params(self):
        """After the updates of a step: count it."""
        self.iterations += 1

    def update_params(self, layer):
        """Update ``layer.weights``/``layer.biases`` in place from ``dweights``/``dbiases``."""
        code, _, scalars = self._kernel_call()
        slots, created_when_missing, kernel = _KERNELS[code]
        _update(layer, slots, created_when_missing, getattr(_optimizers, kernel), *scalars,
                get_num_threads())

    def _prepare_state(self, layer):
        """The optimizer state of ``layer`` for this optimizer's next update, made as
        ``update_params`` makes it (float32 zeros when the layer lacks it, the book's rule; a
        user's array of another dtype or layout converted, the copy assigned; the wrong shape
        refused), without reading the gradients or updating anything: for the compiled
        training plan (kernels/plan.pyx). Returns the state arrays in the order of the names
        that ``_kernel_call()`` gives."""
        code, names, _ = self._kernel_call()
        _, created_when_missing, _ = _KERNELS[code]
        create = bool(created_when_missing) and not hasattr(layer, created_when_missing)
        kept = {}
        for name in names:
            param = "weights" if name.startswith("weight") else "biases"
            p = float32_attr(layer, param)
            kept[name] = (np.zeros_like(p) if create else
                          float32_attr(layer, name, p.shape, param))
        for name, arr in kept.items():
            if arr is not getattr(layer, name, None):
                setattr(layer, name, arr)
        return tuple(kept[name] for name in names)

    def _kernel_call(self):
        """(kernel code of _KERNELS, the state attribute names (weights' then biases' per
        kind), the kernel's scalars): the one description of an update, for update_params
        and the compiled training plan."""
        raise NotImplementedError

    def __repr__(self):
        params = inspect.signature(type(self).__init__).parameters
        args = [f"learning_rate={self.learning_rate!r}"] + [
            f"{k}={getattr(self, k)!r}" for k, p in params.items()
            if k not in ("self", "learning_rate") and getattr(self, k) != p.default]
        return f"{type(self).__name__}({', '.join(args)})"


class Optimizer_SGD(_Optimizer):
    """Stochastic gradient descent, optionally with momentum.

    Without momentum: ``W += -lr * dW``. With momentum:
    ``u = momentum * weight_momentums - lr * dW; weight_momentums = u; W += u``
    (the same for biases with ``bias_momentums``), lr = ``current_learning_rate``.

    Args:
        learning_rate: > 0 (default 1.). decay: >= 0, lr / (1 + decay * iterations).
        momentum: >= 0 (default 0.: no momentum state).
    Attributes:
        learning_rate, current_learning_rate, decay, iterations, momentum.
    State on each layer (float32, the parameter's shape): weight_momentums, bias_momentums.
    """

    def __init__(self, learning_rate=1., decay=0., momentum=0.):
        super().__init__(learning_rate, decay)
        self.momentum = check_interval("Optimizer_SGD", "momentum", momentum, 0)

    def _kernel_call(self):
        if self.momentum:
            return ("momentum", ("weight_momentums", "bias_momentums"),
                    (self.current_learning_rate, self.momentum))
        return "sgd", (), (self.current_learning_rate,)


class Optimizer_Adagrad(_Optimizer):
    """Adagrad: ``weight_cache += dW**2; W += -lr * dW / (sqrt(weight_cache) + epsilon)``.

    Args:
        learning_rate: > 0 (default 1.). decay: >= 0. epsilon: > 0 (default 1e-7).
    Attributes:
        learning_rate, current_learning_rate, decay, iterations, epsilon.
    State on each layer (float32, the parameter's shape): weight_cache, bias_cache.
    """

    def __init__(self, learning_rate=1., decay=0., epsilon=1e-7):
        super().__init__(learning_rate, decay)
        self.epsilon = check_interval("Optimizer_Adagrad", "epsilon", epsilon, 0, low_open=True)

    def _kernel_call(self):
        # cache = 1 * cache + 1 * dW**2 is exactly cache + dW**2
        return ("cache", ("weight_cache", "bias_cache"),
                (self.current_learning_rate, 1., 1., self.epsilon))


class Optimizer_RMSprop(_Optimizer):
    """RMSprop: ``weight_cache = rho * weight_cache + (1 - rho) * dW**2;
    W += -lr * dW / (sqrt(weight_cache) + epsilon)``.

    Args:
        learning_rate: > 0 (default 0.001). decay: >= 0. epsilon: > 0 (default 1e-7).
        rho: cache decay in [0, 1) (default 0.9).
    Attributes:
        learning_rate, current_learning_rate, decay, iterations, epsilon, rho.
    State on each layer (float32, the parameter's shape): weight_cache, bias_cache.
    """

    def __init__(self, learning_rate=0.001, decay=0., epsilon=1e-7, rho=0.9):
        super().__init__(learning_rate, decay)
        self.epsilon = check_interval("Optimizer_RMSprop", "epsilon", epsilon, 0, low_open=True)
        self.rho = check_interval("Optimizer_RMSprop", "rho", rho, 0, 1)

    def _kernel_call(self):
        return ("cache", ("weight_cache", "bias_cache"),
                (self.current_learning_rate, self.rho, 1 - self.rho, self.epsilon))


class Optimizer_Adam(_Optimizer):
    """Adam, with the book's bias correction by ``iterations + 1``::

        weight_momentums = beta_1 * weight_momentums + (1 - beta_1) * dW
        weight_cache     = beta_2 * weight_cache + (1 - beta_2) * dW**2
        W += -lr * (weight_momentums / (1 - beta_1**(iterations + 1)))
                 / (sqrt(weight_cache / (1 - beta_2**(iterations + 1))) + epsilon)

    (the same for biases with ``bias_momentums``/``bias_cache``).

    Args:
        learning_rate: > 0 (default 0.001). decay: >= 0. epsilon: > 0 (default 1e-7).
        beta_1, beta_2: moment decays in [0, 1) (defaults 0.9, 0.999).
    Attributes:
        learning_rate, current_learning_rate, decay, iterations, epsilon, beta_1, beta_2.
    State on each layer (float32, the parameter's shape): weight_momentums, weight_cache,
    bias_momentums, bias_cache.
    """

    def __init__(self, learning_rate=0.001, decay=0., epsilon=1e-7, beta_1=0.9, beta_2=0.999):
        super().__init__(learning_rate, decay)
        self.epsilon = check_interval("Optimizer_Adam", "epsilon", epsilon, 0, low_open=True)
        self.beta_1 = check_interval("Optimizer_Adam", "beta_1", beta_1, 0, 1)
        self.beta_2 = check_interval("Optimizer_Adam", "beta_2", beta_2, 0, 1)

    def _kernel_call(self):
        # bias corrections in Python floats, as in the book; the kernel gets them as float32
        momentum_correction = 1 - self.beta_1 ** (self.iterations + 1)
        cache_correction = 1 - self.beta_2 ** (self.iterations + 1)
        return ("adam", ("weight_momentums", "bias_momentums", "weight_cache", "bias_cache"),
                (self.current_learning_rate, self.beta_1, 1 - self.beta_1, self.beta_2,
                 1 - self.beta_2, momentum_correction, cache_correction, self.epsilon))
