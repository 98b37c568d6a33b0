"""The benchmark suite behind ``nnfs-fast bench``, ``benchmarks/bench_dense.py`` and
``benchmarks/bench_train.py``.

Two suites, both timed the same way: each contender runs in *blocks* (as many calls as fit in
``seconds``, after one untimed warm-up call), the contenders' blocks alternate ``repeat`` times,
and the median time per call is reported. Alternating blocks spreads any change in machine load
over all contenders instead of penalising whichever ran during a busy moment.

* **dense**: ``Layer_Dense``'s fused kernels (forward ``max(0, X . W + b)``, backward with the
  ReLU mask) against the same NumPy float32 operations, in this process, NumPy's BLAS limited
  to the same thread count with threadpoolctl. Timed twice: in blocks, and *alternated* call
  by call (ours, NumPy's, ours, ...: what a user's loop that mixes both sees, NumPy's
  OpenBLAS workers still spinning from its last call when ours starts). No pause anywhere.
* **train**: one full training step (forward, loss, backward, Adam update) of the book's
  chapter 10 spiral model and of the chapter 19 Fashion-MNIST model shape, for each framework
  in a worker process of its own (``_worker_main``; told over a pipe when to run a block,
  so the blocks still alternate):

  - ``nnfs_fast``: ``Model.train`` (what a user runs);
  - ``numpy``: the book's chapter 10 script loop (its classes: testing/book.py)
    with float32 arrays and NumPy's own float32 ``np.dot``;
  - ``book``: the same code after ``nnfs.init()`` (the book's setting: ``np.dot`` computed
    in float64 and rounded), when the ``nnfs`` package is installed;
  - ``torch``: ``nn.Linear``/``nn.ReLU`` + ``nn.CrossEntropyLoss`` + ``torch.optim.Adam`` on
    the CPU with ``torch.set_num_threads``, when PyTorch is installed;
  - ``jax``: the same network, loss, accuracy and the book's Adam written in ``jax.numpy``,
    the whole step (forward, backward by ``jax.value_and_grad``, update) one ``jax.jit``-ed
    function, on the CPU, when JAX is installed (``_jax_environment``: XLA's CPU threads
    cannot be set exactly).

  Every framework starts from the same initial weights and data. The nnfs_fast, book and JAX
  steps also compute the accuracy, as the book's loops do; the PyTorch step does not. After
  the timed blocks, each contender's loss after ``CHECK_UPDATES`` updates is compared with
  nnfs_fast's (``check_loss``): a contender that trains differently (a wrong formula, another
  learning rate) is reported instead of silently winning or losing. With more
  than one thread, each block starts ``POOL_GAP`` seconds after the previous one (printed):
  the contenders are separate processes, and another process's pool keeps its idle threads
  spinning for a while after its last task (OpenBLAS up to ~0.1 s), which would measure the
  pairing of two processes rather than either framework.
"""
import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec

import numpy as np

from nnfs_fast.testing import book

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # optional: without it NumPy's BLAS uses its default thread count
    threadpool_limits = None

# ------------------------------------------------------------------------------- timing


def per_call(fn, seconds):
    """Seconds per call of fn over a block lasting about ``seconds`` (after one warm-up)."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return elapsed / n


POOL_GAP = 0.2


def interleaved(fns, repeat, seconds, gap=0.0):
    """Median per-call time of each function, measured block by block in turn, each block
    after a pause of ``gap`` seconds."""
    times = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            time.sleep(gap)
            times[name].append(fn.block(seconds) if isinstance(fn, _Worker)
                               else per_call(fn, seconds))
    return {name: statistics.median(t) for name, t in times.items()}


def alternated(fns, repeat, seconds):
    """Median per-call time of each function, the functions called in turn, one call each,
    for ``repeat`` rounds (after one warm-up call each). A round lasts as long as one block
    of each function would (``seconds`` times their number), and at least 5 turns."""
    times = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeat):
        end, turns = time.perf_counter() + seconds * len(fns), 0
        while time.perf_counter() < end or turns < 5:
            turns += 1
            for name, fn in fns.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def blas_limits(threads):
    """Limit NumPy's BLAS to ``threads`` threads (a no-op without threadpoolctl)."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads, user_api="blas")


