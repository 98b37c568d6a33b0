"""The book's ``Model`` (chapters 18-22): add layers, set loss/optimizer/accuracy, finalize,
train, evaluate, predict, save and load.

Pure Python orchestration over the layer objects; the heavy lifting happens in their kernels.
Two transparent fusions save memory passes (``Model(fuse=False)`` turns both off, with
identical numbers):

* a ``Layer_Dense`` immediately followed by an ``Activation_ReLU`` runs as one kernel call in
  each direction: forward computes ``max(0, inputs . weights + biases)`` without storing the
  pre-activation, backward masks the incoming gradient and computes the Dense gradients in the
  same pass. In such a pair ``dense.output``, ``relu.inputs`` and ``relu.output`` are one and
  the same array of post-ReLU values (the mask ``inputs <= 0`` is unchanged by this);
* with the softmax + categorical cross-entropy shortcut (chosen by the book's
  ``Model.finalize``), ``train`` and ``evaluate`` compute the softmax output and the
  per-sample losses in one kernel pass (``losses.softmax_crossentropy_forward``);
  ``forward``/``predict`` (no labels) run the softmax layer alone.

``backward`` does not compute the input gradient of a first ``Layer_Dense`` (its ``dinputs``
is None): nothing reads it, and it is a third of that layer's backward work (the book computes
and discards it).
"""
import math
import signal
import threading

try:    # CPython's C module under signal: no enum conversions (they cost ~25 us a train call)
    import _signal as _raw_signal
except ImportError:  # pragma: no cover - other Pythons
    _raw_signal = signal
import weakref

import numpy as np

from nnfs_fast import optimizers as _optimizers
from nnfs_fast import progress as progress_module
from nnfs_fast._validation import is_real
from nnfs_fast.accuracy import Accuracy_Categorical, Accuracy_Regression
from nnfs_fast.activations import (
    Activation_Linear,
    Activation_ReLU,
    Activation_Sigmoid,
    Activation_Softmax,
)
from nnfs_fast.io import archive as _persistence
from nnfs_fast.kernels import plan as _plan
from nnfs_fast.layers import Layer_Dense, Layer_Dropout, Layer_Input
from nnfs_fast.losses import (
    Activation_Softmax_Loss_CategoricalCrossentropy,
    Loss_BinaryCrossentropy,
    Loss_CategoricalCrossentropy,
    Loss_MeanAbsoluteError,
    Loss_MeanSquaredError,
    _MeanOverOutputsLoss,
    softmax_crossentropy_forward,
)


