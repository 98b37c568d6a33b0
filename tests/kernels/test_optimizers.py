"""Optimizers against the float64 oracle (nnfs_fast.reference) and the book's float32 NumPy
expressions: N steps on copied parameters and gradients, the state the book keeps on each
layer, the book's printed learning-rate schedules, odd shapes, thread counts, dtype conversion,
and the argument checks. Every test runs once per target the update loops are compiled for
here (kernels/optimizer_targets.h: baseline, and AVX2 where available)."""
import platform

import numpy as np
import pytest

import nnfs_fast
from conftest import THREAD_COUNTS, every_loop_target
from nnfs_fast import reference
from nnfs_fast.kernels import optimizers as _optimizers
from nnfs_fast.layers import Layer_Dense
from nnfs_fast.optimizers import Optimizer_Adagrad, Optimizer_Adam, Optimizer_RMSprop, Optimizer_SGD

CLASSES = {"SGD": Optimizer_SGD, "Adagrad": Optimizer_Adagrad, "RMSprop": Optimizer_RMSprop,
           "Adam": Optimizer_Adam}
CONFIGS = [
    ("SGD", {}),
    ("SGD", {"learning_rate": 0.5, "decay": 1e-2}),
    ("SGD", {"learning_rate": 0.1, "decay": 1e-3, "momentum": 0.9}),
    ("Adagrad", {}),
    ("Adagrad", {"learning_rate": 0.5, "decay": 1e-2, "epsilon": 1e-5}),
    ("RMSprop", {}),
    ("RMSprop", {"learning_rate": 0.02, "decay": 1e-2, "rho": 0.95}),
    ("Adam", {}),
    ("Adam", {"learning_rate": 0.05, "decay": 5e-7}),
    ("Adam", {"learning_rate": 0.02, "decay": 1e-2, "beta_1": 0.8, "beta_2": 0.99,
              "epsilon": 1e-6}),
]
CONFIG_IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
              for name, kw in CONFIGS]
STATE = {"SGD": [], "Adagrad": ["weight_cache", "bias_cache"],
         "RMSprop": ["weight_cache", "bias_cache"],
         "Adam": ["weight_momentums", "weight_cache", "bias_momentums", "bias_cache"]}
EPS32 = float(np.finfo(np.float32).eps)


DEFAULT_TARGET = _optimizers.target()   # as the module chose it at import


target = every_loop_target(_optimizers)  # every test on each target of the update loops


def test_targets(target):
    """The baseline always; AVX2 where built and runnable, the default where the dense kernels
    run at avx2 or above (runtime/dispatch.py); the target in use is the one asked for."""
    from nnfs_fast.runtime import dispatch
    assert _optimizers.targets()[0] == "baseline"
    assert DEFAULT_TARGET == dispatch.loop_target(True) or _optimizers.targets() == ["baseline"]
    assert _optimizers.target() == target
    with pytest.raises(ValueError, match="expected one of"):
        _optimizers._use_target("avx1024")
    assert _optimizers.target() == target


class Params:
    """A bare trainable layer: weights, biases and their gradients."""

    def __init__(self, weights, biases):
        self.weights, self.biases = weights, biases


def make_layers(rng, shape, cls=Params):
    """The same random parameters in a float32 layer and a float64 (reference) layer."""
    W = (0.1 * rng.standard_normal(shape)).astype(np.float32)
    b = (0.1 * rng.standard_normal((1, shape[1]))).astype(np.float32)
    return cls(W.copy(), b.copy()), Params(W.astype(np.float64), b.astype(np.float64))


def set_grads(rng, layers):
    """Fresh float32 gradients, the same values on every layer."""
    dW = rng.standard_normal(layers[0].weights.shape).astype(np.float32)
    db = rng.standard_normal(layers[0].biases.shape).astype(np.float32)
    dW.flat[::7] = 0                       # exact zeros: 0 / (sqrt(0) + eps) paths
    for layer in layers:
        layer.dweights, layer.dbiases = dW.copy(), db.copy()


def step(optimizer, *layers):
    optimizer.pre_update_params()
    for layer in layers:
        optimizer.update_params(layer)
    optimizer.post_update_params()


