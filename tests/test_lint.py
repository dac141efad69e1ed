import functools

import keras
import numpy as np
import pytest

from toolkit import initializers
from toolkit.layers import InputScaling
from toolkit.lint import Finding, lint
from toolkit.models import convnet, mlp

SCCE_LOGITS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def dense(units, name, activation="relu", **kwargs):
    kwargs.setdefault("kernel_initializer", initializers.relu(0))
    return keras.layers.Dense(units, activation=activation, name=name, **kwargs)


def functional(hidden_activation="relu", output_activation=None, **hidden_kwargs):
    inputs = keras.Input((4,))
    hidden = dense(8, "hidden", hidden_activation, **hidden_kwargs)(inputs)
    outputs = dense(3, "out", output_activation, kernel_initializer=initializers.linear(0))(hidden)
    return keras.Model(inputs, outputs)


def compiled(model, loss=SCCE_LOGITS, optimizer="adam"):
    model.compile(optimizer, loss)
    return model


def codes(model):
    return [(finding.code, finding.layer, finding.severity) for finding in lint(model)]


def test_conventional_models_have_no_findings():
    x = np.random.default_rng(0).lognormal(3.0, 1.0, size=(32, 40))
    assert lint(compiled(mlp((40,), 10, adapt_data=x, seed=0))) == []
    assert lint(compiled(convnet((40,), 10, adapt_data=x, seed=0))) == []
    assert lint(compiled(functional(), optimizer=keras.optimizers.AdamW())) == []
    assert lint(functional()) == []


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_hidden_saturating_activation(activation):
    assert codes(functional(activation)) == [
        ("hidden-saturating-activation", "hidden", "warning")
    ]


def test_hidden_saturating_activation_layer():
    inputs = keras.Input((4,))
    hidden = keras.layers.Activation("tanh", name="squash")(dense(8, "hidden", None)(inputs))
    model = keras.Model(inputs, dense(3, "out", None, kernel_initializer="lecun_normal")(hidden))
    assert codes(model) == [("hidden-saturating-activation", "squash", "warning")]


def test_output_activation_is_reported_and_explained():
    findings = lint(functional(output_activation="relu"))
    assert [(f.code, f.layer) for f in findings] == [("output-activation", "out")]
    assert "S2.4" in findings[0].message and "LinearHead" in findings[0].message


def test_output_activation_through_a_separate_activation_layer_and_reshape():
    inputs = keras.Input((4,))
    logits = dense(6, "logits", None, kernel_initializer="lecun_normal")(inputs)
    probabilities = keras.layers.Softmax(name="softmax")(logits)
    model = keras.Model(inputs, keras.layers.Reshape((2, 3), name="reshape")(probabilities))
    assert codes(compiled(model)) == [
        ("output-activation", "softmax", "warning"),
        ("probabilities-with-from-logits", "softmax", "error"),
    ]


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param(SCCE_LOGITS, id="loss-object"),
        pytest.param(keras.losses.BinaryCrossentropy(from_logits=True), id="binary"),
        pytest.param({"out": SCCE_LOGITS}, id="dict"),
        pytest.param([SCCE_LOGITS], id="list"),
        pytest.param(
            functools.partial(keras.losses.sparse_categorical_crossentropy, from_logits=True),
            id="partial",
        ),
    ],
)
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_probabilities_with_from_logits_loss_is_an_error(loss, activation):
    findings = lint(compiled(functional(output_activation=activation), loss))
    assert [(f.code, f.severity) for f in findings] == [
        ("output-activation", "warning"),
        ("probabilities-with-from-logits", "error"),
    ]
    assert "second time" in findings[1].message


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param("sparse_categorical_crossentropy", id="string"),
        pytest.param(keras.losses.CategoricalCrossentropy(), id="loss-object"),
        pytest.param(keras.losses.binary_crossentropy, id="function"),
        pytest.param({"out": "binary_crossentropy"}, id="dict"),
    ],
)
def test_linear_output_with_probability_loss_is_an_error(loss):
    assert codes(compiled(functional(), loss)) == [
        ("logits-with-probability-loss", "out", "error")
    ]


def test_losses_without_logits_are_not_paired():
    assert lint(compiled(functional(), "mse")) == []
    assert lint(compiled(functional(), keras.losses.Huber())) == []
    assert codes(compiled(functional(output_activation="softmax"), "categorical_crossentropy")) == [
        ("output-activation", "out", "warning")
    ]