class Model:
    """A sequence of layers trained as in the book's chapters 18-22.

    Args:
        fuse: run each Dense -> ReLU pair as one fused kernel call (default True); read on every
            forward/backward, results are identical either way.
        compiled: train and evaluate through the compiled training plan (kernels/plan.pyx,
            one native call per batch) when every layer, the loss, the accuracy and the
            optimizer are the library's own (default True; ``plan_status()`` says whether it
            is used); results are bit-identical either way. Needs ``fuse``.
    Attributes (the book's): layers, input_layer, trainable_layers, output_layer_activation,
        softmax_classifier_output, loss, optimizer, accuracy; each layer gets ``prev``/``next``.
    """

    # Class-level defaults: ``model.loss`` is None until ``set`` assigns it (the book's
    # instances have no such attribute before ``set``; the instance __dict__ stays the same).
    loss = None
    optimizer = None
    accuracy = None
    fuse = True
    compiled = True
    stop_training = False   # set True (e.g. by a callback) to end Model.train after the step

    def __init__(self, *, fuse=True, compiled=True):
        self.layers = []
        self.softmax_classifier_output = None
        self.fuse = fuse
        self.compiled = compiled

    def __getstate__(self):
        """For copy.deepcopy and pickle (the book's Model.save deep-copies the model): the
        compiled plan holds native buffers and is left out; __setstate__ builds a new one."""
        state = self.__dict__.copy()
        state.pop("_plan", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "_plan_status" in state:         # finalized: a plan of the copy's own layers
            self._compile_plan()

    def __repr__(self):
        parts = [f"  {layer!r}," for layer in self.layers]
        parts += [f"  {name}={getattr(self, name)!r},"
                  for name in ("loss", "optimizer", "accuracy") if getattr(self, name) is not None]
        if not self.fuse:
            parts.append("  fuse=False,")
        if not self.compiled:
            parts.append("  compiled=False,")
        return "Model(\n" + "\n".join(parts) + "\n)" if parts else "Model()"

    # ------------------------------------------------------------------------------ building

    def add(self, layer):
        """Append a layer (Dense, Dropout, an activation, ...)."""
        if isinstance(layer, type) or not callable(getattr(layer, "forward", None)):
            raise TypeError(f"Model.add: layer must be a layer object with a forward method "
                            f"(e.g. Layer_Dense(2, 64)), got {_what(layer)}")
        self.layers.append(layer)

    def set(self, *, loss=None, optimizer=None, accuracy=None):
        """Assign the loss, optimizer and accuracy objects; arguments left None are unchanged."""
        for name, value in (("loss", loss), ("optimizer", optimizer), ("accuracy", accuracy)):
            if isinstance(value, type):
                raise TypeError(f"Model.set: {name} must be an instance, e.g. "
                                f"{value.__name__}(), got the class {value.__name__}")
        if loss is not None:
            self.loss = loss
        if optimizer is not None:
            self.optimizer = optimizer
        if accuracy is not None:
            self.accuracy = accuracy

    def finalize(self):
        """Link the layers (``prev``/``next``), find the trainable ones, and set up the
        softmax + cross-entropy shortcut and the Dense -> ReLU fusion."""
        if not self.layers:
            raise ValueError("Model.finalize: the model has no layers; call model.add(layer) "
                             "first")
        self._refuse_shared_layers()
        self.input_layer = Layer_Input()
        self.trainable_layers = []
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            layer.prev = self.layers[i - 1] if i > 0 else self.input_layer
            layer.next = self.layers[i + 1] if i < last else self.loss
            if hasattr(layer, "weights"):
                self.trainable_layers.append(layer)
        self.output_layer_activation = self.layers[-1]
        if self.loss is not None:
            self.loss.remember_trainable_layers(self.trainable_layers)
        if (isinstance(self.layers[-1], Activation_Softmax)
                and isinstance(self.loss, Loss_CategoricalCrossentropy)):
            self.softmax_classifier_output = Activation_Softmax_Loss_CategoricalCrossentropy()
        else:
            self.softmax_classifier_output = None
        self._fused_steps = _fusion_plan(self.layers)
        # exact classes: a subclass may override forward
        self._fused_softmax_loss = (type(self.layers[-1]) is Activation_Softmax
                                    and type(self.loss) is Loss_CategoricalCrossentropy)
        self._compile_plan()
        key = id(self)
        _FINALIZED[key] = weakref.ref(
            self, lambda ref: _FINALIZED.pop(key) if _FINALIZED.get(key) is ref else None)

    def _compile_plan(self):
        """The compiled plan of the model as it is now, and what it was compiled from."""
        self._plan, self._plan_status = _compile(self)
        self._plan_structure = _structure(self)

    def _refuse_shared_layers(self):
        """ValueError if a layer object appears twice in this model or belongs to another
        finalized Model that is still alive: finalize links each layer to its neighbours
        (prev/next) and a layer keeps its last inputs and outputs, so a shared layer would make
        one model compute from the other's activations."""
        position = {}
        for i, layer in enumerate(self.layers):
            j = position.setdefault(id(layer), i)
            if j != i:
                raise ValueError(
                    f"Model.finalize: model.layers[{j}] and model.layers[{i}] are the same "
                    f"{_what(layer)} object; a layer can appear once (add a new one, or a "
                    f"copy: copy.deepcopy(layer))")
        for ref in list(_FINALIZED.values()):
            other = ref()
            if other is None or other is self:
                continue
            for layer in getattr(other, "layers", ()):
                if id(layer) in position:
                    raise ValueError(
                        f"Model.finalize: model.layers[{position[id(layer)]}] ({layer!r}) "
                        f"already belongs to another finalized Model, which would then read "
                        f"this model's activations; add a copy instead: "
                        f"model.add(copy.deepcopy(layer)) (or delete the other model first)")

    def plan_status(self):
        """"compiled" when train and evaluate run the compiled training plan (one native
        call per batch), else "python: <why not>" (after finalize)."""
        self._require_ready("plan_status")
        return self._plan_status

    def summary(self, print_fn=print):
        """Print one row per layer (its repr, output shape, parameter count) and the total.

        Output shapes are (batch, features) with ``None`` for the batch; a width not known
        before the first Dense layer shows as ``?``. ``print_fn`` receives each line."""
        rows, width, total = [], None, 0
        for i, layer in enumerate(self.layers):
            weights = getattr(layer, "weights", None)
            count = 0
            if weights is not None:
                width = np.shape(weights)[1]
                count = int(np.size(weights) + np.size(getattr(layer, "biases", ())))
            total += count
            rows.append((str(i), repr(layer), f"(None, {'?' if width is None else width})",
                         f"{count:,}"))
        header = ("#", "layer", "output shape", "parameters")
        widths = [max(len(r[c]) for r in rows + [header]) for c in range(4)]

        def line(row):
            return (f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                    f"{row[3]:>{widths[3]}}").rstrip()
        rule = "-" * len(line(header))
        for text in [line(header), rule, *map(line, rows), rule,
                     f"total parameters: {total:,} (float32, {4 * total:,} bytes)"]:
            print_fn(text)

    # -------------------------------------------------------------------------- one pass

    def forward(self, X, training):
        """Run every layer on X (n_samples, n_features); returns the last layer's output."""
        self.input_layer.forward(X, training)
        if self.fuse:
            _forward_steps(self._fused_steps, training)
        else:
            for layer in self.layers:
                layer.forward(layer.prev.output, training)
        return self.layers[-1].output

    def _forward_and_loss(self, X, y, training, include_regularization=False):
        """(output, loss.calculate(output, y, ...)), with the softmax layer and the
        cross-entropy fused into one pass when possible."""
        if not (self.fuse and self._fused_softmax_loss):
            output = self.forward(X, training)
            return output, self.loss.calculate(output, y,
                                               include_regularization=include_regularization)
        self.input_layer.forward(X, training)
        _forward_steps(self._fused_steps[:-1], training)
        softmax = self.layers[-1]
        softmax.inputs = softmax.prev.output
        softmax.output, sample_losses = softmax_crossentropy_forward(softmax.inputs, y)
        return softmax.output, self.loss._calculate(sample_losses, include_regularization)

    def backward(self, output, y):
        """Back-propagate the loss of ``output`` against ``y`` through every layer."""
        if self.softmax_classifier_output is not None:
            self.softmax_classifier_output.backward(output, y)
            self.layers[-1].dinputs = self.softmax_classifier_output.dinputs
            skip = self.layers[-1]
        else:
            self.loss.backward(output, y)
            skip = None
        if not self.fuse:
            for layer in reversed(self.layers):
                if layer is not skip:
                    self._layer_backward(layer, layer.next.dinputs)
            return
        for layer, relu in reversed(self._fused_steps):
            if relu is None:
                if layer is not skip:
                    self._layer_backward(layer, layer.next.dinputs)
            else:
                relu.dinputs = np.empty(relu.output.shape, dtype=np.float32)
                layer._backward(relu.next.dinputs, relu.output, relu.dinputs,
                                want_dinputs=layer.prev is not self.input_layer)

    def _layer_backward(self, layer, dvalues):
        """layer.backward(dvalues), except that a first Layer_Dense skips its input gradient
        (dinputs is None: nothing reads it, and it is a third of the layer's work)."""
        if type(layer) is Layer_Dense and layer.prev is self.input_layer:
            layer._backward(dvalues, None, None, want_dinputs=False)
        else:
            layer.backward(dvalues)

    # ------------------------------------------------------------------- train / evaluate

    def train(self, X, y, *, epochs=1, batch_size=None, print_every=1, validation_data=None,
              shuffle=False, progress=False, verbose=True, callbacks=None,
              validation_split=None, validation_every=1, validation_batch_size=None):
        """Train for ``epochs`` passes over (X, y) in consecutive batches of ``batch_size``.

        Prints the book's chapter-19+ lines (``epoch:``, ``step: ...`` every ``print_every``
        steps and at the last step, ``training, ...``, and ``validation, ...`` after each epoch
        when ``validation_data=(X_val, y_val)`` is given).

        Additions to the book:
            shuffle: reorder the samples every epoch with ``np.random.permutation`` from NumPy's
                global legacy RNG (default False: the book's fixed order, no RNG use).
            progress: True or "steps": a progress bar over each epoch's steps (the ``step:``
                lines are then not printed); "epochs": one bar over the epochs. tqdm when
                installed, else a one-line text bar on stderr (``nnfs_fast.progress``).
            verbose: False prints nothing (the bar, if any, is still shown).
            callbacks: a list of ``nnfs_fast.callbacks.Callback`` (early stopping,
                checkpoints, schedules, ...); ``model.stop_training = True`` set by one of
                them (or by anything else during training) ends training after the current
                step.
            validation_split: a fraction in (0, 1): the last ``ceil(f * len(X))`` samples
                (before any shuffling, no RNG use) are held out as validation data instead of
                ``validation_data``.
            validation_every: validate every N epochs (and after the last one) instead of
                after each epoch.
            validation_batch_size: the batch size of validation (default: ``batch_size``).
        Returns:
            history: dict of per-epoch lists ``loss``, ``data_loss``, ``reg_loss``, ``acc``,
            ``lr`` (the learning rate of the last step), plus ``val_loss``/``val_acc`` with
            validation data (and ``val_epoch``, the validated epochs, when
            ``validation_every`` > 1).
        Ctrl-C (KeyboardInterrupt) stops training with every parameter and optimizer state
        from the last completed step (an interrupt during the update is held until the update
        ends), then propagates (after the callbacks' ``on_train_end``).
        """
        self._require_ready("train", need=("loss", "optimizer", "accuracy"))
        n_samples = _check_xy(X, y, "train")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"train: epochs must be an int >= 0, got {epochs!r}")
        if isinstance(print_every, bool) or not isinstance(print_every, (int, np.integer)) \
                or print_every < 1:
            raise ValueError(f"train: print_every must be a positive int, got {print_every!r}")
        if isinstance(validation_every, bool) or not isinstance(
                validation_every, (int, np.integer)) or validation_every < 1:
            raise ValueError(f"train: validation_every must be a positive int, got "
                             f"{validation_every!r}")
        if progress not in (False, True, "steps", "epochs"):
            raise ValueError(f"train: progress must be False, True, 'steps' or 'epochs', "
                             f"got {progress!r}")
        if validation_split is not None:
            if validation_data is not None:
                raise ValueError("train: give validation_data or validation_split, not both")
            X, y, validation_data = split_validation(X, y, validation_split)
            n_samples = len(X)
        train_steps = _n_steps(n_samples, batch_size, "train")
        if validation_batch_size is None:
            validation_batch_size = batch_size
        _n_steps(1, validation_batch_size, "train (validation_batch_size)")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("train: validation_data must be a pair (X_val, y_val)")
            _check_xy(*validation_data, "train (validation_data)")
        callbacks = _check_callbacks(callbacks)
        # every label, before the first update: a bad one in the last batch (or in the
        # validation data) must not leave the earlier batches' updates applied
        plan = self._plan_for(self.optimizer)
        data = self._prepare(plan, X, y, "train: y")
        if data is None:
            plan = None
        if validation_data is not None:
            self._check_labels(validation_data[1], "train: validation_data y")
        history = {key: [] for key in ("loss", "data_loss", "reg_loss", "acc", "lr")}
        if validation_data is not None:
            history.update(val_loss=[], val_acc=[])
            if validation_every > 1:
                history["val_epoch"] = []
        params = {"epochs": int(epochs), "steps": train_steps,
                  "validation": validation_data is not None,
                  "validation_every": int(validation_every)}
        for callback in callbacks:
            callback.set_model(self, params)

        self.accuracy.init(y)
        self.stop_training = False
        step_bars = progress in (True, "steps")
        epoch_bar = None
        started = []
        try:
            for callback in callbacks:
                started.append(callback)
                callback.on_train_begin()
            if progress == "epochs":
                epoch_bar = progress_module.ProgressBar(epochs, "training", leave=False,
                                                        unit="epoch")
            with _InterruptGuard() as guard:
                for epoch in range(1, epochs + 1):
                    if verbose:
                        print(f"epoch: {epoch}")
                    for callback in callbacks:
                        callback.on_epoch_begin(epoch, {})
                    X_epoch, y_epoch = X, y
                    if shuffle:
                        order = np.random.permutation(n_samples)
                        X_epoch, y_epoch = np.asarray(X)[order], np.asarray(y)[order]
                    if plan is not None and shuffle:
                        data = plan.prepare(X_epoch, y_epoch)
                        if data is None:
                            plan = None
                    self.loss.new_pass()
                    self.accuracy.new_pass()
                    bar = progress_module.ProgressBar(
                        train_steps, f"epoch {epoch}/{epochs}") if step_bars else None
                    try:
                        for step in range(train_steps):
                            batch_X, batch_y = _batch(X_epoch, y_epoch, step, batch_size)
                            result = None
                            if plan is not None:
                                result = self._compiled_step(plan, data, batch_X, step,
                                                             batch_size, guard)
                                if result is None:
                                    plan = None
                            if result is None:
                                result = self._python_step(batch_X, batch_y, guard)
                            data_loss, regularization_loss, accuracy = result
                            loss = data_loss + regularization_loss
                            lr = self.optimizer.current_learning_rate
                            if bar is not None:
                                bar.update(f"acc: {accuracy:.3f}, loss: {loss:.3f}, "
                                           f"lr: {lr:.4g}")
                            elif verbose and (not step % print_every or step == train_steps - 1):
                                print(f"step: {step}, acc: {accuracy:.3f}, loss: {loss:.3f} ("
                                      f"data_loss: {data_loss:.3f}, reg_loss: "
                                      f"{regularization_loss:.3f}), lr: {lr}")
                            if callbacks:
                                logs = {"loss": float(loss), "data_loss": float(data_loss),
                                        "reg_loss": float(regularization_loss),
                                        "acc": float(accuracy), "lr": float(lr)}
                                for callback in callbacks:
                                    callback.on_batch_end(step, logs)
                            if self.stop_training:
                                break
                    finally:
                        if bar is not None:
                            bar.close()
                    epoch_data_loss, epoch_regularization_loss = \
                        self.loss.calculate_accumulated(include_regularization=True)
                    epoch_loss = epoch_data_loss + epoch_regularization_loss
                    epoch_accuracy = self.accuracy.calculate_accumulated()
                    lr = self.optimizer.current_learning_rate
                    if verbose:
                        print(f"training, acc: {epoch_accuracy:.3f}, loss: {epoch_loss:.3f} ("
                              f"data_loss: {epoch_data_loss:.3f}, reg_loss: "
                              f"{epoch_regularization_loss:.3f}), lr: {lr}")
                    logs = {}
                    for key, value in (("loss", epoch_loss), ("data_loss", epoch_data_loss),
                                       ("reg_loss", epoch_regularization_loss),
                                       ("acc", epoch_accuracy), ("lr", lr)):
                        logs[key] = float(value)
                        history[key].append(float(value))
                    last = epoch == epochs or self.stop_training
                    if validation_data is not None and (not epoch % validation_every or last):
                        result = self.evaluate(*validation_data, batch_size=validation_batch_size,
                                               verbose=verbose)
                        logs.update(val_loss=result["loss"], val_acc=result["acc"])
                        history["val_loss"].append(result["loss"])
                        history["val_acc"].append(result["acc"])
                        if "val_epoch" in history:
                            history["val_epoch"].append(epoch)
                    for callback in callbacks:
                        callback.on_epoch_end(epoch, logs)
                    if epoch_bar is not None:
                        epoch_bar.update(f"acc: {epoch_accuracy:.3f}, loss: {epoch_loss:.3f}")
                    if self.stop_training:
                        break
        finally:
            if epoch_bar is not None:
                epoch_bar.close()
            for callback in reversed(started):
                callback.on_train_end()
        return history

    def _python_step(self, batch_X, batch_y, guard):
        """One training step through the layers' own methods: (data_loss,
        regularization_loss, accuracy)."""
        output, (data_loss, regularization_loss) = self._forward_and_loss(
            batch_X, batch_y, training=True, include_regularization=True)
        predictions = self.output_layer_activation.predictions(output)
        accuracy = self.accuracy.calculate(predictions, batch_y)
        self.backward(output, batch_y)
        guard.run(self._update)
        return data_loss, regularization_loss, accuracy

    def _compiled_step(self, plan, data, batch_X, step, batch_size, guard):
        """One training step through the compiled plan, with the Python path's results and
        attributes; None (nothing changed) when the plan cannot run it."""
        start, n = _rows(step, batch_size, data)
        # Anything refused before the native call (here, or by plan.step as Unavailable)
        # leaves the step to the Python path, which raises its own error at its own point
        # of the step (after the forward's attributes and dropout draws): nothing changed.
        learning_rate = self.optimizer.current_learning_rate
        try:
            regularization_loss = self.loss.regularization_loss()   # of the weights before
            self.optimizer.pre_update_params()
        except Exception:  # noqa: BLE001 - the Python path raises it again
            self.optimizer.current_learning_rate = learning_rate
            return None
        try:
            data_loss, accuracy = guard.run(
                plan.step, data, start, n, True, self.optimizer,
                getattr(self.accuracy, "precision", None), self.loss, self.accuracy, batch_X)
        except _plan.Unavailable:
            self.optimizer.current_learning_rate = learning_rate
            return None
        self.input_layer.output = batch_X
        return data_loss, regularization_loss, accuracy

    def _plan_for(self, optimizer=None):
        """The compiled plan when it can run now: with this optimizer (the library's own
        class; None for evaluate) and none of the methods it stands for replaced on an object
        or its class since finalize (a test's or a user's patch must run), else None."""
        if self._plan is None or (optimizer is not None
                                  and type(optimizer) not in _OPTIMIZERS):
            return None
        # the layers, loss or accuracy changed since finalize (without finalizing again):
        # the Python path runs what the model holds now
        objects, flags = _structure(self)
        compiled_objects, compiled_flags = self._plan_structure
        if flags != compiled_flags or len(objects) != len(compiled_objects) or not all(
                a is b for a, b in zip(objects, compiled_objects)):
            return None
        objects = [*self.layers, self.loss, self.accuracy]
        if optimizer is not None:
            objects.append(optimizer)
        for obj in objects:
            for name, function in _PLAN_METHODS[type(obj)]:
                if getattr(getattr(obj, name, None), "__func__", None) is not function:
                    return None
        return self._plan

    def _update(self):
        """One optimizer step over every trainable layer."""
        self.optimizer.pre_update_params()
        for layer in self.trainable_layers:
            self.optimizer.update_params(layer)
        self.optimizer.post_update_params()

    def evaluate(self, X_val, y_val, *, batch_size=None, verbose=True):
        """Loss and accuracy on (X_val, y_val) without dropout; prints the book's
        ``validation, acc: ..., loss: ...`` line (data loss only) and returns
        ``{"loss": ..., "acc": ...}`` (the book returns None)."""
        self._require_ready("evaluate", need=("loss", "accuracy"))
        n_samples = _check_xy(X_val, y_val, "evaluate")
        plan = self._plan_for()
        data = self._prepare(plan, X_val, y_val, "evaluate: y")
        self.loss.new_pass()
        self.accuracy.new_pass()
        for step in range(_n_steps(n_samples, batch_size, "evaluate")):
            batch_X, batch_y = _batch(X_val, y_val, step, batch_size)
            if data is not None:
                start, n = _rows(step, batch_size, data)
                try:
                    plan.step(data, start, n, False, None,
                              getattr(self.accuracy, "precision", None), self.loss,
                              self.accuracy, batch_X)
                    self.input_layer.output = batch_X
                    continue
                except _plan.Unavailable:
                    data = None
            output, _ = self._forward_and_loss(batch_X, batch_y, training=False)
            predictions = self.output_layer_activation.predictions(output)
            self.accuracy.calculate(predictions, batch_y)
        validation_loss = self.loss.calculate_accumulated()
        validation_accuracy = self.accuracy.calculate_accumulated()
        if verbose:
            print(f"validation, acc: {validation_accuracy:.3f}, loss: {validation_loss:.3f}")
        return {"loss": float(validation_loss), "acc": float(validation_accuracy)}

    def predict(self, X, *, batch_size=None):
        """Outputs of the last layer for X (no dropout), stacked over batches: (n_samples,
        n_outputs). Class indices: ``model.output_layer_activation.predictions(output)``."""
        self._require_ready("predict")
        # an empty X gives an empty (0, n_outputs) result: one step over no rows
        n_samples = _n_samples(X, "X", "predict")
        steps = max(1, _n_steps(n_samples, batch_size, "predict"))
        plan = self._plan_for() if n_samples else None
        data = plan.prepare(X, None) if plan is not None else None
        if data is not None:    # the compiled plan, batch by batch into one array
            output = np.empty((n_samples, data.n_out), dtype=np.float32)
            try:
                for step in range(steps):
                    batch_X = _batch(X, None, step, batch_size)[0]
                    plan.predict(data, *_rows(step, batch_size, data), output, batch_X)
                    self.input_layer.output = batch_X
                return output
            except _plan.Unavailable:
                pass            # from the start on the Python path, which raises its errors
        output = [self.forward(_batch(X, None, step, batch_size)[0], training=False)
                  for step in range(steps)]
        return np.vstack(output)

    def _prepare(self, plan, X, y, name):
        """The plan's Data of (X, y) (TrainingPlan.prepare, which checks every label as
        _check_labels does, with its messages), or None when there is no plan or it cannot
        take them: then _check_labels has checked y."""
        if plan is not None:
            try:
                data = plan.prepare(X, y)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{name}: {str(exc).removeprefix('y_true: ')}") from None
            if data is not None:
                return data
        self._check_labels(y, name)
        return None

    def _check_labels(self, y, name):
        """Refuse labels or targets that the loss would refuse at some batch: the loss's own
        check runs on all of ``y`` at once, against stand-in predictions of the model's output
        shape (a broadcast constant, no memory per sample). Positions in the message count
        from the start of ``y``. Only for the library's losses and when the output width is
        known (a last Layer_Dense followed by activations or dropout)."""
        width = _output_width(self.layers)
        if width is None or getattr(type(self.loss), "forward", None) not in _KERNEL_FORWARDS:
            return
        stand_in = np.broadcast_to(np.float32(0.5), (len(y), width))
        try:
            self.loss.forward(stand_in, y)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: {str(exc).removeprefix('y_true: ')}") from None

    def _require_ready(self, method, need=()):
        missing = [name for name in need if getattr(self, name) is None]
        if missing:
            raise RuntimeError(f"Model.{method} needs {', '.join(missing)}: call "
                               f"model.set({', '.join(n + '=...' for n in missing)}) first")
        if "_fused_steps" not in self.__dict__:
            raise RuntimeError(f"Model.{method}: call model.finalize() first")

    # -------------------------------------------------------------------------- parameters

    def get_parameters(self):
        """List of (weights, biases) per trainable layer, in order (the live arrays)."""
        self._require_ready("get_parameters")
        return [layer.get_parameters() for layer in self.trainable_layers]

    def set_parameters(self, parameters):
        """Assign a list of (weights, biases) pairs, one per trainable layer, in order.

        Shapes are checked against the layers before anything is assigned; float32
        C-contiguous arrays are assigned as they are (no copy), others are converted."""
        self._require_ready("set_parameters")
        try:
            parameters = list(parameters)
        except TypeError:
            raise TypeError(f"set_parameters: expected a list of (weights, biases) pairs, one "
                            f"per trainable layer, got {_what(parameters)}") from None
        if len(parameters) != len(self.trainable_layers):
            raise ValueError(f"set_parameters: expected {len(self.trainable_layers)} "
                             f"(weights, biases) pairs, one per trainable layer, got "
                             f"{len(parameters)}")
        checked = []
        for i, (layer, pair) in enumerate(zip(self.trainable_layers, parameters)):
            where = (f"trainable layer {i} (model.layers[{self.layers.index(layer)}], "
                     f"{layer!r})")
            if not hasattr(pair, "__len__") or isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise ValueError(f"set_parameters: {where}: expected a (weights, biases) "
                                 f"pair, got {_what(pair)}")
            arrays = []
            for name, current, new in zip(("weights", "biases"), layer.get_parameters(), pair):
                new = np.asarray(new)
                if new.shape != np.shape(current):
                    raise ValueError(f"set_parameters: {where}: expected {name} of shape "
                                     f"{np.shape(current)}, got {new.shape}")
                if not is_real(new.dtype):
                    raise TypeError(f"set_parameters: {where}: {name} must be real numbers, "
                                    f"got dtype {new.dtype}")
                arrays.append(np.ascontiguousarray(new, dtype=np.float32))
            checked.append((layer, arrays))
        for layer, (weights, biases) in checked:
            layer.set_parameters(weights, biases)

    def save_parameters(self, path):
        """Write the parameters to ``path`` (an .npz-style zip of float32 arrays, atomically).

        A name ending in ``.safetensors`` writes safetensors with the tensor names and
        (out, in) layout of ``nnfs_fast.export.to_torch(model).state_dict()``."""
        _persistence.save_parameters(self.get_parameters(), path, layer_indices=[
            self.layers.index(layer) for layer in self.trainable_layers])

    def load_parameters(self, path, *, allow_pickle=False):
        """Read parameters written by ``save_parameters`` (or a safetensors file of a torch
        ``nn.Sequential``'s Linear layers) into this finalized model.

        ``allow_pickle=True`` also accepts the book's pickle files (trusted files only)."""
        self.set_parameters(_persistence.load_parameters(path, allow_pickle=allow_pickle))

    def save(self, path):
        """Write the whole model (architecture, parameters, optimizer state) to ``path``.

        The file is a zip of float32 .npy arrays plus a JSON description; loading it never
        executes code. Written atomically: a crash mid-save leaves any previous file intact.

        Resuming: ``Model.load(path).train(X, y, ...)`` continues bit for bit like a run that
        was never interrupted (parameters, optimizer state and iteration count are in the file),
        given the same data and ``batch_size``. Dropout masks and ``shuffle=True`` draw from
        NumPy's global RNG, which the file does not hold: keep ``np.random.get_state()`` with
        it and ``np.random.set_state`` before training again (docs/TRAINING.md)."""
        _persistence.save_model(self, path)

    def to_onnx(self, path):
        """Write the model as ONNX (``nnfs_fast.export.to_onnx``; needs
        ``pip install "nnfs_fast[onnx]"``) and return the onnx.ModelProto."""
        from nnfs_fast import export
        return export.to_onnx(self, path)

    @staticmethod
    def load(path, *, allow_pickle=False):
        """A finalized model read from a file written by ``Model.save``.

        ``allow_pickle=True`` also accepts files written by the book's pickle-based
        ``Model.save`` (only for files you trust)."""
        return _persistence.load_model(path, Model, allow_pickle=allow_pickle)