def book_float32_step(name, opt, layer):
    """The book's update_params expressions on float32 arrays with Python-float scalars."""
    lr = opt.current_learning_rate
    for p, g, m, c in (("weights", "dweights", "weight_momentums", "weight_cache"),
                       ("biases", "dbiases", "bias_momentums", "bias_cache")):
        P, G = getattr(layer, p), getattr(layer, g)
        if name == "SGD" and opt.momentum:
            if not hasattr(layer, m):
                setattr(layer, m, np.zeros_like(P))
            updates = opt.momentum * getattr(layer, m) - lr * G
            setattr(layer, m, updates)
        elif name == "SGD":
            updates = -lr * G
        elif name in ("Adagrad", "RMSprop"):
            if not hasattr(layer, c):
                setattr(layer, c, np.zeros_like(P))
            if name == "Adagrad":
                getattr(layer, c)[...] += G ** 2
            else:
                setattr(layer, c, opt.rho * getattr(layer, c) + (1 - opt.rho) * G ** 2)
            updates = -lr * G / (np.sqrt(getattr(layer, c)) + opt.epsilon)
        else:
            if not hasattr(layer, c):
                setattr(layer, m, np.zeros_like(P))
                setattr(layer, c, np.zeros_like(P))
            setattr(layer, m, opt.beta_1 * getattr(layer, m) + (1 - opt.beta_1) * G)
            m_hat = getattr(layer, m) / (1 - opt.beta_1 ** (opt.iterations + 1))
            setattr(layer, c, opt.beta_2 * getattr(layer, c) + (1 - opt.beta_2) * G ** 2)
            c_hat = getattr(layer, c) / (1 - opt.beta_2 ** (opt.iterations + 1))
            updates = -lr * m_hat / (np.sqrt(c_hat) + opt.epsilon)
        P += updates
        assert P.dtype == np.float32


def state_names(name, kwargs):
    if name == "SGD":
        return ["weight_momentums", "bias_momentums"] if kwargs.get("momentum") else []
    return STATE[name]


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_steps_match_float64_reference(rng, name, kwargs):
    """10 steps with fresh gradients: parameters, state and schedule follow the oracle."""
    ours, ref = make_layers(rng, (7, 13))
    opt, ref_opt = CLASSES[name](**kwargs), getattr(reference, f"Optimizer_{name}")(**kwargs)
    steps = 10
    for _ in range(steps):
        set_grads(rng, (ours, ref))
        step(opt, ours)
        step(ref_opt, ref)
        assert opt.current_learning_rate == ref_opt.current_learning_rate
    assert opt.iterations == ref_opt.iterations == steps
    # each step adds a few float32 roundings of the value and of the term added to it:
    # |update| <~ 4 lr (|g| <~ 4), Adam's momentum terms ~|g|, cache terms >= 0 (no cancelling)
    lr = opt.learning_rate
    term = {"weights": 4 * lr, "biases": 4 * lr, "cache": 0,
            "momentums": 4 if name == "Adam" else 4 * lr}
    for attr in ["weights", "biases"] + state_names(name, kwargs):
        got, want = getattr(ours, attr), getattr(ref, attr)
        assert got.dtype == np.float32 and got.shape == want.shape, attr
        bound = 2 * steps * EPS32 * (np.abs(want) + term[attr.split("_")[-1]]) + 1e-30
        np.testing.assert_array_less(np.abs(got - want), bound, err_msg=f"{name} {attr}")


@pytest.mark.parametrize(("name", "kwargs"), CONFIGS, ids=CONFIG_IDS)
def test_equals_book_float32_expressions(rng, name, kwargs):
    """The fused kernels apply the book's float32 operations in the book's order: results are
    bit-identical to its NumPy expressions (x86-64 builds never contract a*b+c into an FMA;
    elsewhere the compiler may, so allow 1-2 ulp there)."""
    ours, book = make_layers(rng, (7, 13))
    book = Params(ours.weights.copy(), ours.biases.copy())
    opt, book_opt = CLASSES[name](**kwargs), CLASSES[name](**kwargs)
    for _ in range(10):
        set_grads(rng, (ours, book))
        step(opt, ours)
        book_opt.pre_update_params()
        book_float32_step(name, book_opt, book)
        book_opt.post_update_params()
    for attr in ["weights", "biases"] + state_names(name, kwargs):
        got, want = getattr(ours, attr), getattr(book, attr)
        if platform.machine().lower() in ("x86_64", "amd64"):
            np.testing.assert_array_equal(got, want, err_msg=f"{name} {attr}")
        else:
            np.testing.assert_allclose(got, want, rtol=4 * EPS32, atol=1e-30)