def test_multi_output_losses_are_matched_per_output():
    inputs = keras.Input((4,))
    hidden = dense(8, "hidden")(inputs)
    logits = dense(3, "logits", None, kernel_initializer="lecun_normal")(hidden)
    probs = dense(2, "probs", "softmax", kernel_initializer="lecun_normal")(hidden)
    model = keras.Model(inputs, {"a": logits, "b": probs})
    model.compile("adam", {"a": SCCE_LOGITS, "b": "sparse_categorical_crossentropy"})
    assert codes(model) == [("output-activation", "probs", "warning")]
    listed = keras.Model(inputs, [logits, probs])
    listed.compile("adam", [SCCE_LOGITS, SCCE_LOGITS])
    assert [code for code, _, _ in codes(listed)] == [
        "output-activation",
        "probabilities-with-from-logits",
    ]


def test_missing_bias_unless_a_centering_normalization_follows():
    assert codes(functional(use_bias=False)) == [("missing-bias", "hidden", "warning")]
    inputs = keras.Input((4,))
    hidden = dense(8, "hidden", None, use_bias=False)(inputs)
    hidden = keras.layers.BatchNormalization(name="norm")(hidden)
    hidden = keras.layers.ReLU(name="relu")(hidden)
    model = keras.Model(inputs, dense(3, "out", None, kernel_initializer="lecun_normal")(hidden))
    assert lint(model) == []
    inputs = keras.Input((4,))
    hidden = dense(8, "hidden", None, use_bias=False)(inputs)
    hidden = keras.layers.BatchNormalization(center=False, name="norm")(hidden)
    model = keras.Model(inputs, dense(3, "out", None, kernel_initializer="lecun_normal")(hidden))
    assert codes(model) == [("missing-bias", "hidden", "warning")]


@pytest.mark.parametrize(
    "initializer", ["glorot_uniform", "glorot_normal", keras.initializers.RandomNormal(0.0, 0.05)]
)
def test_non_variance_scaling_initializer(initializer):
    found = lint(functional(kernel_initializer=initializer))
    assert [(f.code, f.layer) for f in found] == [("non-variance-scaling-init", "hidden")]
    assert "GlorotUniform" in found[0].message


def test_keras_default_initializer_is_reported_on_conv_layers():
    inputs = keras.Input((16, 1))
    hidden = keras.layers.Conv1D(4, 3, activation="relu", name="conv")(inputs)
    hidden = keras.layers.Flatten()(hidden)
    model = keras.Model(inputs, dense(3, "out", None, kernel_initializer="lecun_normal")(hidden))
    assert codes(model) == [("non-variance-scaling-init", "conv", "warning")]


@pytest.mark.parametrize("optimizer", ["sgd", "rmsprop"])
def test_optimizer_other_than_adam_is_information(optimizer):
    found = lint(compiled(functional(), optimizer=optimizer))
    assert [(f.code, f.layer, f.severity) for f in found] == [("optimizer-not-adam", None, "info")]
    assert "S2.1" in found[0].message


def test_uncompiled_model_skips_loss_and_optimizer_checks():
    model = functional(output_activation="softmax")
    assert codes(model) == [("output-activation", "out", "warning")]


def test_unadapted_input_scaling_layers():
    with pytest.warns(UserWarning):
        model = mlp((4,), 2, seed=0)
    assert codes(model) == [("unadapted-input-scaling", "input_scaling", "warning")]
    with pytest.warns(UserWarning):
        model = mlp((4,), 2, input_scaling="standardize", seed=0)
    assert codes(model) == [("unadapted-input-scaling", "input_scaling", "warning")]
    model.get_layer("input_scaling").adapt(np.random.default_rng(0).normal(size=(8, 4)))
    assert lint(model) == []


def test_sequential_and_nested_models():
    sequential = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(8, activation="sigmoid", name="hidden"),
            keras.layers.Dense(2, activation="softmax", name="out"),
        ]
    )
    sequential.compile("adam", SCCE_LOGITS)
    assert [code for code, _, _ in codes(sequential)] == [
        "hidden-saturating-activation",
        "non-variance-scaling-init",
        "non-variance-scaling-init",
        "output-activation",
        "probabilities-with-from-logits",
    ]
    inputs = keras.Input((4,))
    outer = keras.Model(inputs, sequential(inputs))
    outer.compile("adam", SCCE_LOGITS)
    assert codes(outer) == codes(sequential)


def test_finding_is_printable():
    finding = Finding("missing-bias", "dense", "Set use_bias=True.", "warning")
    assert str(finding) == "warning missing-bias [dense]: Set use_bias=True."
    assert str(Finding("optimizer-not-adam", None, "Use Adam.", "info")) == (
        "info optimizer-not-adam: Use Adam."
    )