# ------------------------------------------------------------------------------ machine

def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine():
    """The facts a benchmark result needs next to it."""
    from nnfs_fast.runtime.config import config
    cfg = config()
    info = {"cpu": cpu_name(), "logical_cpus": os.cpu_count(), "python": cfg["python"],
            "numpy": np.__version__, "nnfs_fast": cfg["nnfs_fast"],
            "kernel_level": cfg["kernel_level"], "compiler": cfg["compiler"],
            "openmp": cfg["openmp"]}
    return info


def load_average():
    """The 1-minute load average (None where the OS has none): other work on the machine."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


# ------------------------------------------------------------------------ dense kernels

SHAPES = [(300, 2, 64), (300, 64, 3), (128, 784, 128), (128, 128, 10), (1024, 784, 128),
          (8192, 784, 128), (1024, 1024, 1024)]
QUICK_SHAPES = [(300, 2, 64), (128, 784, 128)]
DENSE_HEADER = (f"{'batch,in,out':>16} {'thr':>3} {'timing':<6} | {'fwd us':>9} {'numpy':>9} "
                f"{'x':>5} {'GF/s':>6} {'sgemm':>6} {'%sg':>4} | {'bwd us':>9} {'numpy':>9} "
                f"{'x':>5}")


def bench_shape(kernels, batch, n_in, n_out, threads, repeat, seconds):
    """Fused dense forward/backward against NumPy float32 at one shape and thread count."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, n_in), dtype=np.float32)
    W = (0.1 * rng.standard_normal((n_in, n_out))).astype(np.float32)
    b = (0.1 * rng.standard_normal((1, n_out))).astype(np.float32)
    dY = rng.standard_normal((batch, n_out), dtype=np.float32)
    Y = kernels.dense_forward(X, W, b, True, threads)

    def np_forward():
        return np.maximum(np.dot(X, W) + b, 0)

    def np_backward():
        G = dY * (Y > 0)
        return np.dot(X.T, G), np.sum(G, axis=0, keepdims=True), np.dot(G, W.T)

    fns = {
        "ours_fwd": lambda: kernels.dense_forward(X, W, b, True, threads),
        "numpy_fwd": np_forward,
        "ours_bwd": lambda: kernels.dense_backward(X, W, b, dY, Y, n_threads=threads),
        "numpy_bwd": np_backward,
        "numpy_sgemm": lambda: np.dot(X, W),
    }
    with blas_limits(threads):
        t = interleaved(fns, repeat, seconds)
        a = alternated(fns, repeat, seconds)
    flops = 2.0 * batch * n_in * n_out

    def timings(t, prefix=""):
        return {
            prefix + "fwd_us": t["ours_fwd"] * 1e6, prefix + "numpy_fwd_us": t["numpy_fwd"] * 1e6,
            prefix + "fwd_speedup": t["numpy_fwd"] / t["ours_fwd"],
            prefix + "bwd_us": t["ours_bwd"] * 1e6, prefix + "numpy_bwd_us": t["numpy_bwd"] * 1e6,
            prefix + "bwd_speedup": t["numpy_bwd"] / t["ours_bwd"],
            prefix + "fwd_gflops": flops / t["ours_fwd"] / 1e9,
            prefix + "numpy_sgemm_gflops": flops / t["numpy_sgemm"] / 1e9,
            prefix + "gemm_vs_sgemm": t["numpy_sgemm"] / t["ours_fwd"],
        }
    return {"shape": [batch, n_in, n_out], "threads": threads, **timings(t),
            **timings(a, "alt_")}


def dense_row(r):
    """Two lines of the dense table: block timings, then alternated call by call."""
    def line(timing, p):
        return (f"{','.join(map(str, r['shape'])):>16} {r['threads']:>3} {timing:<6} | "
                f"{r[p + 'fwd_us']:9.1f} {r[p + 'numpy_fwd_us']:9.1f} "
                f"{r[p + 'fwd_speedup']:5.2f} {r[p + 'fwd_gflops']:6.1f} "
                f"{r[p + 'numpy_sgemm_gflops']:6.1f} {100 * r[p + 'gemm_vs_sgemm']:4.0f} | "
                f"{r[p + 'bwd_us']:9.1f} {r[p + 'numpy_bwd_us']:9.1f} {r[p + 'bwd_speedup']:5.2f}")
    return line("blocks", "") + "\n" + line("alt", "alt_")