@pytest.mark.parametrize("name", list(CLASSES))
def test_state_names_dtypes_shapes(name):
    kwargs = {"momentum": 0.5} if name == "SGD" else {}
    layer = Layer_Dense(3, 5)
    layer.forward(np.ones((4, 3), dtype=np.float32))
    layer.backward(np.ones((4, 5), dtype=np.float32))
    CLASSES[name](**kwargs).update_params(layer)
    created = [k for k in vars(layer) if k.endswith(("_momentums", "_cache"))]
    assert created == state_names(name, kwargs)         # the book's names, in its order
    for attr in created:
        arr = getattr(layer, attr)
        assert arr.dtype == np.float32 and arr.flags.c_contiguous
        assert arr.shape == ((3, 5) if attr.startswith("weight") else (1, 5))


def test_sgd_without_momentum_keeps_no_state(rng):
    layer, _ = make_layers(rng, (4, 3))
    set_grads(rng, [layer])
    Optimizer_SGD(decay=0.1).update_params(layer)
    assert not [k for k in vars(layer) if k.endswith(("_momentums", "_cache"))]


def test_existing_state_is_used_not_recreated(rng):
    """State is created only when the layer lacks it (attribute presence, as in the book)."""
    ours, ref = make_layers(rng, (4, 3))
    set_grads(rng, (ours, ref))
    for layer in (ours, ref):
        layer.weight_cache = np.full((4, 3), 0.25, dtype=layer.weights.dtype)
        layer.bias_cache = np.full((1, 3), 0.5, dtype=layer.weights.dtype)
    cache = ours.weight_cache
    Optimizer_RMSprop(0.01).update_params(ours)
    reference.Optimizer_RMSprop(0.01).update_params(ref)
    assert ours.weight_cache is cache
    np.testing.assert_allclose(ours.weight_cache, ref.weight_cache, rtol=1e-6)
    np.testing.assert_allclose(ours.weights, ref.weights, rtol=1e-6, atol=1e-7)


def test_adam_after_rmsprop_names_the_missing_state(rng):
    """The book's quirk: Adam finds weight_cache (so creates nothing) but no momentums."""
    layer, _ = make_layers(rng, (4, 3))
    set_grads(rng, [layer])
    Optimizer_RMSprop().update_params(layer)
    with pytest.raises(AttributeError, match="no 'weight_momentums'.*different optimizer"):
        Optimizer_Adam().update_params(layer)


# learning rates printed by the book's loops: lr / (1 + decay * k); the line of epoch e
# (printed before that epoch's update) has k = e - 1
SCHEDULES = [
    (Optimizer_Adam, {"learning_rate": 0.05, "decay": 5e-7}, 9799, "0.04975621940303483"),
    (Optimizer_Adam, {"learning_rate": 0.05, "decay": 5e-7}, 9899, "0.049753743844839965"),
    (Optimizer_Adam, {"learning_rate": 0.05, "decay": 5e-7}, 9999, "0.04975126853296942"),
    (Optimizer_Adam, {"learning_rate": 0.02, "decay": 5e-7}, 9999, "0.019900507413187767"),
    (Optimizer_Adam, {"learning_rate": 0.05, "decay": 5e-5}, 9999, "0.03333444448148271"),
    (Optimizer_Adam, {"decay": 5e-7}, 9999, "0.0009950253706593885"),
    (Optimizer_Adam, {"learning_rate": 0.005, "decay": 1e-3}, 9999, "0.00045458678061641964"),
    (Optimizer_SGD, {"decay": 1e-3}, 9999, "0.09091735612328393"),
    (Optimizer_Adagrad, {"decay": 1e-4}, 9999, "0.5000250012500626"),
    (Optimizer_RMSprop, {"learning_rate": 0.02, "decay": 1e-5}, 9999, "0.018181983472577025"),
    (Optimizer_Adam, {"learning_rate": 0.02, "decay": 1e-5}, 9999, "0.018181983472577025"),
    (Optimizer_RMSprop, {"decay": 1e-4}, 9999, "0.0005000250012500625"),
    # Fashion-MNIST, 469 steps per epoch: epoch 10, steps 0, 100, 468
    (Optimizer_Adam, {"decay": 1e-3}, 9 * 469 + 0, "0.0001915341888527102"),
    (Optimizer_Adam, {"decay": 1e-3}, 9 * 469 + 100, "0.00018793459875963167"),
    (Optimizer_Adam, {"decay": 1e-3}, 9 * 469 + 468, "0.00017577781683951485"),
]