# ---------------------------------------------------------------------------------- helpers

# id(model) -> weak reference, for every finalized Model still alive (see _refuse_shared_layers)
_FINALIZED = {}
# the losses' forward methods that are kernels checking the labels (see Model._check_labels)
_KERNEL_FORWARDS = {Loss_CategoricalCrossentropy.forward, _MeanOverOutputsLoss.forward}
# layers whose output has the shape of their input
_SAME_SHAPE = (Activation_Linear, Activation_ReLU, Activation_Sigmoid, Activation_Softmax,
               Layer_Dropout)


def _output_width(layers):
    """Columns of the model's output: the last trainable layer's n_neurons, when only
    activations and dropout follow it; None when that cannot be known."""
    for layer in reversed(layers):
        if hasattr(layer, "weights"):
            shape = np.shape(layer.weights)
            return shape[1] if len(shape) == 2 else None
        if not isinstance(layer, _SAME_SHAPE):
            return None
    return None


def _fusion_plan(layers):
    """[(layer, relu_or_None)]: each Layer_Dense directly followed by an Activation_ReLU is
    paired with it (exact classes, so subclasses keep their own forward/backward)."""
    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if type(layer) is Layer_Dense and type(nxt) is Activation_ReLU:
            steps.append((layer, nxt))
            i += 2
        else:
            steps.append((layer, None))
            i += 1
    return steps