def run_dense(threads, shapes=SHAPES, repeat=15, seconds=0.02, out=print):
    """Benchmark every shape for every thread count, printing the table as it goes."""
    from nnfs_fast.runtime.dispatch import kernels
    if threadpool_limits is None:
        out("note: threadpoolctl is not installed, NumPy's BLAS threads are not limited")
    out(DENSE_HEADER)
    out("-" * len(DENSE_HEADER))
    rows = []
    for n in threads:
        for shape in shapes:
            rows.append(bench_shape(kernels, *shape, n, repeat, seconds))
            for line in dense_row(rows[-1]).splitlines():
                out(line)
    return rows


# ------------------------------------------------------------------------ training step

# model -> title; layer sizes, batch and data size of the full and --quick runs (ch10: samples
# per class of spiral_data, and full-batch steps per timed call; ch19: rows of random data,
# one epoch of batches per call); Adam's arguments
TRAIN_MODELS = {
    "ch10": {"title": "ch10 spiral",
             "full": {"samples": 100, "sizes": [2, 64, 3], "batch": None, "steps": 10},
             "quick": {"samples": 20, "sizes": [2, 16, 3], "batch": None, "steps": 4},
             "adam": {"learning_rate": 0.05, "decay": 5e-7}},
    "ch19": {"title": "ch19 shape",
             "full": {"samples": 1024, "sizes": [784, 128, 128, 10], "batch": 128},
             "quick": {"samples": 64, "sizes": [64, 32, 32, 10], "batch": 16},
             "adam": {"learning_rate": 0.001, "decay": 1e-3}},
}
FRAMEWORKS = ("nnfs_fast", "numpy", "book", "torch", "jax")
FRAMEWORK_LABELS = {"nnfs_fast": "nnfs_fast", "numpy": "NumPy f32 (book code)",
                    "book": "book + nnfs.init()", "torch": "PyTorch CPU", "jax": "JAX CPU (jit)"}
INSTALL = {"book": "pip install nnfs", "torch": "pip install torch", "jax": "pip install jax"}


def available_frameworks():
    """{framework: None if it can run here, else why not}."""
    return {"nnfs_fast": None, "numpy": None,
            "book": None if find_spec("nnfs") else "the nnfs package is not installed",
            "torch": None if find_spec("torch") else "PyTorch is not installed",
            "jax": None if find_spec("jax") and find_spec("jaxlib") else "JAX is not installed"}


def check_frameworks(frameworks):
    """ValueError naming the first of ``frameworks`` (asked for by name) that cannot run here,
    and how to install it."""
    available = available_frameworks()
    for fw in frameworks:
        if available[fw]:
            raise ValueError(f"{fw}: {available[fw]}: {INSTALL[fw]}")


def train_data(model, quick):
    """(X float32, y int64, spec) of a training-step benchmark, from a fixed seed."""
    from nnfs_fast import datasets
    spec = TRAIN_MODELS[model]["quick" if quick else "full"]
    if model == "ch10":
        datasets.init(0)
        X, y = datasets.spiral_data(spec["samples"], spec["sizes"][-1])
    else:
        rng = np.random.default_rng(0)
        X = rng.uniform(-1, 1, (spec["samples"], spec["sizes"][0])).astype(np.float32)
        y = rng.integers(0, spec["sizes"][-1], spec["samples"])
    return X, y.astype(np.int64), spec