@pytest.mark.parametrize(("cls", "kwargs", "k", "printed"), SCHEDULES)
def test_learning_rate_prints_exactly(cls, kwargs, k, printed):
    opt = cls(**kwargs)
    for _ in range(k):
        opt.pre_update_params()
        opt.post_update_params()
    opt.pre_update_params()
    assert opt.iterations == k
    assert str(opt.current_learning_rate) == printed
    assert f"lr: {opt.current_learning_rate}" == f"lr: {printed}"


def test_no_decay_keeps_learning_rate():
    opt = Optimizer_Adam(learning_rate=0.05)
    for _ in range(5):
        step(opt)
    assert opt.current_learning_rate == 0.05 and opt.iterations == 5


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (1000, 100)], ids=str)
@pytest.mark.parametrize(("name", "kwargs"), [
    ("SGD", {}), ("SGD", {"momentum": 0.9}), ("Adagrad", {}), ("RMSprop", {}), ("Adam", {})])
def test_odd_shapes_and_thread_counts_agree(rng, restore_threads, shape, name, kwargs):
    """Bit-identical results for 1, 2, 3 and all threads; within tolerance of the oracle."""
    ours, ref = make_layers(rng, shape)
    grads = []
    for _ in range(3):
        set_grads(rng, [ours])
        grads.append((ours.dweights, ours.dbiases))
    results = []
    for n in THREAD_COUNTS:
        nnfs_fast.set_num_threads(n)
        layer, opt = Params(ours.weights.copy(), ours.biases.copy()), CLASSES[name](**kwargs)
        for layer.dweights, layer.dbiases in grads:
            step(opt, layer)
        results.append(layer)
    ref_opt = getattr(reference, f"Optimizer_{name}")(**kwargs)
    for ref.dweights, ref.dbiases in grads:
        step(ref_opt, ref)
    for attr in ["weights", "biases"] + state_names(name, kwargs):
        for layer, n in zip(results[1:], THREAD_COUNTS[1:]):
            np.testing.assert_array_equal(getattr(layer, attr), getattr(results[0], attr),
                                          err_msg=f"{attr}: {n} threads vs 1")
        want = getattr(ref, attr)
        np.testing.assert_allclose(getattr(results[0], attr), want, rtol=1e-5,
                                   atol=1e-5 * np.abs(want).max() + 1e-30)


@pytest.mark.parametrize("n", [1, 15, *[_optimizers.PAR_ELEMS + d for d in (-1, 0, 1)], 100003])
@pytest.mark.parametrize("n_threads", [1, 2, 3, 4])
def test_thread_blocks_cover_exactly_the_array(n, n_threads):
    """Every element updated once, nothing written outside (guard zones on both sides)."""
    guard, sentinel = 32, np.float32(-7.25e33)
    raw = np.full(n + 2 * guard, sentinel, dtype=np.float32)
    param = raw[guard:guard + n].reshape(1, n)
    param[...] = 0
    grad = np.ones((1, n), dtype=np.float32)
    momentums = np.zeros((1, n), dtype=np.float32)
    _optimizers.sgd_momentum_update((param, grad, momentums), 0.5, 0.9, n_threads)
    _optimizers.sgd_update((param, grad), 0.25, n_threads)
    np.testing.assert_array_equal(param, -0.75)
    np.testing.assert_array_equal(momentums, -0.5)
    assert (raw[:guard] == sentinel).all() and (raw[guard + n:] == sentinel).all()


def test_updates_in_place_and_keeps_aliases(rng):
    """float32 C-contiguous parameters are updated in place: get_parameters() stays live."""
    layer = Layer_Dense(4, 3)
    W, b = layer.get_parameters()
    layer.dweights = np.ones((4, 3), dtype=np.float32)
    layer.dbiases = np.ones((1, 3), dtype=np.float32)
    before = W.copy()
    Optimizer_SGD(0.5).update_params(layer)
    assert layer.weights is W and layer.biases is b
    np.testing.assert_array_equal(W, before - np.float32(0.5))


