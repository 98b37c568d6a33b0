"""The book's dropout draws (kernels/dropout.pyx, kernels/dropout_targets.h) and the main job.

1. Nanoseconds per draw of ``np.random.binomial(1, keep, size)`` (NumPy's legacy sampler, what
   the book calls) and of ``dropout_forward_rng`` (the same draws made natively, plus the mask
   and the masked output) on each target its loops are built for here (baseline, AVX2), at the
   main job's shape (3000 x 256) and keep 0.9 and 0.5; blocks interleaved, median. Every target's
   draws are checked against NumPy's first.
2. With ``--trees A B ...``: ``nnfs-fast train`` (the README's main job, its defaults) run from
   each source tree (``PYTHONPATH=TREE/src``, built in place), each in its own process, the trees
   alternated ``--runs`` times; the time it prints and whether its other lines equal the first
   tree's.

    python benchmarks/bench_draws.py [--repeat 9] [--trees /path/to/old/checkout .]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

from nnfs_fast.kernels import dropout as _dropout
from nnfs_fast.testing import bench as _bench

SHAPE = (3000, 256)


def per_draw(fn, n, seconds=0.05):
    """Nanoseconds per element of fn() over a block of about ``seconds``."""
    return _bench.per_call(fn, seconds) / n * 1e9


def check(target, keep):
    """The target's draws equal NumPy's, and leave the same RNG state."""
    _dropout._use_target(target)
    np.random.seed(3)
    expected = np.random.binomial(1, keep, size=SHAPE)
    state = np.random.get_state()[1].copy()
    np.random.seed(3)
    mask, _ = _dropout.dropout_forward_rng(np.ones(SHAPE, np.float32), keep)
    assert np.array_equal(mask != 0, expected != 0), target
    assert np.array_equal(np.random.get_state()[1], state), target


def draws(repeat):
    x = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    default = _dropout.target()
    print(f"{'keep':>5} | {'numpy':>8} " + " ".join(f"{t:>9}" for t in _dropout.targets())
          + " | ns per draw (nnfs_fast: draw + mask + output), speedup vs numpy")
    for keep in (0.9, 0.5):
        fns = {"numpy": lambda keep=keep: np.random.binomial(1, keep, size=SHAPE)}
        for target in _dropout.targets():
            check(target, keep)

            def ours(target=target, keep=keep):
                _dropout._use_target(target)
                return _dropout.dropout_forward_rng(x, keep)
            fns[target] = ours
        times = {name: [] for name in fns}
        for _ in range(repeat):
            for name, fn in fns.items():
                times[name].append(per_draw(fn, x.size))
        med = {name: statistics.median(t) for name, t in times.items()}
        cells = " ".join(f"{med[t]:>9.2f}" for t in _dropout.targets())
        ratios = ", ".join(f"{med['numpy'] / med[t]:.1f}x" for t in _dropout.targets())
        print(f"{keep:>5} | {med['numpy']:>8.2f} {cells} | {ratios}", flush=True)
    _dropout._use_target(default)


def main_job(trees, runs):
    """``nnfs-fast train`` from each tree, alternated; its time and its other lines."""
    print(f"\nnnfs-fast train (defaults), {runs} alternated runs per tree:")
    outputs, seconds = {}, {tree: [] for tree in trees}
    for _ in range(runs):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=os.path.join(os.path.abspath(tree), "src"))
            t0 = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "nnfs_fast", "train"], env=env,
                                 capture_output=True, text=True, check=True).stdout
            wall = time.perf_counter() - t0
            printed = re.search(r"^time: ([0-9.]+) s training", out, re.M)
            seconds[tree].append(float(printed.group(1)) if printed else wall)
            outputs.setdefault(tree, [ln for ln in out.splitlines()
                                      if not ln.startswith("time:")])
    first = trees[0]
    for tree in trees:
        same = "same lines" if outputs[tree] == outputs[first] else "OTHER LINES"
        ts = ", ".join(f"{t:.2f}" for t in seconds[tree])
        ratio = statistics.median(seconds[first]) / statistics.median(seconds[tree])
        print(f"  {tree}: {ts} s training (median {statistics.median(seconds[tree]):.2f} s, "
              f"{ratio:.2f}x the first tree; {same} as it)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--trees", nargs="+", default=[],
                        help="source trees (built in place) whose nnfs-fast train to compare")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    info = _bench.machine()
    info["load_average"] = _bench.load_average()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    draws(args.repeat)
    if args.trees:
        main_job(args.trees, args.runs)


if __name__ == "__main__":
    main()