def _forward_steps(steps, training):
    """Forward through [(layer, fused_relu_or_None)]: a fused pair makes one kernel call and
    its Dense output, ReLU inputs and ReLU output are the same post-ReLU array."""
    for layer, relu in steps:
        if relu is None:
            layer.forward(layer.prev.output, training)
        else:
            layer.inputs = layer.prev.output
            layer.output = layer._forward(layer.inputs, relu=True)
            relu.inputs = relu.output = layer.output


def _what(value):
    """A short description of an unexpected argument, for error messages."""
    if isinstance(value, type):
        return f"the class {value.__name__}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return type(value).__name__ + (f" of shape {value.shape}" if isinstance(value, np.ndarray)
                                   else "")


def _n_samples(a, name, method):
    """len(a): the number of samples of an array (or list) of them."""
    if (isinstance(a, np.ndarray) and a.ndim == 0) or isinstance(a, (str, bytes)) \
            or not hasattr(a, "__len__"):
        raise TypeError(f"{method}: {name} must be an array of samples, got {_what(a)}")
    return len(a)


def _check_xy(X, y, method):
    """The number of samples, after checking that X is not empty and y has one row per
    sample (losses and accuracies are means over the samples: an empty batch has none)."""
    n_samples = _n_samples(X, "X", method)
    n_labels = _n_samples(y, "y", method)
    if n_samples != n_labels:
        raise ValueError(f"{method}: X has {n_samples} samples but y has {n_labels}")
    if n_samples == 0:
        raise ValueError(f"{method}: X and y are empty (0 samples); the loss and the "
                         "accuracy are means over at least one sample")
    return n_samples


