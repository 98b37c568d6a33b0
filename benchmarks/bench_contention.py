"""nnfs_fast's calls on one thread and on all threads when something else wants the cores.

Scenarios (issue 11):
  quiet        our calls in a block, nothing else running
  alternating  our call, then NumPy doing the same work (its OpenBLAS on its default thread
               count, whose workers spin after each call), call by call, as in a user's loop
               that mixes Layer_Dense with np.dot
  alternating_blas1  the same with NumPy's BLAS limited to one thread (threadpoolctl)
  busy         our calls in a block while one other process keeps a core busy
  two_threads  two Python threads of one process run their own copy of the work at once
Workloads: Layer_Dense forward + backward at (batch, n_in, n_out) = (300,2,64), (128,784,128)
and (1024,784,128) (NumPy's side: the book's four operations); one training step of the
chapter 10 spiral model and of the chapter 19 model shape (nnfs_fast.testing.bench's; NumPy's side:
the book's loop in float32).

Each thread count runs in a worker process of its own; the harness alternates blocks
between the workers, scenario by scenario, ``--repeat`` times, so every ratio comes from one
run on one machine state. Every call is timed on its own and the medians are reported:
time per call (per training step for ch10/ch19) on 1 and on all threads, their ratio
(all/1: at most 1.1 is the goal), and for "alternating" NumPy's time in the same loop and
ours against it (NumPy time / ours).

    python benchmarks/bench_contention.py [--repeat 5] [--seconds 0.2] [--json FILE]
"""
import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

SCENARIOS = ("quiet", "alternating", "alternating_blas1", "busy", "two_threads")
SHAPES = {"dense 300,2,64": (300, 2, 64), "dense 128,784,128": (128, 784, 128),
          "dense 1024,784,128": (1024, 784, 128)}
WORKLOADS = tuple(SHAPES) + ("ch10 step", "ch19 step")


# ------------------------------------------------------------------------------ worker

def make_workload(name):
    """(ours, numpy, steps): two functions doing the same work, and the training steps one
    call makes (1 for the dense layer). Each call builds fresh objects (one per thread)."""
    from nnfs_fast import Layer_Dense
    from nnfs_fast.testing import bench as _bench
    if name in SHAPES:
        batch, n_in, n_out = SHAPES[name]
        rng = np.random.default_rng(0)
        X = rng.standard_normal((batch, n_in), dtype=np.float32)
        G = rng.standard_normal((batch, n_out), dtype=np.float32)
        np.random.seed(0)
        layer = Layer_Dense(n_in, n_out)
        W, b = layer.weights.copy(), layer.biases.copy()

        def ours():
            layer.forward(X)
            layer.backward(G)

        def numpy():
            np.dot(X, W) + b
            np.dot(X.T, G), np.sum(G, axis=0, keepdims=True), np.dot(G, W.T)
        return ours, numpy, 1
    model = name.split()[0]
    X, y, spec = _bench.train_data(model, quick=False)
    params = _bench.initial_weights(spec["sizes"])
    adam = _bench.TRAIN_MODELS[model]["adam"]
    steps = len(_bench._batches(X, y, spec["batch"])) * spec.get("steps", 1)
    return (_bench._step_nnfs_fast(X, y, spec, params, adam),
            _bench._step_book(X, y, spec, params, adam), steps)


def timed_calls(fns, seconds):
    """Call fns in turn, each call timed, for about ``seconds``; per-call times per fn."""
    times = [[] for _ in fns]
    for fn in fns:      # warm up
        fn()
    end = time.perf_counter() + seconds
    while True:
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
        if time.perf_counter() >= end:
            return times


def measure(scenario, workload, threads, seconds):
    """{"ours": seconds per step, "numpy": seconds per step or None} in this process."""
    import nnfs_fast
    nnfs_fast.set_num_threads(threads)
    if scenario == "two_threads":
        per_thread, barrier = [], threading.Barrier(2)

        def run():
            nnfs_fast.set_num_threads(threads)    # the setting is per Python thread
            ours, _, steps = make_workload(workload)
            barrier.wait()
            per_thread.append([t / steps for t in timed_calls([ours], seconds)[0]])
        pair = [threading.Thread(target=run) for _ in range(2)]
        for t in pair:
            t.start()
        for t in pair:
            t.join()
        return {"ours": statistics.median(per_thread[0] + per_thread[1]), "numpy": None}
    ours, numpy, steps = make_workload(workload)
    if scenario.startswith("alternating"):
        limit = contextlib.nullcontext()
        if scenario == "alternating_blas1":
            from threadpoolctl import threadpool_limits  # needed for this scenario only
            limit = threadpool_limits(1, user_api="blas")
        with limit:
            t_ours, t_numpy = timed_calls([ours, numpy], seconds)
        return {"ours": statistics.median(t_ours) / steps,
                "numpy": statistics.median(t_numpy) / steps}
    return {"ours": statistics.median(timed_calls([ours], seconds)[0]) / steps, "numpy": None}


