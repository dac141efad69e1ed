"""Copies of a model for the doctor to train, so the user's model and optimizer stay untouched.

`clone_for_probe` rebuilds a Sequential or functional model with `keras.models.clone_model`,
optionally replacing some layer types by `Identity` (batch normalization for the S2.12 check,
dropout and noise for overfitting a batch), and copies every remaining layer's weights by name,
nested models included. `compile_clone` compiles the copy with the user's loss and a given
optimizer. Nothing here reads or writes the user's optimizer variables.

Example:

>>> import keras
>>> inputs = keras.Input((3,))
>>> hidden = keras.layers.BatchNormalization(name="norm")(keras.layers.Dense(4)(inputs))
>>> model = keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden))
>>> model.compile("adam", "mse")
>>> clone = clone_for_probe(model, remove=(keras.layers.BatchNormalization,))
>>> type(clone.get_layer("norm")).__name__
'Identity'
>>> bool((clone.get_layer("out").kernel.numpy() == model.get_layer("out").kernel.numpy()).all())
True
"""

from typing import Any, Tuple

import keras

from toolkit.errors import ModelError

__all__ = ["clone_for_probe", "compile_clone", "copy_optimizer", "REGULARIZERS"]

# Layers that add noise in training: off while overfitting a batch, as S2.12 prescribes (a model
# that must memorize two examples should not be fighting its own regularization).
REGULARIZERS = (
    keras.layers.Dropout,
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def clone_for_probe(model: keras.Model, *, remove: Tuple[type, ...] = ()) -> keras.Model:
    """A copy of `model` with the same weights, where layers of the types `remove` are identity.

    Args:
        model: A built Sequential or functional Keras model.
        remove: Layer types to replace by `keras.layers.Identity` (same name). Defaults to `()`.

    Returns:
        The uncompiled copy.

    Raises:
        ModelError: If Keras cannot clone the model (a subclassed model without `get_config`).
    """

    def clone_layer(layer):
        if remove and isinstance(layer, remove):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    def call_layer(layer, *args, **kwargs):
        # The replaced layer's call arguments (a mask, `training`) mean nothing to `Identity`.
        if isinstance(layer, keras.layers.Identity):
            return layer(args[0])
        return layer(*args, **kwargs)

    try:
        # A Sequential model calls each layer on its input alone: no call arguments to drop.
        sequential = isinstance(model, keras.Sequential)
        clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True,
                                         call_function=None if sequential else call_layer)
    except (NotImplementedError, TypeError, ValueError) as error:
        raise ModelError(
            f"The doctor could not copy model {model.name!r} to probe it ({error}). It works on "
            f"Sequential and functional models, and on subclassed ones that implement "
            f"get_config() and from_config()."
        ) from None
    _copy_weights(model, clone)
    return clone


def _copy_weights(source, target) -> None:
    """Copies weights layer by layer, matched by name, into every layer that was not replaced."""
    if not isinstance(source, keras.Model) or not source.layers:
        target.set_weights(source.get_weights())
        return
    for layer in source.layers:
        if not layer.weights:
            continue  # Input layers among them: `clone_model` renames those.
        twin = target.get_layer(layer.name)
        if isinstance(twin, keras.layers.Identity) and not isinstance(layer, keras.layers.Identity):
            continue
        if isinstance(layer, keras.Model):
            _copy_weights(layer, twin)
        elif layer.weights:
            twin.set_weights(layer.get_weights())


def copy_optimizer(optimizer: Any) -> keras.optimizers.Optimizer:
    """A fresh optimizer with `optimizer`'s configuration (learning rate, schedule, ...)."""
    return keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))


def compile_clone(clone: keras.Model, model: keras.Model, optimizer: Any) -> keras.Model:
    """Compiles `clone` with `model`'s loss (and loss weights) and `optimizer`, without metrics.

    Args:
        clone: The copy (from `clone_for_probe`).
        model: The compiled original.
        optimizer: The optimizer to train the copy with.

    Returns:
        `clone`, compiled (no XLA: the probes run a few hundred steps, compiling would dominate).
    """
    loss_weights = None
    try:
        config = model.get_compile_config() or {}
        loss_weights = config.get("loss_weights")
    except (AttributeError, TypeError, ValueError):  # an unserializable compile argument
        pass
    clone.compile(optimizer=optimizer, loss=model.loss, loss_weights=loss_weights,
                  jit_compile=False)
    return clone