def split_validation(X, y, fraction):
    """(X_train, y_train, (X_val, y_val)): the last ceil(fraction * len(X)) samples held out,
    as ``Model.train(validation_split=fraction)`` does (Keras's rule; no RNG use)."""
    n_samples = _check_xy(X, y, "train")
    if isinstance(fraction, bool) or not isinstance(fraction, (float, int, np.floating)) \
            or not 0 < fraction < 1:
        raise ValueError(f"train: validation_split must be a fraction in (0, 1), "
                         f"got {fraction!r}")
    n_val = math.ceil(fraction * n_samples)
    if n_val >= n_samples:
        raise ValueError(f"train: validation_split={fraction!r} of {n_samples} samples leaves "
                         f"no training samples")
    cut = n_samples - n_val
    return X[:cut], y[:cut], (X[cut:], y[cut:])


def _check_callbacks(callbacks):
    """The callbacks as a list, each an nnfs_fast.callbacks.Callback."""
    from nnfs_fast.callbacks import Callback
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or not isinstance(callbacks, (list, tuple)):
        raise TypeError(f"train: callbacks must be a list of nnfs_fast.callbacks.Callback "
                        f"objects, got {_what(callbacks)}")
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            raise TypeError(f"train: callbacks[{i}] must be a nnfs_fast.callbacks.Callback "
                            f"(e.g. EarlyStopping(patience=5)), got {_what(callback)}")
    return list(callbacks)


