"""The seed article's ``DeepNeuralNetwork``, made correct and general, on nnfs_fast layers.

The article builds ``DeepNeuralNetwork(sizes=[784, 128, 64, 10], epochs=10, l_rate=0.001)``:
sigmoid hidden layers, a softmax output, per-sample SGD, and accuracy on a validation split.
Its code stores weights as (out, in) matrices without biases and reports accuracy divided by
100. This version keeps the article's names (``sizes``, ``epochs``, ``l_rate``,
``initialization``, ``forward_pass``, ``backward_pass``, ``update_network_parameters``,
``compute_accuracy``, ``train``) and its printed line, and fixes the rest:

* any ``sizes`` list ``[n_inputs, hidden..., n_classes]``, one ``Layer_Dense`` per pair, with
  weights (in, out) and biases as in the book;
* sigmoid (the article) or ReLU hidden layers; softmax output trained with categorical
  cross-entropy (the combined softmax/cross-entropy gradient ``(softmax - one_hot) / N``);
* per-sample SGD (``batch_size=1``, the article) or mini-batches; the samples are visited in
  a new random order every epoch (the network's own ``RandomState(seed)``);
* weights start at ``randn * sqrt(1 / n_inputs)`` (the book's 0.01 scale starves a deep
  sigmoid network of gradient);
* accuracy is the fraction of validation samples whose arg-max output is the label, printed
  as a percentage.

By default it trains on scikit-learn's bundled digits (8x8 images, ``sizes=[64, 128, 64,
10]``; ``pip install "nnfs_fast[digits]"``); ``--mnist FOLDER`` trains the article's
[784, 128, 64, 10] network on MNIST IDX files (or PNG folders) in FOLDER, scaled to [0, 1] as
the article does, validating on the test split.

Run: python examples/article_mnist.py [--sizes 64,128,64,10] [--activation relu]
     [--batch-size 32] [--epochs N] [--l-rate X] [--mnist FOLDER] [--plot out.png]
"""
import time

import numpy as np

from _common import confusion_matrix, parse_args, plot_training, print_confusion
from nnfs_fast import (
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Layer_Dense,
    Optimizer_SGD,
)
from nnfs_fast.datasets import load_digits, load_mnist

ACTIVATIONS = {"sigmoid": Activation_Sigmoid, "relu": Activation_ReLU}


