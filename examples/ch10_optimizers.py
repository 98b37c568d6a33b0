"""Chapters 10-11: the four optimizers compared on the spiral data set.

Each run is the book's chapter-10 script: ``spiral_data(samples=100, classes=3)``, Dense(2, 64)
-> ReLU -> Dense(64, 3) -> softmax with categorical cross-entropy, 10,001 full-batch epochs,
printing ``epoch: ..., acc: ..., loss: ..., lr: ...`` every 100 epochs, then (chapter 11) the
``validation, acc: ..., loss: ...`` line on a fresh ``spiral_data(samples=100, classes=3)``.
Every run starts from ``init()`` (seed 0), so all four see the same data and initial weights.
The optimizer settings are the book's final ones for each.

Run: python examples/ch10_optimizers.py [--epochs N] [--print-every N] [--plot losses.png]
"""
import numpy as np

from _common import Timer, parse_args, pyplot, save
from nnfs_fast import (
    Activation_ReLU,
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Layer_Dense,
    Optimizer_Adagrad,
    Optimizer_Adam,
    Optimizer_RMSprop,
    Optimizer_SGD,
)
from nnfs_fast.datasets import init, spiral_data

OPTIMIZERS = {
    "SGD": lambda: Optimizer_SGD(decay=1e-3, momentum=0.9),
    "Adagrad": lambda: Optimizer_Adagrad(decay=1e-4),
    "RMSprop": lambda: Optimizer_RMSprop(learning_rate=0.02, decay=1e-5, rho=0.999),
    "Adam": lambda: Optimizer_Adam(learning_rate=0.05, decay=5e-7),
}


def accuracy_of(output, y):
    predictions = np.argmax(output, axis=1)
    if len(y.shape) == 2:
        y = np.argmax(y, axis=1)
    return np.mean(predictions == y)


def run(optimizer, epochs, print_every):
    """The chapter-10 training loop, then chapter 11's validation; returns the losses per
    epoch and the final (accuracy, loss, validation accuracy, validation loss)."""
    init()
    X, y = spiral_data(samples=100, classes=3)
    dense1 = Layer_Dense(2, 64)
    activation1 = Activation_ReLU()
    dense2 = Layer_Dense(64, 3)
    loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
    losses = []
    for epoch in range(epochs):
        dense1.forward(X)
        activation1.forward(dense1.output)
        dense2.forward(activation1.output)
        loss = loss_activation.forward(dense2.output, y)
        accuracy = accuracy_of(loss_activation.output, y)
        losses.append(float(loss))
        if not epoch % print_every:
            print(f'epoch: {epoch}, ' +
                  f'acc: {accuracy:.3f}, ' +
                  f'loss: {loss:.3f}, ' +
                  f'lr: {optimizer.current_learning_rate}')
        loss_activation.backward(loss_activation.output, y)
        dense2.backward(loss_activation.dinputs)
        activation1.backward(dense2.dinputs)
        dense1.backward(activation1.dinputs)
        optimizer.pre_update_params()
        optimizer.update_params(dense1)
        optimizer.update_params(dense2)
        optimizer.post_update_params()

    # Validate the model (chapter 11)
    X_test, y_test = spiral_data(samples=100, classes=3)
    dense1.forward(X_test)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    val_loss = loss_activation.forward(dense2.output, y_test)
    val_accuracy = accuracy_of(loss_activation.output, y_test)
    print(f'validation, acc: {val_accuracy:.3f}, loss: {val_loss:.3f}')
    return losses, (accuracy, loss, val_accuracy, val_loss)


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--epochs", type=int, default=10001, help="epochs per optimizer"),
        p.add_argument("--print-every", type=int, default=100)))
    epochs = 201 if args.quick else args.epochs
    curves, rows = {}, []
    for name, make in OPTIMIZERS.items():
        optimizer = make()
        print(f"\n--- {optimizer!r}")
        with Timer() as timer:
            curves[name], final = run(optimizer, epochs, args.print_every)
        rows.append((name, *final, timer.seconds))

    print(f"\nafter {epochs - 1} updates (validation: a fresh spiral_data(100, 3)):")
    print(f"{'optimizer':<9} {'acc':>6} {'loss':>7} {'val_acc':>8} {'val_loss':>9} {'time':>8}")
    for name, acc, loss, val_acc, val_loss, seconds in rows:
        print(f"{name:<9} {acc:6.3f} {loss:7.3f} {val_acc:8.3f} {val_loss:9.3f} {seconds:7.2f}s")

    if args.plot and (plt := pyplot()) is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, losses in curves.items():
            ax.plot(losses, label=name)
        ax.set(xlabel="epoch", ylabel="training loss", yscale="log",
               title="Optimizers on spiral_data(100, 3), Dense(2,64)-ReLU-Dense(64,3)")
        ax.legend()
        ax.grid(alpha=0.3)
        save(fig, args.plot)


if __name__ == "__main__":
    main()