def _n_steps(n_samples, batch_size, method):
    """Number of batches: 1 without batch_size, else ceil(n_samples / batch_size)."""
    if batch_size is None:
        return 1
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise ValueError(f"{method}: batch_size must be None or a positive int, "
                         f"got {batch_size!r}")
    return math.ceil(n_samples / batch_size)


def _rows(step, batch_size, data):
    """(first row, rows) of batch ``step`` of ``data`` (a plan's Data)."""
    if batch_size is None:
        return 0, data.n_rows
    start = step * batch_size
    return start, min(batch_size, data.n_rows - start)


# the optimizers and layers the compiled plan runs (exact classes: a subclass may override)
_OPTIMIZERS = (_optimizers.Optimizer_SGD, _optimizers.Optimizer_Adagrad,
               _optimizers.Optimizer_RMSprop, _optimizers.Optimizer_Adam)
_PLAN_STEPS = {Layer_Dense: "dense", Activation_ReLU: "relu", Activation_Sigmoid: "sigmoid",
               Activation_Softmax: "softmax", Activation_Linear: "linear",
               Layer_Dropout: "dropout"}
_PLAN_LOSSES = {Loss_BinaryCrossentropy: "bce", Loss_MeanSquaredError: "mse",
                Loss_MeanAbsoluteError: "mae"}