def initial_weights(sizes):
    """The book's initial parameters, ``0.01 * randn`` per layer in order after seed 0."""
    np.random.seed(0)
    return [((0.01 * np.random.randn(n_in, n_out)).astype(np.float32),
             np.zeros((1, n_out), dtype=np.float32))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def _batches(X, y, batch):
    if batch is None:
        return [(X, y)]
    return [(X[i:i + batch], y[i:i + batch]) for i in range(0, len(X), batch)]


def _step_nnfs_fast(X, y, spec, params, adam):
    """Model.train over the data: one call runs ``steps`` epochs (full batch) or one epoch."""
    from nnfs_fast import (
        Accuracy_Categorical,
        Activation_ReLU,
        Activation_Softmax,
        Layer_Dense,
        Loss_CategoricalCrossentropy,
        Model,
        Optimizer_Adam,
    )
    model = Model()
    for i, (W, b) in enumerate(params):
        dense = Layer_Dense(*W.shape)
        dense.weights, dense.biases = W.copy(), b.copy()
        model.add(dense)
        model.add(Activation_ReLU() if i < len(params) - 1 else Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=Optimizer_Adam(**adam),
              accuracy=Accuracy_Categorical())
    model.finalize()
    epochs = spec.get("steps", 1)
    return lambda: model.train(X, y, epochs=epochs, batch_size=spec["batch"], verbose=False)


def _step_book(X, y, spec, params, adam, classes=book):
    """The book's chapter 10 loop body (forward, loss, accuracy, backward, update) per batch,
    with the book's classes (``classes``: Dense(W, b), ReLU(), SoftmaxLoss(), Adam(**adam);
    testing/book.py's by default)."""
    dense = [classes.Dense(W.copy(), b.copy()) for W, b in params]
    relu = [classes.ReLU() for _ in dense[:-1]]
    loss_activation = classes.SoftmaxLoss()
    optimizer = classes.Adam(**adam)
    batches = _batches(X, y, spec["batch"]) * spec.get("steps", 1)

    def step():
        for batch_X, batch_y in batches:
            inputs = batch_X
            for layer, activation in zip(dense[:-1], relu):
                layer.forward(inputs)
                activation.forward(layer.output)
                inputs = activation.output
            dense[-1].forward(inputs)
            loss = loss_activation.forward(dense[-1].output, batch_y)
            predictions = np.argmax(loss_activation.output, axis=1)
            accuracy = np.mean(predictions == batch_y)
            loss_activation.backward(loss_activation.output, batch_y)
            dvalues = loss_activation.dinputs
            for i in reversed(range(len(dense))):
                if i < len(relu):
                    relu[i].backward(dvalues)
                    dvalues = relu[i].dinputs
                dense[i].backward(dvalues)
                dvalues = dense[i].dinputs
            optimizer.pre_update_params()
            for layer in dense:
                optimizer.update_params(layer)
            optimizer.post_update_params()
        return loss, accuracy
    return step


def _step_torch(X, y, spec, params, adam):
    """nn.Linear/nn.ReLU stack + CrossEntropyLoss + Adam; decay as a LambdaLR schedule."""
    import torch
    layers = []
    for i, (W, b) in enumerate(params):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.ravel()))
        layers.append(linear)
        if i < len(params) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=adam["learning_rate"], eps=1e-7)
    decay = adam["decay"]
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1 / (1 + decay * k))
    batches = [(torch.from_numpy(bx), torch.from_numpy(by))
               for bx, by in _batches(X, y, spec["batch"])] * spec.get("steps", 1)

    def step():
        for batch_X, batch_y in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch_X), batch_y)
            loss.backward()
            optimizer.step()
            schedule.step()
        return loss
    return step


# Without these, XLA's CPU backend runs a matrix product on a pool of one thread per core;
# JAX has no exact thread count (jax-ml/jax issues 743, 1539): this is the closest to one.
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def _jax_environment(threads):
    """Set JAX's environment in this process, before jax is imported: the CPU backend, and
    for 1 thread ``XLA_ONE_THREAD`` added to XLA_FLAGS. Returns what was used, in words."""
    os.environ["JAX_PLATFORMS"] = "cpu"
    if threads == 1:
        flags = (os.environ.get("XLA_FLAGS", "") + " " + XLA_ONE_THREAD).strip()
        os.environ["XLA_FLAGS"] = flags
        return f"XLA_FLAGS={flags!r}"
    flags = os.environ.get("XLA_FLAGS")
    return (f"XLA's default CPU threads ({f'XLA_FLAGS={flags!r}' if flags else 'no XLA_FLAGS'}"
            f"; JAX cannot be limited to {threads} threads)")