BOOK_ALIASED = {   # the book's expressions, with the gradient read as it was before the step
    "sgd": lambda W, g: W + np.float32(-0.5) * g,
    "adam": lambda W, g: W + np.float32(-0.001) * (
        (np.float32(0.1) * g) / np.float32(0.1))
        / (np.sqrt((np.float32(0.001) * (g * g)) / np.float32(0.001)) + np.float32(1e-7)),
}


def aliased_update(kind, param, grad, n_threads):
    """One SGD (lr 0.5) or first Adam step (zero state) with these possibly aliased arrays."""
    if kind == "sgd":
        _optimizers.sgd_update((param, grad), 0.5, n_threads)
    else:
        zeros = [np.zeros_like(param) for _ in range(2)]
        _optimizers.adam_update((param, grad, *zeros), 0.001, 0.9, 0.1, 0.999, 0.001, 0.1,
                                0.001, 1e-7, n_threads)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("shift", [0, 1, -1, 7, -8])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_gradient_aliasing_the_parameter(kind, shift, n_threads):
    """A gradient that is the parameter (layer.dweights = layer.weights) or overlaps it shifted
    by a few elements gives the book's bits: NumPy reads the old values, so must the kernel,
    whatever the thread count (a shifted gradient is read from a copy)."""
    n = 2 * _optimizers.PAR_ELEMS + 5
    values = np.random.default_rng(3).standard_normal(n + 16).astype(np.float32)
    raw = values.copy()
    param = raw[8:8 + n].reshape(1, n)
    grad = raw[8 + shift:8 + shift + n].reshape(1, n)
    expected = BOOK_ALIASED[kind](values[8:8 + n], values[8 + shift:8 + shift + n])
    aliased_update(kind, param, grad, n_threads)
    np.testing.assert_array_equal(param.ravel().view(np.uint32), expected.view(np.uint32))


@pytest.mark.parametrize("shift", [0, 3, -3])
def test_written_arrays_sharing_memory_are_refused(shift):
    """The loops write the parameter and its state in place (the book rebinds its state to new
    arrays), so state sharing memory with the parameter or other state is refused, unchanged."""
    raw = np.arange(40, dtype=np.float32)
    param, other = raw[10:30].reshape(4, 5), raw[10 + shift:30 + shift].reshape(4, 5)
    grad, fresh = np.ones((4, 5), np.float32), np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="momentums: shares memory with param"):
        _optimizers.sgd_momentum_update((param, grad, other), 0.5, 0.9)
    with pytest.raises(ValueError, match="cache: shares memory with momentums"):
        _optimizers.adam_update((fresh, grad, param, other), 0.001, 0.9, 0.1, 0.999, 0.001,
                                0.1, 0.001, 1e-7)
    np.testing.assert_array_equal(raw, np.arange(40, dtype=np.float32))
    np.testing.assert_array_equal(fresh, 0)


@pytest.mark.parametrize("kind", ["float64", "F-order", "readonly", "list"])
def test_other_parameter_layouts_are_converted_once(rng, kind):
    """Parameters that are not writable C-contiguous float32 are converted and stored back."""
    ours, ref = make_layers(rng, (5, 4))
    set_grads(rng, (ours, ref))
    W = ref.weights.copy()
    ours.weights = {"float64": W, "F-order": np.asfortranarray(W, dtype=np.float32),
                    "readonly": W.astype(np.float32), "list": W.tolist()}[kind]
    if kind == "readonly":
        ours.weights.flags.writeable = False
    ours.dweights = ours.dweights.astype(np.float64)          # gradients too: not stored back
    opt = Optimizer_Adam(0.01)
    step(opt, ours)
    converted = ours.weights
    assert converted.dtype == np.float32 and converted.flags.c_contiguous
    assert converted.flags.writeable and ours.dweights.dtype == np.float64
    step(opt, ours)
    assert ours.weights is converted                           # converted only once
    ref_opt = reference.Optimizer_Adam(0.01)
    step(ref_opt, ref)
    step(ref_opt, ref)
    np.testing.assert_allclose(ours.weights, ref.weights, rtol=1e-5, atol=1e-7)


