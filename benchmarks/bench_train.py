"""One training step (forward, loss, backward, Adam update) of the book's chapter 10 spiral
model (300 x 2 -> 64 -> 3, full batch) and of the chapter 19 Fashion-MNIST model shape
(784 -> 128 -> 128 -> 10, batch 128, random data): nnfs_fast's Model.train against the book's
code in NumPy float32, the book's code under nnfs.init() (when nnfs is installed), PyTorch
on the CPU (when torch is installed) and JAX on the CPU, one jax.jit-ed step (when jax is
installed), each in a worker process, blocks interleaved, median. Each contender's loss after
3 updates is checked against nnfs_fast's (a warning line when they differ). The timing code
is nnfs_fast.testing.bench (also behind `nnfs-fast bench --suite train`).

    python benchmarks/bench_train.py [--threads 1 2] [--repeat 15] [--quick] [--json out.json]
"""
import argparse

import nnfs_fast
from nnfs_fast.testing import bench as _bench


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, nnfs_fast.get_num_threads()}))
    parser.add_argument("--repeat", type=int, default=15, help="blocks per framework")
    parser.add_argument("--seconds", type=float, default=0.05, help="length of one block")
    parser.add_argument("--models", nargs="+", choices=list(_bench.TRAIN_MODELS),
                        default=list(_bench.TRAIN_MODELS))
    parser.add_argument("--frameworks", nargs="+", choices=_bench.FRAMEWORKS,
                        help="contenders (default: those installed)")
    parser.add_argument("--quick", action="store_true", help="tiny models, for a smoke test")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    if args.frameworks:  # asked for by name: each must run
        try:
            _bench.check_frameworks(args.frameworks)
        except ValueError as exc:
            parser.error(f"argument --frameworks: {exc}")

    info = _bench.machine()
    info["load_average"] = _bench.load_average()
    print("machine: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    rows, versions = _bench.run_train(args.threads, args.models,
                                      args.frameworks or _bench.FRAMEWORKS, args.repeat,
                                      args.seconds, args.quick,
                                      out=lambda line: print(line, flush=True))
    if args.json:
        _bench.write_json({"machine": info, "versions": versions, "results": rows}, args.json)
    return rows


if __name__ == "__main__":
    main()