def _step_jax(X, y, spec, params, adam):
    """The book's network, loss (softmax, clipped cross-entropy on sparse labels), accuracy
    and Adam (testing/book.py: bias correction by iterations + 1, epsilon outside the square
    root, learning rate / (1 + decay * iterations)) in jax.numpy, float32. One training step,
    gradients from jax.value_and_grad, is one jax.jit-ed function of (parameters, Adam state,
    batch) returning the new parameters and state, whose buffers it reuses (donated). A call
    returns (loss, accuracy, (parameters, state)) of its last step, not waited for: the
    caller blocks with jax.block_until_ready."""
    import jax
    import jax.numpy as jnp
    hyper = book.Adam(**adam)   # the book's defaults for beta_1, beta_2 and epsilon

    def loss_accuracy(params, batch_X, batch_y):
        inputs = batch_X
        for i, (W, b) in enumerate(params):
            inputs = jnp.dot(inputs, W) + b
            if i < len(params) - 1:  # the book's ReLU, gradient 0 at 0 (jnp.maximum's is 0.5)
                inputs = jnp.where(inputs > 0, inputs, 0)
        exp_values = jnp.exp(inputs - jnp.max(inputs, axis=1, keepdims=True))
        probabilities = exp_values / jnp.sum(exp_values, axis=1, keepdims=True)
        clipped = jnp.clip(probabilities, 1e-7, 1 - 1e-7)
        correct = jnp.take_along_axis(clipped, batch_y[:, None], axis=1)
        accuracy = jnp.mean(jnp.argmax(probabilities, axis=1) == batch_y)
        return jnp.mean(-jnp.log(correct)), accuracy

    def adam_step(params, state, batch_X, batch_y):
        (loss, accuracy), grads = jax.value_and_grad(loss_accuracy, has_aux=True)(
            params, batch_X, batch_y)
        momentums, caches, iterations = state
        learning_rate = hyper.learning_rate * (1. / (1. + hyper.decay * iterations))
        momentums = jax.tree.map(lambda m, g: hyper.beta_1 * m + (1 - hyper.beta_1) * g,
                                 momentums, grads)
        caches = jax.tree.map(lambda c, g: hyper.beta_2 * c + (1 - hyper.beta_2) * g ** 2,
                              caches, grads)
        correction_1 = 1 - hyper.beta_1 ** (iterations + 1)
        correction_2 = 1 - hyper.beta_2 ** (iterations + 1)
        params = jax.tree.map(
            lambda p, m, c: p - learning_rate * (m / correction_1)
            / (jnp.sqrt(c / correction_2) + hyper.epsilon), params, momentums, caches)
        return params, (momentums, caches, iterations + 1), loss, accuracy

    step = jax.jit(adam_step, donate_argnums=(0, 1))
    zeros = [(jnp.zeros(W.shape, jnp.float32), jnp.zeros(b.shape, jnp.float32))
             for W, b in params]
    carry = [[(jnp.asarray(W), jnp.asarray(b)) for W, b in params],
             (zeros, jax.tree.map(jnp.copy, zeros), jnp.int32(0))]
    batches = [(jnp.asarray(bx), jnp.asarray(by.astype(np.int32)))
               for bx, by in _batches(X, y, spec["batch"])] * spec.get("steps", 1)

    def run():
        for batch_X, batch_y in batches:
            carry[0], carry[1], loss, accuracy = step(carry[0], carry[1], batch_X, batch_y)
        return loss, accuracy, tuple(carry)
    return run


STEPS = {"nnfs_fast": _step_nnfs_fast, "numpy": _step_book, "book": _step_book,
         "torch": _step_torch, "jax": _step_jax}
# the loss of the step after this many updates, compared with nnfs_fast's, within CHECK_RTOL
CHECK_UPDATES = 3
CHECK_RTOL = 1e-4


