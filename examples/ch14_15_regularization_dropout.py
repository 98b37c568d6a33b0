"""Chapters 14-15: L2 regularization, then dropout, on the spiral data set.

Chapter 14: ``spiral_data(samples=100, classes=3)``, Dense(2, 64, weight_regularizer_l2=5e-4,
bias_regularizer_l2=5e-4) -> ReLU -> Dense(64, 3) -> softmax + cross-entropy,
``Optimizer_Adam(learning_rate=0.02, decay=5e-7)``.
Chapter 15: ``spiral_data(samples=1000, classes=3)``, the same layers with
``Layer_Dropout(0.1)`` after the ReLU, ``Optimizer_Adam(learning_rate=0.05, decay=5e-5)``.
Both train 10,001 full-batch epochs printing the book's line every 100 epochs
(``epoch: ..., acc: ..., loss: ... (data_loss: ..., reg_loss: ...), lr: ...``) and validate on a
fresh ``spiral_data(samples=100, classes=3)`` (without dropout). The dropout masks come from
NumPy's global RNG with the book's call, so the run consumes random numbers like the book's.

Run: python examples/ch14_15_regularization_dropout.py [--chapter 14|15] [--epochs N]
"""
import numpy as np

from _common import Timer, parse_args
from nnfs_fast import (
    Activation_ReLU,
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Layer_Dense,
    Layer_Dropout,
    Optimizer_Adam,
)
from nnfs_fast.datasets import init, spiral_data

CHAPTERS = {  # samples, dropout rate, optimizer
    14: (100, None, lambda: Optimizer_Adam(learning_rate=0.02, decay=5e-7)),
    15: (1000, 0.1, lambda: Optimizer_Adam(learning_rate=0.05, decay=5e-5)),
}


def accuracy_of(output, y):
    return np.mean(np.argmax(output, axis=1) == y)


def run(chapter, epochs, print_every):
    samples, rate, make_optimizer = CHAPTERS[chapter]
    init()
    X, y = spiral_data(samples=samples, classes=3)
    dense1 = Layer_Dense(2, 64, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)
    activation1 = Activation_ReLU()
    dropout1 = Layer_Dropout(rate) if rate else None
    dense2 = Layer_Dense(64, 3)
    loss_activation = Activation_Softmax_Loss_CategoricalCrossentropy()
    optimizer = make_optimizer()
    print(f"\n--- chapter {chapter}: spiral_data({samples}, 3), {dense1!r}, ReLU, "
          + (f"{dropout1!r}, " if dropout1 else "") + f"{dense2!r}, {optimizer!r}")

    for epoch in range(epochs):
        dense1.forward(X)
        activation1.forward(dense1.output)
        if dropout1:
            dropout1.forward(activation1.output)
            dense2.forward(dropout1.output)
        else:
            dense2.forward(activation1.output)
        data_loss = loss_activation.forward(dense2.output, y)
        regularization_loss = \
            loss_activation.loss.regularization_loss(dense1) + \
            loss_activation.loss.regularization_loss(dense2)
        loss = data_loss + regularization_loss
        accuracy = accuracy_of(loss_activation.output, y)
        if not epoch % print_every:
            print(f'epoch: {epoch}, ' +
                  f'acc: {accuracy:.3f}, ' +
                  f'loss: {loss:.3f} (' +
                  f'data_loss: {data_loss:.3f}, ' +
                  f'reg_loss: {regularization_loss:.3f}), ' +
                  f'lr: {optimizer.current_learning_rate}')
        loss_activation.backward(loss_activation.output, y)
        dense2.backward(loss_activation.dinputs)
        if dropout1:
            dropout1.backward(dense2.dinputs)
            activation1.backward(dropout1.dinputs)
        else:
            activation1.backward(dense2.dinputs)
        dense1.backward(activation1.dinputs)
        optimizer.pre_update_params()
        optimizer.update_params(dense1)
        optimizer.update_params(dense2)
        optimizer.post_update_params()

    # Validate the model (no dropout)
    X_test, y_test = spiral_data(samples=100, classes=3)
    dense1.forward(X_test)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    val_loss = loss_activation.forward(dense2.output, y_test)
    val_accuracy = accuracy_of(loss_activation.output, y_test)
    print(f'validation, acc: {val_accuracy:.3f}, loss: {val_loss:.3f}')
    return accuracy, val_accuracy


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--chapter", type=int, choices=sorted(CHAPTERS), action="append",
                       help="run only this chapter (repeatable; default: both)"),
        p.add_argument("--epochs", type=int, default=10001),
        p.add_argument("--print-every", type=int, default=100)))
    epochs = 201 if args.quick else args.epochs
    for chapter in args.chapter or sorted(CHAPTERS):
        with Timer() as timer:
            accuracy, val_accuracy = run(chapter, epochs, args.print_every)
        print(f"chapter {chapter}: {epochs} epochs in {timer.seconds:.2f} s, "
              f"training acc {accuracy:.3f}, validation acc {val_accuracy:.3f}")


if __name__ == "__main__":
    main()