class DeepNeuralNetwork:
    """A fully connected classifier: ``sizes[0]`` inputs, hidden layers of ``sizes[1:-1]``
    units, ``sizes[-1]`` classes.

    Args:
        sizes: layer widths, at least [n_inputs, n_classes].
        epochs: passes over the training data in ``train``.
        l_rate: SGD learning rate.
        batch_size: samples per update (1: per-sample SGD, as in the article).
        activation: "sigmoid" (the article) or "relu" for the hidden layers.
        seed: seed of the network's own RNG (initial weights and visiting order); the
            global NumPy RNG is left alone.
    """

    def __init__(self, sizes, epochs=10, l_rate=0.001, *, batch_size=1,
                 activation="sigmoid", seed=0):
        if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
            raise ValueError(f"sizes: expected at least two positive layer widths "
                             f"[n_inputs, ..., n_classes], got {sizes!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation: expected one of {sorted(ACTIVATIONS)}, "
                             f"got {activation!r}")
        self.sizes = [int(n) for n in sizes]
        self.epochs = epochs
        self.l_rate = l_rate
        self.batch_size = batch_size
        self.activation = activation
        self.rng = np.random.RandomState(seed)
        self.params = self.initialization()
        self.output_layer = Activation_Softmax_Loss_CategoricalCrossentropy()
        self.optimizer = Optimizer_SGD(learning_rate=l_rate)

    def __repr__(self):
        return (f"DeepNeuralNetwork(sizes={self.sizes}, epochs={self.epochs}, "
                f"l_rate={self.l_rate}, batch_size={self.batch_size}, "
                f"activation={self.activation!r})")

    def initialization(self):
        """One Layer_Dense per consecutive pair of sizes, weights ~ N(0, 1 / n_inputs), zero
        biases; an activation after each hidden one. Returns the list of layers."""
        layers = []
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            dense = Layer_Dense(n_in, n_out)
            dense.set_parameters(
                (self.rng.standard_normal((n_in, n_out)) * np.sqrt(1. / n_in))
                .astype(np.float32), dense.biases)
            layers.append(dense)
            if i < len(self.sizes) - 2:
                layers.append(ACTIVATIONS[self.activation]())
        return layers

    def forward_pass(self, x):
        """x: (N, sizes[0]) -> the last layer's logits (N, sizes[-1]); the softmax is
        applied with the loss (``backward_pass``) or in ``predict``."""
        for layer in self.params:
            layer.forward(x)
            x = layer.output
        return x

    def backward_pass(self, y, logits):
        """Cross-entropy loss of the softmax of ``logits`` against labels ``y`` (class
        indices or one-hot rows); fills every layer's gradients and returns the loss."""
        loss = self.output_layer.forward(logits, y)
        self.output_layer.backward(self.output_layer.output, y)
        dvalues = self.output_layer.dinputs
        for layer in reversed(self.params):
            layer.backward(dvalues)
            dvalues = layer.dinputs
        return loss

    def update_network_parameters(self):
        """One SGD step: W -= l_rate * dW, b -= l_rate * db for every dense layer."""
        self.optimizer.pre_update_params()
        for layer in self.params:
            if hasattr(layer, "weights"):
                self.optimizer.update_params(layer)
        self.optimizer.post_update_params()

    def predict(self, x):
        """Class indices (N,) for x (N, sizes[0])."""
        return np.argmax(self.forward_pass(x), axis=1)

    def compute_accuracy(self, x_val, y_val):
        """Fraction of x_val predicted as its label y_val (indices or one-hot rows)."""
        y_val = np.asarray(y_val)
        if y_val.ndim == 2:
            y_val = np.argmax(y_val, axis=1)
        return float(np.mean(self.predict(x_val) == y_val))

    def train(self, x_train, y_train, x_val, y_val, verbose=True):
        """``epochs`` passes of SGD in random order; prints the article's line after each.
        Returns the history: per-epoch ``loss`` (mean training loss), ``acc`` (training
        accuracy), ``val_acc`` and ``seconds``."""
        start_time = time.time()
        history = {"loss": [], "acc": [], "val_acc": [], "seconds": []}
        n = len(x_train)
        for iteration in range(self.epochs):
            order = self.rng.permutation(n)
            losses = 0.0
            for start in range(0, n, self.batch_size):
                batch = order[start:start + self.batch_size]
                x, y = x_train[batch], y_train[batch]
                losses += self.backward_pass(y, self.forward_pass(x)) * len(batch)
                self.update_network_parameters()
            accuracy = self.compute_accuracy(x_val, y_val)
            history["loss"].append(losses / n)
            history["acc"].append(self.compute_accuracy(x_train, y_train))
            history["val_acc"].append(accuracy)
            history["seconds"].append(time.time() - start_time)
            if verbose:
                print(f'Epoch: {iteration + 1}, Time Spent: {time.time() - start_time:.2f}s, '
                      f'Accuracy: {accuracy * 100:.2f}%')
        return history


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--sizes", help="layer widths, e.g. 64,128,64,10 (default: "
                                       "[64, 128, 64, 10] on digits, [784, 128, 64, 10] on MNIST)"),
        p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="sigmoid"),
        p.add_argument("--batch-size", type=int, default=1,
                       help="1: per-sample SGD as in the article (default)"),
        p.add_argument("--epochs", type=int, help="default: 30 on digits, 10 on MNIST"),
        p.add_argument("--l-rate", type=float,
                       help="default: 0.05 on digits, 0.01 on MNIST (per-sample SGD)"),
        p.add_argument("--seed", type=int, default=0),
        p.add_argument("--mnist", metavar="FOLDER",
                       help="MNIST IDX files or PNG folders (default: scikit-learn's digits)")))
    if args.mnist:
        x_train, y_train, x_val, y_val = load_mnist(args.mnist, scale="unit")
        sizes, epochs, l_rate = [784, 128, 64, 10], 10, 0.01
    else:
        x_train, y_train, x_val, y_val = load_digits(scale="unit", test_size=0.15,
                                                     seed=args.seed)
        sizes, epochs, l_rate = [64, 128, 64, 10], 30, 0.05
    if args.quick:
        x_train, y_train, epochs = x_train[:400], y_train[:400], 2
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    dnn = DeepNeuralNetwork(sizes=sizes, epochs=args.epochs or epochs,
                            l_rate=args.l_rate or l_rate, batch_size=args.batch_size,
                            activation=args.activation, seed=args.seed)
    print(dnn)
    print(f"training on {len(x_train)} samples, validating on {len(x_val)}")
    history = dnn.train(x_train, y_train, x_val, y_val)
    predicted = dnn.predict(x_val)
    counts = confusion_matrix(y_val, predicted, sizes[-1])
    print_confusion(counts)
    print(f"validation accuracy {np.mean(predicted == y_val):.4f} after {dnn.epochs} epochs "
          f"in {history['seconds'][-1]:.2f} s")
    if args.plot:
        plot_training(args.plot, history, counts,
                      title=f"{dnn!r}".replace("DeepNeuralNetwork", "DNN"))


if __name__ == "__main__":
    main()
