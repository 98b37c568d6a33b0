"""Chapters 18-22: the Model API on real images: train, evaluate, save, load, predict.

With ``--data FOLDER`` it is the book's Fashion-MNIST script (chapter 19 training, chapters
20-22 evaluation, saving, loading and inference). FOLDER holds either the book's
``fashion_mnist_images`` layout (``train/<label>/*.png``, ``test/<label>/*.png``; needs Pillow)
or the IDX files of Fashion-MNIST or MNIST (``train-images-idx3-ubyte[.gz]``, ...). Nothing is
downloaded. The model is the book's: Dense(784, 128) -> ReLU -> Dense(128, 128) -> ReLU ->
Dense(128, 10) -> softmax, ``Optimizer_Adam(decay=1e-3)``, 10 epochs of batches of 128, the
training set shuffled once with the book's ``np.random.shuffle`` of an index array.

Without ``--data`` it runs the same steps on scikit-learn's bundled handwritten digits
(1,797 8x8 images; ``pip install "nnfs_fast[digits]"``) with Dense(64, 128) -> ReLU ->
Dense(128, 10) -> softmax and ``Optimizer_Adam(learning_rate=0.005, decay=1e-3)``.

Both print the book's training lines, save the parameters and the whole model, load them back,
evaluate again (same numbers), show a few predictions with their label names, print the
validation confusion matrix, and with ``--plot FILE`` save loss/accuracy curves and the
confusion matrix. ``--image FILE`` classifies one picture as chapter 22 does (grayscale, resized
to 28x28, inverted; needs Pillow; with ``--data`` only).

Run: python examples/ch18_22_model.py [--data fashion_mnist_images] [--epochs N] [--plot out.png]
"""
import os
import tempfile

import numpy as np

from _common import (
    Timer,
    architecture,
    confusion_matrix,
    parse_args,
    plot_training,
    print_confusion,
)
from nnfs_fast import (
    Accuracy_Categorical,
    Activation_ReLU,
    Activation_Softmax,
    Layer_Dense,
    Loss_CategoricalCrossentropy,
    Model,
    Optimizer_Adam,
)
from nnfs_fast.datasets import init, load_digits, load_mnist

# Label index to label name relation (chapter 22)
fashion_mnist_labels = {
    0: 'T-shirt/top', 1: 'Trouser', 2: 'Pullover', 3: 'Dress', 4: 'Coat',
    5: 'Sandal', 6: 'Shirt', 7: 'Sneaker', 8: 'Bag', 9: 'Ankle boot',
}
digit_labels = {i: str(i) for i in range(10)}


def fashion_mnist(path, quick):
    """Chapter 19's data: the training set shuffled with the global RNG, scaled to [-1, 1]."""
    # load_mnist = the book's create_data_mnist plus its reshape and (x - 127.5) / 127.5
    X, y, X_test, y_test = load_mnist(path)
    keys = np.array(range(X.shape[0]))
    np.random.shuffle(keys)
    X, y = X[keys], y[keys]
    if quick:
        X, y, X_test, y_test = X[:2000], y[:2000], X_test[:500], y_test[:500]
    model = Model()
    model.add(Layer_Dense(X.shape[1], 128))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(128, 128))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(128, 10))
    model.add(Activation_Softmax())
    return (X, y, X_test, y_test), model, Optimizer_Adam(decay=1e-3), 128


def digits():
    X, y, X_test, y_test = load_digits()
    model = Model()
    model.add(Layer_Dense(64, 128))
    model.add(Activation_ReLU())
    model.add(Layer_Dense(128, 10))
    model.add(Activation_Softmax())
    return (X, y, X_test, y_test), model, Optimizer_Adam(learning_rate=0.005, decay=1e-3), 32


def read_image(filename):
    """Chapter 22's preprocessing of a photo: grayscale, 28x28, inverted, scaled to [-1, 1]."""
    from PIL import Image
    with Image.open(filename) as image:
        image = np.asarray(image.convert("L").resize((28, 28)), dtype=np.uint8)
    image = 255 - image
    return (image.reshape(1, -1).astype(np.float32) - 127.5) / 127.5


def main():
    args = parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--data", metavar="FOLDER",
                       help="Fashion-MNIST/MNIST folder (PNG folders or IDX files)"),
        p.add_argument("--epochs", type=int, help="default: 10 (--data) or 30 (digits)"),
        p.add_argument("--save-dir", metavar="DIR",
                       help="where to write the model files (default: a temporary folder)"),
        p.add_argument("--labels", choices=["fashion", "digits"],
                       help="label names (default: fashion when the --data folder's name "
                            "contains 'fashion', else digits)"),
        p.add_argument("--image", metavar="FILE", help="classify this picture (chapter 22)")))
    init()  # seeds the global RNG: the shuffle and the initial weights are the book's
    if args.data:
        data, model, optimizer, batch_size = fashion_mnist(args.data, args.quick)
        epochs = args.epochs or (1 if args.quick else 10)
        name = "fashion_mnist"
        fashion = "fashion" in os.path.basename(os.path.abspath(args.data)).lower()
    else:
        data, model, optimizer, batch_size = digits()
        epochs = args.epochs or (3 if args.quick else 30)
        name, fashion = "digits", False
    labels = fashion_mnist_labels if (args.labels or ("fashion" if fashion else "")) \
        == "fashion" else digit_labels
    X, y, X_test, y_test = data
    print(f"training on {len(X)} samples of {X.shape[1]} features, validating on "
          f"{len(X_test)}")

    # Chapters 18-19: set loss, optimizer and accuracy; finalize; train
    model.set(loss=Loss_CategoricalCrossentropy(), optimizer=optimizer,
              accuracy=Accuracy_Categorical())
    model.finalize()
    print(model)
    with Timer() as timer:
        history = model.train(X, y, validation_data=(X_test, y_test), epochs=epochs,
                              batch_size=batch_size, print_every=100)
    print(f"trained {epochs} epochs in {timer.seconds:.2f} s")

    # Chapter 20: evaluate; chapter 21: save and load parameters and the whole model
    model.evaluate(X_test, y_test)
    save_dir = args.save_dir or tempfile.mkdtemp(prefix="nnfs_fast_example_")
    parameters_file = os.path.join(save_dir, f"{name}.parms")
    model_file = os.path.join(save_dir, f"{name}.model")
    model.save_parameters(parameters_file)
    model.save(model_file)
    print(f"saved {parameters_file} and {model_file}")

    model.load_parameters(parameters_file)
    model.evaluate(X_test, y_test)
    model = Model.load(model_file)
    model.evaluate(X_test, y_test)

    # Chapter 22: predict
    confidences = model.predict(X_test[:5])
    predictions = model.output_layer_activation.predictions(confidences)
    for prediction, truth in zip(predictions, y_test[:5]):
        print(f"predicted: {labels[prediction]:<12} true: {labels[truth]}")
    if args.image:
        image = read_image(args.image)
        prediction = model.output_layer_activation.predictions(model.predict(image))[0]
        print(f"{args.image}: {labels[prediction]}")

    predicted = model.output_layer_activation.predictions(model.predict(X_test))
    counts = confusion_matrix(y_test, predicted, 10)
    names = [labels[i] for i in range(10)] if labels is fashion_mnist_labels else None
    print_confusion(counts, names)
    print(f"validation accuracy {np.mean(predicted == y_test):.4f}")
    if args.plot:
        plot_training(args.plot, history, counts, names,
                      title=f"{name}: {architecture(model.layers)}, {epochs} epochs")


if __name__ == "__main__":
    main()