def worker_main(threads, spin_us):
    """Answer "run SCENARIO WORKLOAD SECONDS" lines with "time {json}" lines."""
    import nnfs_fast
    nnfs_fast.set_num_threads(threads)
    if spin_us is not None:
        from nnfs_fast.runtime.openmp import _set_spin_us
        _set_spin_us(spin_us)
    print("ready", flush=True)
    for line in sys.stdin:
        scenario, workload, seconds = json.loads(line)
        print("time " + json.dumps(measure(scenario, workload, threads, seconds)), flush=True)


class Worker:
    def __init__(self, threads, spin_us=None):
        spin = [] if spin_us is None else ["--spin-us", str(spin_us)]
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", str(threads)] + spin,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._answer("ready")

    def _answer(self, tag):
        for line in self.process.stdout:
            if line.startswith(tag):
                return line[len(tag):].strip()
        raise RuntimeError(f"worker exited with code {self.process.wait()}")

    def run(self, scenario, workload, seconds):
        self.process.stdin.write(json.dumps([scenario, workload, seconds]) + "\n")
        self.process.stdin.flush()
        return json.loads(self._answer("time"))

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


# ----------------------------------------------------------------------------- harness

def busy_process():
    """One process keeping one core busy (pure Python: no thread pool of its own)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run(threads, scenarios, workloads, repeat, seconds, spin_us=None, out=print):
    times = {(s, w, n): [] for s in scenarios for w in workloads for n in threads}
    workers = {n: Worker(n, spin_us) for n in threads}
    try:
        for rep in range(repeat):
            order = list(threads) if rep % 2 == 0 else list(reversed(threads))
            for scenario in scenarios:
                busy = busy_process() if scenario == "busy" else None
                try:
                    time.sleep(0.05 if busy else 0)      # let it start spinning
                    for workload in workloads:
                        for n in order:
                            times[scenario, workload, n].append(
                                workers[n].run(scenario, workload, seconds))
                finally:
                    if busy:
                        busy.kill()
                        busy.wait()
    finally:
        for w in workers.values():
            w.close()
    rows = []
    lo, hi = min(threads), max(threads)
    header = (f"{'scenario':<17} {'workload':<19} | {f'{lo} thr us':>10} {f'{hi} thr us':>10}"
              f" {f'{hi}/{lo}':>6} | {'numpy us':>10} {'x numpy':>8}")
    out(header)
    out("-" * len(header))
    for scenario in scenarios:
        for workload in workloads:
            med = {n: statistics.median(r["ours"] for r in times[scenario, workload, n])
                   for n in threads}
            numpy = [r["numpy"] for r in times[scenario, workload, hi] if r["numpy"]]
            row = {"scenario": scenario, "workload": workload,
                   "us": {str(n): med[n] * 1e6 for n in threads},
                   "ratio": med[hi] / med[lo],
                   "numpy_us": statistics.median(numpy) * 1e6 if numpy else None}
            row["vs_numpy"] = row["numpy_us"] / row["us"][str(hi)] if numpy else None
            rows.append(row)
            out(f"{scenario:<17} {workload:<19} | {row['us'][str(lo)]:10.1f} "
                f"{row['us'][str(hi)]:10.1f} {row['ratio']:6.2f} | "
                + (f"{row['numpy_us']:10.1f} {row['vs_numpy']:8.2f}" if numpy
                   else f"{'-':>10} {'-':>8}"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, os.cpu_count() or 1}))
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=5, help="blocks per cell")
    parser.add_argument("--seconds", type=float, default=0.2, help="length of one block")
    parser.add_argument("--spin-us", type=float,
                        help="idle spin of the pool's threads (default: the built-in one)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.spin_us)
    from nnfs_fast.runtime.config import config
    from nnfs_fast.testing import bench as _bench
    info = _bench.machine()
    info["runtime"] = config().get("runtime", "OpenMP parallel regions")
    info["load_average"] = _bench.load_average()
    if args.spin_us is not None:
        info["spin_us"] = args.spin_us
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()), flush=True)
    rows = run(args.threads, args.scenarios, args.workloads, args.repeat, args.seconds,
               args.spin_us, out=lambda line: print(line, flush=True))
    if args.json:
        _bench.write_json({"machine": info, "results": rows}, args.json)
    return rows


if __name__ == "__main__":
    main()
