"""Where do two threads start to pay for a dense forward? (sets PAR_FLOPS in kernels/gemm/dense.pxi)

For products of growing size, the median time of ``dense_forward`` run with the serial path
forced (n_threads=1) and with all threads, interleaved block by block; prints the ratio.
The kernels switch to threads at PAR_FLOPS = 2*M*N*K; the crossing of this table is where
that constant belongs on a machine like the one the table was made on.

    python benchmarks/threshold.py [--repeat 15]
"""
import argparse
from functools import partial

import numpy as np

import nnfs_fast
from nnfs_fast.runtime import dispatch as _dispatch
from nnfs_fast.testing.bench import interleaved

# (batch, n_inputs, n_neurons) of about 2*M*N*K = 25k ... 3.2M flops
SHAPES = [(64, 14, 14), (64, 28, 14), (64, 28, 28), (128, 28, 28), (128, 56, 28),
          (128, 56, 56), (128, 112, 56), (256, 112, 56)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=0.01)
    args = parser.parse_args(argv)
    k, nt = _dispatch.kernels, nnfs_fast.get_num_threads()
    rng = np.random.default_rng(0)
    print(f"threads: 1 vs {nt}; kernel level {_dispatch.LEVEL}")
    print(f"{'batch,in,out':>14} {'flops':>9} {'1 thread us':>12} {f'{nt} threads us':>13} "
          f"{'ratio':>6}")
    for M, K, N in SHAPES:
        X = rng.standard_normal((M, K), dtype=np.float32)
        W = rng.standard_normal((K, N), dtype=np.float32)
        b = np.zeros((1, N), np.float32)
        t = interleaved({"one": partial(k.dense_forward, X, W, b, True, 1),
                         "all": partial(k.dense_forward, X, W, b, True, nt)},
                        args.repeat, args.seconds)
        print(f"{M},{K},{N:>4} {2 * M * N * K:>9} {t['one'] * 1e6:12.2f} "
              f"{t['all'] * 1e6:13.2f} {t['one'] / t['all']:6.2f}")


if __name__ == "__main__":
    main()
