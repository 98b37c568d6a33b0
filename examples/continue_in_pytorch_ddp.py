"""Past one machine: train with nnfs_fast, continue in PyTorch DistributedDataParallel, come
back, and serve the result with ONNX Runtime (docs/SCALING.md).

1. nnfs_fast trains the book's spiral classifier, Dense(2, 64) -> ReLU -> Dense(64, 3) ->
   Softmax with categorical cross-entropy and ``Optimizer_Adam(learning_rate=0.05,
   decay=5e-5)``, full batch, and saves the model (``Model.save`` keeps Adam's state) and the
   network as a torch ``nn.Sequential`` (``nnfs_fast.export.save_torch``).
2. ``--world-size`` processes (2; torch.distributed with the gloo backend, on the CPU) each
   load the module, drop its final Softmax (``CrossEntropyLoss`` wants logits), wrap it in
   ``DistributedDataParallel`` and rebuild the book's Adam with its moments, step count and
   decay schedule (``nnfs_fast.export.to_torch_optimizer``: eps 1e-7, ``LambdaLR(lambda t:
   1 / (1 + decay * t))``). Each process takes every world_size-th sample; DDP averages the
   gradients, so each step is the full-batch step nnfs_fast would have taken, and the loss
   carries on falling from where nnfs_fast left it. Process 0 writes the continued parameters
   with ``safetensors.torch.save_file(module.state_dict())``.
3. Back in nnfs_fast: ``model.load_parameters`` reads that file (same names, no code), the
   loss is the one torch reached, and ONNX Runtime serves ``model.to_onnx(...)`` with the
   predictions of ``Model.predict``.

Run: python examples/continue_in_pytorch_ddp.py [--quick] [--epochs N] [--torch-epochs N]
Needs: pip install "nnfs_fast[export]"   (torch, onnx + onnxruntime, safetensors)
"""
import argparse
import os
import tempfile

import numpy as np

from nnfs_fast import (
    Accuracy_Categorical,
    Activation_ReLU,
    Activation_Softmax,
    Layer_Dense,
    Loss_CategoricalCrossentropy,
    Model,
    Optimizer_Adam,
    export,
)
from nnfs_fast.datasets import init, spiral_data


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="little data, few epochs (tests)")
    parser.add_argument("--epochs", type=int, help="nnfs_fast epochs (1000; quick: 200)")
    parser.add_argument("--torch-epochs", type=int, help="torch DDP epochs (1000; quick: 100)")
    parser.add_argument("--world-size", type=int, default=2, help="processes (2)")
    return parser.parse_args()


def train_nnfs(X, y, epochs):
    """Step 1: the book's Model, trained full batch; returns it."""
    model = Model()
    model.add(Layer_Dense(2, 64))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(64, 3))
    model.add(Activation_Softmax())
    model.set(loss=Loss_CategoricalCrossentropy(),
              optimizer=Optimizer_Adam(learning_rate=0.05, decay=5e-5),
              accuracy=Accuracy_Categorical())
    model.finalize()
    history = model.train(X, y, epochs=epochs, verbose=False)
    for epoch in sorted({1, epochs // 2, epochs}):
        print(f"nnfs_fast epoch {epoch}: loss {history['loss'][epoch - 1]:.6f}, "
              f"acc {history['acc'][epoch - 1]:.3f}")
    return model


def worker(rank, world_size, folder, X, y, epochs):
    """Step 2, in each process: DDP training continued from the exported files."""
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank,
                            world_size=world_size)
    try:
        module = export.load_torch(os.path.join(folder, "spiral.pt"))
        net = module[:-1].train()        # logits: CrossEntropyLoss applies the softmax
        optimizer, scheduler = export.to_torch_optimizer(
            Model.load(os.path.join(folder, "spiral.model")), net)
        ddp = DistributedDataParallel(net)
        inputs = torch.from_numpy(X[rank::world_size])
        targets = torch.from_numpy(y[rank::world_size].astype(np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()

        def full_loss(local):  # the mean over all samples (the shards are equal in size)
            total = local.detach().clone()
            dist.all_reduce(total)
            return total.item() / world_size

        for epoch in range(1, epochs + 1):
            optimizer.zero_grad()
            loss = loss_fn(ddp(inputs), targets)
            loss.backward()              # DDP averages the gradients over the processes
            optimizer.step()
            scheduler.step()
            loss = full_loss(loss)
            if rank == 0 and epoch in sorted({1, epochs // 2, epochs}):
                print(f"torch DDP epoch {epoch}: loss {loss:.6f} (before its step)",
                      flush=True)
        with torch.no_grad():
            loss = full_loss(loss_fn(ddp(inputs), targets))
        if rank == 0:
            from safetensors.torch import save_file
            save_file(net.state_dict(), os.path.join(folder, "continued.safetensors"))
            print(f"torch DDP after {epochs} epochs on {world_size} processes: "
                  f"loss {loss:.6f}", flush=True)
        del ddp
        dist.barrier()                   # no process tears down while another still works
    finally:
        dist.destroy_process_group()


def main():
    args = parse_args()
    epochs = args.epochs or (200 if args.quick else 1000)
    torch_epochs = args.torch_epochs or (100 if args.quick else 1000)
    init(0)
    X, y = spiral_data(100 if args.quick else 1000, 3)
    X_test, y_test = spiral_data(100, 3)
    if len(X) % args.world_size:
        raise SystemExit(f"--world-size {args.world_size} must divide the {len(X)} samples")

    model = train_nnfs(X, y, epochs)
    result = model.evaluate(X, y, verbose=False)
    print(f"nnfs_fast after {epochs} epochs: loss {result['loss']:.6f}")

    import torch.multiprocessing
    with tempfile.TemporaryDirectory() as folder:
        model.save(os.path.join(folder, "spiral.model"))          # with Adam's state
        export.save_torch(model, os.path.join(folder, "spiral.pt"))
        torch.multiprocessing.spawn(worker, nprocs=args.world_size, join=True,
                                    args=(args.world_size, folder, X, y, torch_epochs))
        model.load_parameters(os.path.join(folder, "continued.safetensors"))
        result = model.evaluate(X, y, verbose=False)
        print(f"back in nnfs_fast: loss {result['loss']:.6f}, acc {result['acc']:.3f}")

        import onnxruntime
        path = os.path.join(folder, "spiral.onnx")
        model.to_onnx(path)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        served = session.run(None, {"input": X_test})[0]
    expected = model.predict(X_test)
    accuracy = np.mean(np.argmax(served, axis=1) == y_test)
    print(f"ONNX Runtime: test accuracy {accuracy:.3f}, max |onnx - Model.predict| "
          f"{np.abs(served - expected).max():.2e}")


if __name__ == "__main__":
    main()
