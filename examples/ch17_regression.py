"""Chapter 17: regression of a sine wave (linear output, mean squared error).

The book's script: ``X, y = sine_data()`` (1,000 points of one period), Dense(1, 64) -> ReLU ->
Dense(64, 64) -> ReLU -> Dense(64, 1) -> linear, ``Loss_MeanSquaredError``,
``Optimizer_Adam(learning_rate=0.005, decay=1e-3)``, 10,001 full-batch epochs printing
``epoch: ..., acc: ..., loss: ... (data_loss: ..., reg_loss: ...), lr: ...`` every 100 epochs,
where accuracy is the fraction of predictions within std(y) / 250 of the target. Chapter 17
starts its weights at ``0.1 * randn`` (the other chapters at ``0.01 * randn``), drawn here from
the global RNG exactly as the book draws them.

``--plot FILE`` saves the predictions on ``sine_data()`` next to the sine (the book shows the
same figure with ``plt.show()``).

Run: python examples/ch17_regression.py [--epochs N] [--plot sine.png]
"""
import numpy as np

from _common import Timer, parse_args, pyplot, save
from nnfs_fast import (
    Activation_Linear,
    Activation_ReLU,
    Layer_Dense,
    Loss_MeanSquaredError,
    Optimizer_Adam,
)
from nnfs_fast.datasets import init, sine_data


def layer_dense_ch17(n_inputs, n_neurons):
    """A Layer_Dense whose weights are chapter 17's ``0.1 * np.random.randn(n_inputs,
    n_neurons)`` (float32, as under ``nnfs.init()``): the draw is repeated from the same RNG
    state with the larger scale, so the RNG moves on exactly as in the book."""
    state = np.random.get_state()
    layer = Layer_Dense(n_inputs, n_neurons)
    np.random.set_state(state)
    layer.weights = np.float32(0.1) * np.random.randn(n_inputs, n_neurons).astype(np.float32)
    return layer


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--epochs", type=int, default=10001),
        p.add_argument("--print-every", type=int, default=100)))
    epochs = 201 if args.quick else args.epochs

    init()
    X, y = sine_data()
    dense1 = layer_dense_ch17(1, 64)
    activation1 = Activation_ReLU()
    dense2 = layer_dense_ch17(64, 64)
    activation2 = Activation_ReLU()
    dense3 = layer_dense_ch17(64, 1)
    activation3 = Activation_Linear()
    loss_function = Loss_MeanSquaredError()
    optimizer = Optimizer_Adam(learning_rate=0.005, decay=1e-3)
    # Accuracy precision: predictions within std(y) / 250 of the target count as right
    accuracy_precision = np.std(y) / 250

    with Timer() as timer:
        for epoch in range(epochs):
            dense1.forward(X)
            activation1.forward(dense1.output)
            dense2.forward(activation1.output)
            activation2.forward(dense2.output)
            dense3.forward(activation2.output)
            activation3.forward(dense3.output)
            data_loss = loss_function.calculate(activation3.output, y)
            regularization_loss = \
                loss_function.regularization_loss(dense1) + \
                loss_function.regularization_loss(dense2) + \
                loss_function.regularization_loss(dense3)
            loss = data_loss + regularization_loss
            predictions = activation3.output
            accuracy = np.mean(np.absolute(predictions - y) < accuracy_precision)
            if not epoch % args.print_every:
                print(f'epoch: {epoch}, ' +
                      f'acc: {accuracy:.3f}, ' +
                      f'loss: {loss:.3f} (' +
                      f'data_loss: {data_loss:.3f}, ' +
                      f'reg_loss: {regularization_loss:.3f}), ' +
                      f'lr: {optimizer.current_learning_rate}')
            loss_function.backward(activation3.output, y)
            activation3.backward(loss_function.dinputs)
            dense3.backward(activation3.dinputs)
            activation2.backward(dense3.dinputs)
            dense2.backward(activation2.dinputs)
            activation1.backward(dense2.dinputs)
            dense1.backward(activation1.dinputs)
            optimizer.pre_update_params()
            optimizer.update_params(dense1)
            optimizer.update_params(dense2)
            optimizer.update_params(dense3)
            optimizer.post_update_params()
    print(f"{epochs} epochs in {timer.seconds:.2f} s")

    X_test, y_test = sine_data()
    dense1.forward(X_test)
    activation1.forward(dense1.output)
    dense2.forward(activation1.output)
    activation2.forward(dense2.output)
    dense3.forward(activation2.output)
    activation3.forward(dense3.output)
    print(f"test: mean absolute error {np.mean(np.abs(activation3.output - y_test)):.4f}")

    if args.plot and (plt := pyplot()) is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.plot(X_test, y_test, label="sin(2 pi x)")
        ax.plot(X_test, activation3.output, label="network", linestyle="--")
        ax.set(xlabel="x", ylabel="y", title=f"Chapter 17 regression after {epochs} epochs")
        ax.legend()
        ax.grid(alpha=0.3)
        save(fig, args.plot)


if __name__ == "__main__":
    main()
