"""``nnfs-fast bench``: the timing harness of ``nnfs_fast.testing.bench``."""
from nnfs_fast.cli.common import UsageError, check_plot, check_writable


def cmd_bench(args):
    from nnfs_fast.testing import bench as _bench
    if args.json:
        check_writable(args.json, "--json")
    if args.plot:
        check_plot(args.plot, "--plot")
    if args.frameworks:  # asked for by name: each must run (by default, missing ones are skipped)
        try:
            _bench.check_frameworks(args.frameworks)
        except ValueError as exc:
            raise UsageError(f"--frameworks {exc}") from None
    result = _bench.run(suites=args.suite, threads=args.threads, quick=args.quick,
                        repeat=args.repeat, seconds=args.seconds,
                        frameworks=args.frameworks or _bench.FRAMEWORKS)
    if args.json:
        _bench.write_json(result, args.json)
        print(f"\nsaved the results to {args.json}")
    if args.plot:
        _bench.plot(result, args.plot)
        print(f"saved the plot to {args.plot}")
    return 0

