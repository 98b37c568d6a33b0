"""nnfs_fast.testing.book (the book's own chapter 9-10 classes, the benchmarks' "book"
contender) computes what nnfs_fast computes: a few chapter 10 training steps on the spiral data
agree to float32 round-off, so the benchmark compares the same work."""
import numpy as np

from nnfs_fast import (
    Activation_ReLU,
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Layer_Dense,
    Optimizer_Adam,
)
from nnfs_fast.datasets import spiral_data
from nnfs_fast.testing import book


def test_book_classes_train_like_nnfs_fast():
    np.random.seed(0)
    X, y = spiral_data(samples=50, classes=3)
    ours = [Layer_Dense(2, 16), Layer_Dense(16, 3)]
    theirs = [book.Dense(d.weights.copy(), d.biases.copy()) for d in ours]
    relu, book_relu = Activation_ReLU(), book.ReLU()
    loss_act, book_loss = Activation_Softmax_Loss_CategoricalCrossentropy(), book.SoftmaxLoss()
    opt, book_opt = Optimizer_Adam(learning_rate=0.05, decay=5e-7), \
        book.Adam(learning_rate=0.05, decay=5e-7)
    for _ in range(5):
        ours[0].forward(X)
        relu.forward(ours[0].output)
        ours[1].forward(relu.output)
        loss = loss_act.forward(ours[1].output, y)
        theirs[0].forward(X)
        book_relu.forward(theirs[0].output)
        theirs[1].forward(book_relu.output)
        book_value = book_loss.forward(theirs[1].output, y)
        np.testing.assert_allclose(loss, book_value, rtol=1e-5)
        loss_act.backward(loss_act.output, y)
        ours[1].backward(loss_act.dinputs)
        relu.backward(ours[1].dinputs)
        ours[0].backward(relu.dinputs)
        book_loss.backward(book_loss.output, y)
        theirs[1].backward(book_loss.dinputs)
        book_relu.backward(theirs[1].dinputs)
        theirs[0].backward(book_relu.dinputs)
        for o, b in ((opt, book_opt),):
            o.pre_update_params(), b.pre_update_params()
            for layer, book_layer in zip(ours, theirs):
                o.update_params(layer)
                b.update_params(book_layer)
            o.post_update_params(), b.post_update_params()
    for layer, book_layer in zip(ours, theirs):
        np.testing.assert_allclose(layer.weights, book_layer.weights, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(layer.biases, book_layer.biases, rtol=1e-4, atol=1e-6)
