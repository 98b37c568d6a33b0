"""Chapter 3: one dense layer on the spiral data set.

The book's script with ``nnfs_fast`` in place of the classes it defines and of ``nnfs``: the
same data, the same initial weights (NumPy's global RNG, seeded like ``nnfs.init()``), and the
same five rows the book prints:

    [[ 0.0000000e+00  0.0000000e+00  0.0000000e+00]
     [-1.0475188e-04  1.1395361e-04 -4.7983500e-05]
     [-2.7414842e-04  3.1729150e-04 -8.6921798e-05]
     [-4.2188365e-04  5.2666257e-04 -5.5912682e-05]
     [-5.7707680e-04  7.1401405e-04 -8.9430439e-05]]

(The book computes the product in float64 and rounds once; nnfs_fast sums in float32, so a
last digit may differ by one unit in the last place.)

Run: python examples/ch03_layer.py
"""
from nnfs_fast import Layer_Dense
from nnfs_fast.datasets import init, spiral_data

init()  # np.random.seed(0), like nnfs.init() (which also patches NumPy; this does not)

# Create dataset
X, y = spiral_data(samples=100, classes=3)

# Create Dense layer with 2 input features and 3 output values
dense1 = Layer_Dense(2, 3)

# Perform a forward pass of our training data through this layer
dense1.forward(X)

# Let's see output of the first few samples:
print(dense1.output[:5])