def check_loss(framework, model, quick):
    """``framework``'s loss after ``CHECK_UPDATES`` Adam updates from the benchmark's initial
    weights: the loss its step computes in the next step, all steps on the first batch (the
    whole data of a full-batch model). Contenders doing the same work agree to float32
    round-off (``loss_warnings``). NumPy's global RNG (seeded for the data and weights, drawn
    by Layer_Dense) is left as it was."""
    rng_state = np.random.get_state()
    try:
        X, y, spec = train_data(model, quick)
        if spec["batch"] is not None:
            X, y = X[:spec["batch"]], y[:spec["batch"]]
        spec = dict(spec, steps=CHECK_UPDATES + 1)
        result = STEPS[framework](X, y, spec, initial_weights(spec["sizes"]),
                                  TRAIN_MODELS[model]["adam"])()
    finally:
        np.random.set_state(rng_state)
    if isinstance(result, dict):        # Model.train's history: the loss of each epoch
        return float(result["loss"][-1])
    loss = result[0] if isinstance(result, tuple) else result  # (loss, accuracy, ...) or loss
    return loss.item()                  # a NumPy, JAX or PyTorch scalar


def loss_warnings(losses, reference, where):
    """A warning line for each contender whose ``check_loss`` (``losses``: {framework:
    loss}) differs from nnfs_fast's (``reference``) by more than ``CHECK_RTOL`` relative."""
    lines = []
    for fw, loss in losses.items():
        difference = abs(loss - reference) / abs(reference)
        if not difference <= CHECK_RTOL:  # also a nan loss
            lines.append(f"warning: {FRAMEWORK_LABELS[fw]} does not train like nnfs_fast "
                         f"({where}): loss {loss:.7g} after {CHECK_UPDATES} updates, "
                         f"nnfs_fast's {reference:.7g} (relative difference {difference:.1e} "
                         f"> {CHECK_RTOL:g}); its time may not be comparable")
    return lines


def _worker(framework, model, threads, quick):
    """Worker process: build one framework's step, then run a timed block per ``run S`` line
    read from stdin, answering with the seconds per training step."""
    note = _jax_environment(threads) if framework == "jax" else None
    if framework == "book":
        import nnfs
        nnfs.init()  # patches NumPy in this worker process only
    import nnfs_fast
    nnfs_fast.set_num_threads(threads)
    X, y, spec = train_data(model, quick)
    params = initial_weights(spec["sizes"])
    adam = TRAIN_MODELS[model]["adam"]
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
    fn = STEPS[framework](X, y, spec, params, adam)
    if framework == "jax":
        import jax
        step = fn

        def fn():  # a call's work is done when it returns (JAX dispatches asynchronously)
            return jax.block_until_ready(step())
    steps = len(_batches(X, y, spec["batch"])) * spec.get("steps", 1)
    version = (__import__(framework).__version__ if framework in ("torch", "jax") else None)
    with blas_limits(threads):
        fn()  # the warm-up: JAX compiles here
        print("ready " + json.dumps({"version": version, "note": note}), flush=True)
        for line in sys.stdin:
            command = line.split()
            if command[:1] == ["run"]:
                print(f"time {per_call(fn, float(command[1])) / steps!r}", flush=True)
            elif command[:1] == ["check"]:
                print(f"loss {check_loss(framework, model, quick)!r}", flush=True)
            else:
                break


def _worker_main(argv=None):
    parser = argparse.ArgumentParser(description="worker process of the training benchmark")
    parser.add_argument("framework", choices=FRAMEWORKS)
    parser.add_argument("model", choices=list(TRAIN_MODELS))
    parser.add_argument("threads", type=int)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    _worker(args.framework, args.model, args.threads, args.quick)


class _Worker:
    """A framework's worker process; ``block(seconds)`` runs one timed block in it,
    ``check()`` returns its ``check_loss``; ``note``: how it was set up (or None)."""

    def __init__(self, framework, model, threads, quick):
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(threads)
        # the folder this nnfs_fast was imported from, as a last resort on the worker's path
        home = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        bootstrap = (f"import sys; sys.path.append({home!r}); "
                     f"from nnfs_fast.testing.bench import _worker_main; _worker_main()")
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            [sys.executable, "-c", bootstrap, framework, model, str(threads)]
            + (["--quick"] if quick else []),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            env=env)
        ready = json.loads(self._answer("ready"))
        self.version, self.note = ready["version"], ready["note"]

    def _answer(self, tag):
        """The rest of the worker's next line starting with ``tag`` (other lines, e.g. a
        library's import message, are skipped)."""
        for line in self.process.stdout:
            if line.startswith(tag + " "):
                return line[len(tag) + 1:]
        self.process.wait(timeout=30)  # stdout closed: the worker has exited
        error = self._error()
        self.close()
        raise RuntimeError(error)

    def _error(self):
        self._stderr.seek(0)
        lines = [ln for ln in self._stderr.read().strip().splitlines() if ln.strip()]
        return lines[-1] if lines else f"worker exited with code {self.process.poll()}"

    def block(self, seconds):
        self.process.stdin.write(f"run {seconds}\n")
        self.process.stdin.flush()
        return float(self._answer("time"))

    def check(self):
        self.process.stdin.write("check\n")
        self.process.stdin.flush()
        return float(self._answer("loss"))

    def close(self):
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


