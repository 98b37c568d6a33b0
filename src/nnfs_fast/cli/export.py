"""``nnfs-fast export``: a saved model as ONNX, a torch nn.Sequential and/or safetensors."""
from nnfs_fast.cli.common import UsageError, check_writable, load_model


def cmd_export(args):
    """Write a saved model as ONNX, a torch nn.Sequential and/or safetensors parameters."""
    from nnfs_fast import Model, export
    from nnfs_fast.io import safetensors as safetensors_io
    targets = [(option, path) for option, path in (
        ("--onnx", args.onnx), ("--torch", args.torch), ("--safetensors", args.safetensors))
        if path]
    if not targets:
        raise UsageError("export: give at least one of --onnx FILE, --torch FILE, "
                         "--safetensors FILE")
    for option, path in targets:
        check_writable(path, option)
    if args.safetensors and not safetensors_io.is_safetensors_path(args.safetensors):
        raise UsageError(f"--safetensors {args.safetensors}: the name must end in "
                         f"{safetensors_io.SUFFIX} (Model.save_parameters writes safetensors "
                         "by that suffix)")
    model = load_model(args.model, args.allow_pickle)
    writers = {"--onnx": ("the ONNX model", export.to_onnx),
               "--torch": ("the torch nn.Sequential", export.save_torch),
               "--safetensors": ("the parameters (safetensors)", Model.save_parameters)}
    for option, path in targets:
        what, write = writers[option]
        try:
            write(model, path)
        except (ImportError, ValueError) as exc:
            raise UsageError(f"{option} {path}: {exc}") from None
        except OSError as exc:
            raise UsageError(f"{option} {path}: cannot write it ({exc})") from None
        print(f"saved {what} to {path}")
    return 0

