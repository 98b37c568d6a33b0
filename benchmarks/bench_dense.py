"""Dense-layer kernels of nnfs_fast against the same NumPy float32 operations.

forward : output = max(0, X . W + b)             nnfs_fast: one fused kernel call
backward: G = dY * (Y > 0); dW = X^T . G;        nnfs_fast: one fused kernel call
          db = colsum(G); dX = G . W^T

Both sides run in one process, interleaved block by block (a block of calls of one, then of
the other), for 1 thread and for all threads (NumPy's BLAS limited with threadpoolctl, ours
with n_threads). Reported: median time per call, GFLOP/s of the forward product, speedup
(NumPy time / ours), and NumPy's own sgemm GFLOP/s (np.dot alone) as the practical peak.
The timing code is nnfs_fast.testing.bench (also behind `nnfs-fast bench --suite dense`).

    python benchmarks/bench_dense.py [--threads 1 2] [--repeat 15] [--json out.json]
"""
import argparse

import nnfs_fast
from nnfs_fast.testing import bench as _bench


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, nnfs_fast.get_num_threads()}))
    parser.add_argument("--repeat", type=int, default=15, help="blocks per function")
    parser.add_argument("--seconds", type=float, default=0.02, help="length of one block")
    parser.add_argument("--shapes", default=None,
                        help="batch,n_in,n_out;... (default: the standard set)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    shapes = _bench.SHAPES if not args.shapes else [
        tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]

    info = _bench.machine()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    rows = _bench.run_dense(args.threads, shapes, args.repeat, args.seconds,
                            out=lambda line: print(line, flush=True))
    if args.json:
        _bench.write_json({"machine": info, "results": rows}, args.json)
    return rows


if __name__ == "__main__":
    main()