def _format_time(seconds):
    if seconds is None:
        return "-"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


def _title(model, spec):
    """e.g. 'ch10 spiral 2-64-3, 300 rows' or 'ch19 shape 784-128-128-10, batch 128'."""
    sizes = "-".join(map(str, spec["sizes"]))
    rows = (f"{spec['samples'] * spec['sizes'][-1]} rows" if spec["batch"] is None
            else f"batch {spec['batch']}")
    return f"{TRAIN_MODELS[model]['title']} {sizes}, {rows}"


TRAIN_HEADER = (f"{'model':<36} {'thr':>3} | " + " ".join(f"{fw:>10}" for fw in FRAMEWORKS)
                + " | nnfs_fast speedup vs " + ", ".join(FRAMEWORKS[1:]))


def train_row(r):
    """One line of the training-step table."""
    times = " ".join(f"{_format_time(r['seconds'].get(fw)):>10}" for fw in FRAMEWORKS)
    speedups = ", ".join("-" if fw not in r["speedup"] else f"{r['speedup'][fw]:.1f}x"
                         for fw in FRAMEWORKS[1:])
    return f"{r['title']:<36} {r['threads']:>3} | {times} | {speedups}"


def run_train(threads, models=tuple(TRAIN_MODELS), frameworks=FRAMEWORKS, repeat=15,
              seconds=0.05, quick=False, out=print):
    """Time one training step of each model with each framework, for each thread count,
    printing the table as it goes. Returns (rows, versions of the frameworks used)."""
    available = available_frameworks()
    for fw in frameworks:
        if available[fw]:
            out(f"note: {FRAMEWORK_LABELS[fw]} skipped: {available[fw]}")
    frameworks = [fw for fw in frameworks if not available[fw]]
    if any(n > 1 for n in threads) and not quick:
        out(f"note: with more than one thread, blocks of different frameworks start "
            f"{POOL_GAP} s apart (the previous process's idle pool threads stop spinning)")
    out(TRAIN_HEADER)
    out("-" * len(TRAIN_HEADER))
    rows, versions, notes, references = [], {}, set(), {}
    for n in threads:
        for model in models:
            workers, losses = {}, {}
            try:
                for fw in frameworks:
                    try:
                        workers[fw] = _Worker(fw, model, n, quick)
                    except RuntimeError as exc:
                        out(f"note: {FRAMEWORK_LABELS[fw]} could not run: {exc}")
                        continue
                    if workers[fw].version:
                        versions[fw] = workers[fw].version
                    if workers[fw].note and (fw, n) not in notes:
                        notes.add((fw, n))
                        out(f"note: {FRAMEWORK_LABELS[fw]}, {n} thread(s): {workers[fw].note}")
                t = interleaved(workers, repeat, seconds,
                                POOL_GAP if n > 1 and not quick else 0.0)
                for fw, worker in workers.items():
                    if fw != "nnfs_fast":
                        try:
                            losses[fw] = worker.check()
                        except RuntimeError as exc:
                            out(f"warning: {FRAMEWORK_LABELS[fw]}'s loss could not be "
                                f"checked: {exc}")
            finally:
                for worker in workers.values():
                    worker.close()
            if model not in references:  # nnfs_fast's, in this process (any thread count)
                references[model] = check_loss("nnfs_fast", model, quick)
            spec = TRAIN_MODELS[model]["quick" if quick else "full"]
            row = {"model": model, "title": _title(model, spec), "sizes": spec["sizes"],
                   "batch": spec["batch"], "threads": n,
                   "seconds": t, "speedup": {fw: t[fw] / t["nnfs_fast"] for fw in t
                                             if fw != "nnfs_fast" and "nnfs_fast" in t},
                   "check_loss": {"nnfs_fast": references[model], **losses}}
            rows.append(row)
            out(train_row(row))
            for line in loss_warnings(losses, references[model], f"{model}, {n} thread(s)"):
                out(line)
    return rows, versions


