"""What the compiled training plan (kernels/plan.pyx) saves: one training step of nnfs_fast's
``Model.train`` with the plan (``compiled``), without it (``python``: the layer-by-layer path)
and the book's own chapter 10 loop written with nnfs_fast's classes (``book loop``: forward and
backward per layer, as the book's code calls them), in one process, blocks interleaved, median.

Models: the chapter 10 spiral (2-64-3, 300 rows, full batch, Adam), the chapter 19 shape
(784-128-128-10, batch 128, Adam) and ``nnfs-fast train``'s default spiral model (2-256-3 with
L2, dropout 0.1, 3,000 rows, full batch; no book loop: that loop has neither). Every path
starts from the same weights; the check of each row asserts that the compiled and the Python
path train bit-identical weights.

    python benchmarks/bench_plan.py [--threads 1 2] [--repeat 15] [--seconds 0.1]
"""
import argparse
import functools

import numpy as np

import nnfs_fast as nf
from nnfs_fast.datasets import spiral_data
from nnfs_fast.testing import bench as _bench

MODELS = {
    "ch10 spiral 2-64-3, 300 rows": dict(sizes=[2, 64, 3], rows=300, batch=None, dropout=0.0,
                                         l2=0.0, adam=dict(learning_rate=0.05, decay=5e-7)),
    "ch19 shape 784-128-128-10, batch 128": dict(sizes=[784, 128, 128, 10], rows=1024,
                                                 batch=128, dropout=0.0, l2=0.0,
                                                 adam=dict(learning_rate=0.001, decay=1e-3)),
    "nnfs-fast train default 2-256-3, 3000 rows": dict(sizes=[2, 256, 3], rows=3000, batch=None,
                                                       dropout=0.1, l2=5e-4,
                                                       adam=dict(learning_rate=0.05,
                                                                 decay=5e-5)),
}


def data(spec):
    state = np.random.get_state()
    np.random.seed(0)
    if spec["sizes"][0] == 2:
        X, y = spiral_data(spec["rows"] // spec["sizes"][-1], spec["sizes"][-1])
    else:
        X = np.random.randn(spec["rows"], spec["sizes"][0]).astype(np.float32)
        y = np.random.randint(0, spec["sizes"][-1], spec["rows"])
    np.random.set_state(state)
    return np.ascontiguousarray(X, dtype=np.float32), y


def model(spec, compiled):
    np.random.seed(1)
    m = nf.Model(compiled=compiled)
    sizes = spec["sizes"]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        m.add(nf.Layer_Dense(n_in, n_out, weight_regularizer_l2=0 if last else spec["l2"],
                             bias_regularizer_l2=0 if last else spec["l2"]))
        m.add(nf.Activation_Softmax() if last else nf.Activation_ReLU())
        if spec["dropout"] and not last:
            m.add(nf.Layer_Dropout(spec["dropout"]))
    m.set(loss=nf.Loss_CategoricalCrossentropy(), optimizer=nf.Optimizer_Adam(**spec["adam"]),
          accuracy=nf.Accuracy_Categorical())
    m.finalize()
    return m


class NnfsFastClasses:
    """The book loop's classes (nnfs_fast.testing.bench._step_book) as nnfs_fast's own."""

    @staticmethod
    def Dense(W, b):
        layer = nf.Layer_Dense(*W.shape)
        layer.weights, layer.biases = W, b
        return layer

    ReLU = nf.Activation_ReLU
    SoftmaxLoss = nf.Activation_Softmax_Loss_CategoricalCrossentropy
    Adam = nf.Optimizer_Adam


def book_loop(spec, X, y, epochs):
    """The book's chapter 10 loop with nnfs_fast's classes, from model()'s initial weights."""
    params = [(W.copy(), b.copy()) for W, b in model(spec, False).get_parameters()]
    return _bench._step_book(X, y, {"batch": spec["batch"], "steps": epochs}, params,
                             spec["adam"], classes=NnfsFastClasses)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, nf.get_num_threads()}))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.1)
    args = parser.parse_args(argv)
    info = _bench.machine()
    info["load_average"] = _bench.load_average()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    print(f"{'model':<44} {'thr':>3} | {'compiled':>10} {'python':>10} {'book loop':>10} | "
          f"compiled speedup vs python, book loop")
    for threads in args.threads:
        nf.set_num_threads(threads)
        for title, spec in MODELS.items():
            X, y = data(spec)
            # a call: 20 epochs of one full batch, or one epoch of batches
            epochs = 20 if spec["batch"] is None else 1
            steps = epochs if spec["batch"] is None else -(-len(X) // spec["batch"])
            models = {"compiled": model(spec, True), "python": model(spec, False)}
            assert models["compiled"].plan_status() == "compiled"
            fns = {name: functools.partial(m.train, X, y, epochs=epochs,
                                           batch_size=spec["batch"], verbose=False)
                   for name, m in models.items()}
            if not spec["dropout"] and not spec["l2"]:
                fns["book loop"] = book_loop(spec, X, y, epochs)
            times = _bench.interleaved(fns, args.repeat, args.seconds)
            per_step = {k: v / steps for k, v in times.items()}
            check = {}
            for compiled in (True, False):   # fresh models, 3 calls each: the same numbers
                np.random.seed(2)
                m = model(spec, compiled)
                for _ in range(3):
                    m.train(X, y, batch_size=spec["batch"], verbose=False)
                check[compiled] = m.get_parameters()
            for a, b in zip(check[True], check[False]):
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
            cells = " ".join(f"{_bench._format_time(per_step.get(k)):>10}"
                             for k in ("compiled", "python", "book loop"))
            ratios = ", ".join(f"{per_step[k] / per_step['compiled']:.2f}x"
                               for k in ("python", "book loop") if k in per_step)
            print(f"{title:<44} {threads:>3} | {cells} | {ratios}", flush=True)


if __name__ == "__main__":
    main()