def test_real_layer_training_step_matches_reference():
    """Dense forward/backward then Adam, against the oracle with the same weights."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((20, 6)).astype(np.float32)
    G = rng.standard_normal((20, 4)).astype(np.float32)
    ours, ref = Layer_Dense(6, 4), reference.Layer_Dense(6, 4)
    ref.set_parameters(ours.weights.copy(), ours.biases.copy())
    opt, ref_opt = Optimizer_Adam(0.05, 5e-7), reference.Optimizer_Adam(0.05, 5e-7)
    for _ in range(5):
        for layer, o in ((ours, opt), (ref, ref_opt)):
            layer.forward(X)
            layer.backward(G)
            step(o, layer)
    np.testing.assert_allclose(ours.weights, ref.weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.biases, ref.biases, rtol=1e-5, atol=1e-6)


def test_repr():
    assert repr(Optimizer_Adam(learning_rate=0.05, decay=5e-7)) == \
        "Optimizer_Adam(learning_rate=0.05, decay=5e-07)"
    assert repr(Optimizer_Adam()) == "Optimizer_Adam(learning_rate=0.001)"
    assert repr(Optimizer_SGD(momentum=0.9)) == "Optimizer_SGD(learning_rate=1.0, momentum=0.9)"
    assert repr(Optimizer_RMSprop(rho=0.95)) == \
        "Optimizer_RMSprop(learning_rate=0.001, rho=0.95)"
    assert repr(Optimizer_Adagrad(epsilon=1e-5)) == \
        "Optimizer_Adagrad(learning_rate=1.0, epsilon=1e-05)"


def test_book_attributes():
    opt = Optimizer_Adam(learning_rate=0.05, decay=5e-7)
    assert (opt.learning_rate, opt.current_learning_rate, opt.decay, opt.iterations) == \
        (0.05, 0.05, 5e-7, 0)
    assert (opt.epsilon, opt.beta_1, opt.beta_2) == (1e-7, 0.9, 0.999)
    assert Optimizer_SGD().momentum == 0.
    assert Optimizer_RMSprop().rho == 0.9
    assert Optimizer_Adagrad().epsilon == 1e-7


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Optimizer_SGD(learning_rate=0), r"Optimizer_SGD: learning_rate .* \(0, inf\)"),
    (lambda: Optimizer_SGD(learning_rate=-1.), "learning_rate must be .* got -1.0"),
    (lambda: Optimizer_Adam(learning_rate=float("nan")), "learning_rate must be a finite"),
    (lambda: Optimizer_Adam(decay=-1e-3), r"decay must be .* \[0, inf\), got -0.001"),
    (lambda: Optimizer_Adam(decay=float("inf")), "decay must be a finite"),
    (lambda: Optimizer_SGD(momentum=-0.5), "Optimizer_SGD: momentum"),
    (lambda: Optimizer_Adagrad(epsilon=0), r"Optimizer_Adagrad: epsilon .* \(0, inf\)"),
    (lambda: Optimizer_RMSprop(rho=1.0), r"Optimizer_RMSprop: rho .* \[0, 1\), got 1.0"),
    (lambda: Optimizer_RMSprop(rho=-0.1), "rho"),
    (lambda: Optimizer_Adam(beta_1=1.0), r"Optimizer_Adam: beta_1 .* \[0, 1\)"),
    (lambda: Optimizer_Adam(beta_2=1.5), "beta_2"),
])
def test_hyper_parameter_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("value", ["0.1", None, True, [0.1]])
def test_hyper_parameter_types(value):
    with pytest.raises(TypeError, match="learning_rate must be a real number"):
        Optimizer_Adam(learning_rate=value)


def test_hyper_parameters_accept_numpy_and_int():
    opt = Optimizer_SGD(learning_rate=np.float64(0.5), decay=0, momentum=np.float32(0.5))
    assert opt.learning_rate == 0.5 and opt.momentum == 0.5


def test_gradient_errors(rng):
    layer, _ = make_layers(rng, (4, 3))
    with pytest.raises(AttributeError, match="no 'dweights'.*run backward"):
        Optimizer_Adam().update_params(layer)
    set_grads(rng, [layer])
    layer.dweights = layer.dweights[:3]
    with pytest.raises(ValueError, match=r"layer.dweights: expected shape \(4, 3\) \(the "
                                         r"weights' shape\), got \(3, 3\)"):
        Optimizer_SGD().update_params(layer)
    layer.dweights = np.zeros((4, 3), dtype=np.float32)
    layer.dbiases = np.zeros((3,), dtype=np.float32)
    with pytest.raises(ValueError, match=r"layer.dbiases: expected shape \(1, 3\)"):
        Optimizer_SGD().update_params(layer)
    layer.dbiases = np.array([["a", "b", "c"]])
    with pytest.raises(TypeError, match="layer.dbiases: expected real numbers"):
        Optimizer_SGD().update_params(layer)


def test_state_shape_error(rng):
    layer, _ = make_layers(rng, (4, 3))
    set_grads(rng, [layer])
    layer.weight_cache = np.zeros((3, 4), dtype=np.float32)
    layer.bias_cache = np.zeros((1, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"layer.weight_cache: expected shape \(4, 3\)"):
        Optimizer_Adagrad().update_params(layer)


def test_kernels_check_shapes():
    a, b = np.zeros((5, 2), dtype=np.float32), np.zeros((2, 5), dtype=np.float32)
    with pytest.raises(ValueError, match=r"grad: expected shape \(5, 2\) \(the parameter's\), "
                                         r"got \(2, 5\)"):
        _optimizers.sgd_update((a, b), 0.1)
    with pytest.raises(ValueError, match="momentums: expected shape"):
        _optimizers.sgd_momentum_update((a, a, b), 0.1, 0.9)
    with pytest.raises(ValueError, match="cache: expected shape"):
        _optimizers.cache_update((a, a, b), 0.1, 0.9, 0.1, 1e-7)
    with pytest.raises(ValueError, match="cache: expected shape"):
        _optimizers.adam_update((a, a, a, b), 0.1, 0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-7)
    with pytest.raises(ValueError, match=r"arrays: expected 4 arrays \(param, grad, momentums, "
                                         r"cache\) per parameter, got 7"):
        _optimizers.adam_update((a,) * 7, 0.1, 0.9, 0.1, 0.999, 0.001, 0.1, 0.001, 1e-7)
    with pytest.raises(TypeError, match="cache: expected a numpy.ndarray, got NoneType"):
        _optimizers.cache_update((a, a, None), 0.1, 0.9, 0.1, 1e-7)
    with pytest.raises(TypeError, match="param: expected a numpy.ndarray, got NoneType"):
        _optimizers.sgd_update((None, a), 0.1)
    with pytest.raises(TypeError, match="grad: expected a native float32 array, got dtype "
                                        "float64"):
        _optimizers.sgd_update((a, a.astype(np.float64)), 0.1)
    with pytest.raises(ValueError, match="momentums: expected a C-contiguous array"):
        _optimizers.sgd_momentum_update((a, a, np.zeros((2, 5), np.float32).T), 0.1, 0.9)
    readonly = a.copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="param: expected a writable array"):
        _optimizers.sgd_update((readonly, a), 0.1)
    with pytest.raises(ValueError, match="cache: expected a writable array"):
        _optimizers.cache_update((a, a, readonly), 0.1, 0.9, 0.1, 1e-7)
    _optimizers.sgd_update((a, readonly), 0.1)                # gradients may be read-only
    # every parameter is checked before any is updated: a refusal changes nothing
    w, g = np.ones((5, 2), np.float32), np.ones((5, 2), np.float32)
    with pytest.raises(ValueError, match=r"grad: expected shape \(5, 2\)"):
        _optimizers.sgd_update((w, g, a, b), 0.5)
    np.testing.assert_array_equal(w, 1)


def test_parameters_must_be_2d(rng):
    layer = Params(np.zeros(3, np.float32), np.zeros((1, 3), np.float32))
    layer.dweights, layer.dbiases = np.zeros(3, np.float32), np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match=r"layer.weights: expected a 2-D array, got shape "
                                         r"\(3,\)"):
        Optimizer_SGD().update_params(layer)
    del layer.weights
    with pytest.raises(AttributeError, match="the layer has no 'weights'$"):
        Optimizer_SGD().update_params(layer)


def test_empty_parameters(rng):
    layer = Params(np.zeros((0, 3), np.float32), np.zeros((1, 3), np.float32))
    layer.dweights, layer.dbiases = np.zeros((0, 3), np.float32), np.ones((1, 3), np.float32)
    Optimizer_Adam(0.1).update_params(layer)
    assert layer.weight_cache.shape == (0, 3)
    assert np.all(layer.biases < 0)