# class -> its methods that the plan stands for, as they were at import: (name, function)
_PLAN_METHODS = {
    cls: [(name, getattr(cls, name)) for name in names if hasattr(cls, name)]
    for cls, names in [
        *[(layer, ("forward", "backward", "predictions", "_forward", "_backward"))
          for layer in _PLAN_STEPS],
        *[(loss, ("forward", "backward", "calculate", "_calculate"))
          for loss in (*_PLAN_LOSSES, Loss_CategoricalCrossentropy)],
        *[(accuracy, ("calculate", "compare"))
          for accuracy in (Accuracy_Categorical, Accuracy_Regression)],
        *[(optimizer, ("update_params", "_kernel_call", "_prepare_state"))
          for optimizer in _OPTIMIZERS]]}


def _structure(model):
    """What _compile reads of a model: (objects, compared with ``is``: the layers, the
    trainable layers, the loss's and the accuracy's classes; flags, compared with ``==``:
    the layer counts, the accuracy's binary flag, fuse, compiled)."""
    return ((*model.layers, *model.trainable_layers, type(model.loss), type(model.accuracy)),
            (len(model.layers), len(model.trainable_layers),
             getattr(model.accuracy, "binary", None), model.fuse, model.compiled))


def _compile(model):
    """(TrainingPlan, "compiled") for a finalized model the plan can run, else (None,
    "python: <why>")."""
    if not model.compiled:
        return None, "python: Model(compiled=False)"
    if not model.fuse:
        return None, "python: Model(fuse=False)"
    for layer in model.layers:
        if type(layer) not in _PLAN_STEPS:
            return None, (f"python: layer {type(layer).__name__} is not one of the library's "
                          f"own classes")
    if not model.trainable_layers:
        return None, "python: no Layer_Dense"
    last = type(model.layers[-1])
    loss, accuracy = type(model.loss), type(model.accuracy)
    if model._fused_softmax_loss:
        loss_code = "fused"
    elif loss in _PLAN_LOSSES:
        loss_code = _PLAN_LOSSES[loss]
    else:
        return None, f"python: loss {type(model.loss).__name__} is not compiled"
    if accuracy is Accuracy_Categorical and not model.accuracy.binary:
        accuracy_code, wants = "categorical", ("fused", Activation_Softmax)
    elif accuracy is Accuracy_Categorical:
        accuracy_code, wants = "binary", (None, Activation_Sigmoid)
    elif accuracy is Accuracy_Regression:
        accuracy_code, wants = "regression", (None, Activation_Linear)
    else:
        return None, f"python: accuracy {type(model.accuracy).__name__} is not compiled"
    if model.optimizer is not None and type(model.optimizer) not in _OPTIMIZERS:
        return None, f"python: optimizer {type(model.optimizer).__name__} is not compiled"
    if (wants[0] == "fused") != (loss_code == "fused") or last is not wants[1]:
        return None, (f"python: {model.accuracy!r} with {model.loss!r} after "
                      f"{model.layers[-1]!r} is not compiled")
    steps = [(_plan.STEP_CODES[_PLAN_STEPS[type(layer)]], layer, relu,
              layer.prev is not model.input_layer) for layer, relu in model._fused_steps]
    grad_owner = model.softmax_classifier_output if loss_code == "fused" else model.loss
    return (_plan.TrainingPlan(steps, _plan.LOSS_CODES[loss_code],
                               _plan.ACCURACY_CODES[accuracy_code], grad_owner), "compiled")


