"""Chapter 16: binary logistic regression (sigmoid output, binary cross-entropy).

The book's script: ``spiral_data(samples=100, classes=2)`` with ``y.reshape(-1, 1)``,
Dense(2, 64, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4) -> ReLU -> Dense(64, 1) ->
sigmoid, ``Loss_BinaryCrossentropy``, ``Optimizer_Adam(decay=5e-7)``, 10,001 full-batch epochs
printing the book's line every 100 epochs, then validation on a fresh
``spiral_data(samples=100, classes=2)``.

Run: python examples/ch16_binary.py [--epochs N] [--print-every N]
"""
import numpy as np

from _common import Timer, parse_args
from nnfs_fast import (
    Activation_ReLU,
    Activation_Sigmoid,
    Layer_Dense,
    Loss_BinaryCrossentropy,
    Optimizer_Adam,
)
from nnfs_fast.datasets import init, spiral_data


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--epochs", type=int, default=10001),
        p.add_argument("--print-every", type=int, default=100)))
    epochs = 201 if args.quick else args.epochs

    init()
    # Create dataset; reshape labels to be a list of lists: one output neuron, 0 or 1
    X, y = spiral_data(samples=100, classes=2)
    y = y.reshape(-1, 1)

    dense1 = Layer_Dense(2, 64, weight_regularizer_l2=5e-4, bias_regularizer_l2=5e-4)
    activation1 = Activation_ReLU()
    dense2 = Layer_Dense(64, 1)
    activation2 = Activation_Sigmoid()
    loss_function = Loss_BinaryCrossentropy()
    optimizer = Optimizer_Adam(decay=5e-7)

    with Timer() as timer:
        for epoch in range(epochs):
            dense1.forward(X)
            activation1.forward(dense1.output)
            dense2.forward(activation1.output)
            activation2.forward(dense2.output)
            data_loss = loss_function.calculate(activation2.output, y)
            regularization_loss = \
                loss_function.regularization_loss(dense1) + \
                loss_function.regularization_loss(dense2)
            loss = data_loss + regularization_loss
            # 1 where the sigmoid output is above 0.5, else 0
            predictions = (activation2.output > 0.5) * 1
            accuracy = np.mean(predictions == y)
            if not epoch % args.print_every:
                print(f'epoch: {epoch}, ' +
                      f'acc: {accuracy:.3f}, ' +
                      f'loss: {loss:.3f} (' +
                      f'data_loss: {data_loss:.3f}, ' +
                      f'reg_loss: {regularization_loss:.3f}), ' +
                      f'lr: {optimizer.current_learning_rate}')
            loss_function.backward(activation2.output, y)
            activation2.backward(loss_function.dinputs)
            dense2.backward(activation2.dinputs)
            activation1.backward(dense2.dinputs)
            dense1.backward(activation1.dinputs)
            optimizer.pre_update_params()
            optimizer.update_params(dense1)
            optimizer.update_params(dense2)
            optimizer.post_update_params()

    # Validate the model
    X_test, y_test = spiral_data(samples=100, classes=2)
    y_test = y_test.reshape(-1, 1)
    dense1.forward(X_test)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    activation2.forward(dense2.output)
    loss = loss_function.calculate(activation2.output, y_test)
    predictions = (activation2.output > 0.5) * 1
    accuracy = np.mean(predictions == y_test)
    print(f'validation, acc: {accuracy:.3f}, loss: {loss:.3f}')
    print(f"{epochs} epochs in {timer.seconds:.2f} s")


if __name__ == "__main__":
    main()