# ------------------------------------------------------------------------------ the suite

def run(suites=("dense", "train"), threads=None, quick=False, repeat=None, seconds=None,
        frameworks=FRAMEWORKS, shapes=None, out=print):
    """Both suites with a header describing the machine; returns the JSON-able results."""
    import nnfs_fast
    if threads is None:
        threads = [nnfs_fast.get_num_threads()]
    info = machine()
    info["load_average"] = load_average()
    result = {"machine": info, "threads": list(threads), "quick": quick}
    out("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    if info["load_average"] is not None and info["load_average"] > 0.5 * (os.cpu_count() or 1):
        out(f"note: the machine is busy (load average {info['load_average']} on "
            f"{os.cpu_count()} CPUs): expect noisy timings")
    if "dense" in suites:
        out("\nDense layer kernels (fused bias+ReLU forward, ReLU-masked backward) vs NumPy "
            "float32; median time per call, in blocks of calls and alternated call by call")
        result["dense"] = run_dense(
            threads, shapes or (QUICK_SHAPES if quick else SHAPES),
            repeat or (3 if quick else 15), seconds or (0.002 if quick else 0.02), out)
    if "train" in suites:
        out("\nTraining step (forward, loss, backward, Adam update); median time per step")
        result["train"], result["versions"] = run_train(
            threads, frameworks=frameworks, repeat=repeat or (3 if quick else 15),
            seconds=seconds or (0.005 if quick else 0.05), quick=quick, out=out)
    return result


def write_json(result, path):
    """Write the results atomically (a temporary file renamed over ``path``)."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, path)


def plot(result, path):
    """Bar charts of the results: training-step times per framework (log scale) and the
    dense kernels' speedups over NumPy. Needs matplotlib."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [key for key in ("train", "dense") if result.get(key)]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.5), squeeze=False)
    for ax, key in zip(axes[0], panels):
        (_plot_train if key == "train" else _plot_dense)(ax, result[key])
    fig.suptitle(f"nnfs_fast {result['machine']['nnfs_fast']} on {result['machine']['cpu']}, "
                 f"{result['machine']['kernel_level']} kernels", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_train(ax, rows):
    frameworks = [fw for fw in FRAMEWORKS if any(fw in r["seconds"] for r in rows)]
    width = 0.8 / len(frameworks)
    for j, fw in enumerate(frameworks):
        xs = [i + (j - (len(frameworks) - 1) / 2) * width for i in range(len(rows))]
        us = [r["seconds"].get(fw, np.nan) * 1e6 for r in rows]
        bars = ax.bar(xs, us, width, label=FRAMEWORK_LABELS[fw])
        for bar, r in zip(bars, rows):
            if fw in r["speedup"]:
                ax.annotate(f"{r['speedup'][fw]:.1f}x", (bar.get_x() + bar.get_width() / 2,
                            bar.get_height()), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([f"{r['model']} {'-'.join(map(str, r['sizes']))}\n{r['threads']} thr"
                        for r in rows], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("time per training step (us, log scale)")
    ax.set_title("Training step (labels: how many times slower than nnfs_fast)", fontsize=9)
    ax.legend(fontsize=8)


def _plot_dense(ax, rows):
    labels = [f"{'x'.join(map(str, r['shape']))}, {r['threads']} thr" for r in rows]
    xs = np.arange(len(rows))
    ax.bar(xs - 0.2, [r["fwd_speedup"] for r in rows], 0.4, label="forward")
    ax.bar(xs + 0.2, [r["bwd_speedup"] for r in rows], 0.4, label="backward")
    ax.axhline(1, color="gray", lw=0.8)
    ax.set_xticks(xs)
    ax.set_xticklabels(labels, fontsize=7, rotation=45, ha="right")
    ax.set_ylabel("speedup over NumPy float32")
    ax.set_title("Dense layer kernels (batch x inputs x neurons)", fontsize=9)
    ax.legend(fontsize=8)