def _batch(X, y, step, batch_size):
    """Rows step*batch_size ... (step+1)*batch_size - 1 of X and y (all of them without
    batch_size)."""
    if batch_size is None:
        return X, y
    rows = slice(step * batch_size, (step + 1) * batch_size)
    return X[rows], (None if y is None else y[rows])


_SIGINT = int(signal.SIGINT)


class _InterruptGuard:
    """Holds back Ctrl-C while the optimizer updates the parameters.

    Installed only in the main thread and only over Python's default SIGINT handler (a handler
    the user installed is left alone). Outside ``run`` an interrupt raises at once, as usual;
    inside, it is raised as soon as the update has finished, so the layers never hold a
    half-applied step."""

    def __init__(self):
        self._critical = False
        self._pending = False
        self._previous = None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and _raw_signal.getsignal(_SIGINT) is signal.default_int_handler):
            self._previous = _raw_signal.signal(_SIGINT, self._handler)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            _raw_signal.signal(_SIGINT, self._previous)
        return False

    def _handler(self, signum, frame):
        if self._critical:
            self._pending = True
        else:
            raise KeyboardInterrupt

    def run(self, update, *args):
        self._critical = True
        try:
            result = update(*args)
        finally:
            self._critical = False
        if self._pending:
            self._pending = False
            raise KeyboardInterrupt
        return result
