"""Datasets: the book's toy sets (``toy``: spiral, vertical, sine, bit-identical to
``nnfs.datasets`` after ``nnfs.init()``), MNIST / Fashion-MNIST files (``mnist``) and
scikit-learn's bundled digits (``digits``)."""
from nnfs_fast.datasets.digits import load_digits
from nnfs_fast.datasets.mnist import create_data_mnist, load_mnist, load_mnist_dataset
from nnfs_fast.datasets.toy import init, sine_data, spiral_data, vertical_data

__all__ = ["init", "spiral_data", "vertical_data", "sine_data", "load_mnist",
           "load_mnist_dataset", "create_data_mnist", "load_digits"]
