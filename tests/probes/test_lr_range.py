"""The learning-rate range test: exact restore, the rule, divergence, plot, errors, the CLI."""

import json

import keras
import numpy as np
import pytest
from matplotlib.image import imread

from toolkit.cli import main
from toolkit.errors import ModelError, RecipeError
from toolkit.probes.lr_range import LearningRateSearch, find_learning_rate

CROSSENTROPY = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _xor_data(num_examples=512):
    x = np.random.default_rng(0).normal(size=(num_examples, 4)).astype("float32")
    return x, (x[:, 0] * x[:, 1] > 0).astype("int32")


def _mlp(optimizer="adam", seed=0, batch_norm=False):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((4,)), keras.layers.Dense(32, activation="relu")]
    if batch_norm:
        layers += [keras.layers.BatchNormalization(), keras.layers.Dropout(0.2)]
    model = keras.Sequential(layers + [keras.layers.Dense(2)])
    model.compile(optimizer, CROSSENTROPY)
    return model


def _state(model):
    variables = list(model.variables) + list(model.optimizer.variables)
    return [(v.path, np.array(v.numpy(), copy=True)) for v in variables]


def test_restores_weights_adam_moments_and_iterations_bit_identical():
    x, y = _xor_data()
    model = _mlp(keras.optimizers.Adam(3e-3), batch_norm=True)
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)  # non-zero moments, iterations 16
    before = _state(model)
    search = find_learning_rate(model, (x, y), batch_size=64)
    assert len(search.losses) > 20  # it did train, so there was something to restore
    after = _state(model)
    assert [path for path, _ in after] == [path for path, _ in before]
    for (path, old), (_, new) in zip(before, after):
        assert np.array_equal(old, new), path
    paths = [path for path, _ in before]
    assert any("momentum" in p for p in paths) and any("velocity" in p for p in paths)
    assert int(model.optimizer.iterations) == 16
    assert float(model.optimizer.learning_rate) == np.float32(3e-3)


def test_restores_the_model_after_an_error_in_the_sweep():
    x, y = _xor_data()
    model = _mlp()
    before = _state(model)

    def batches():  # a bad batch after a few good ones makes the train step fail
        for start in range(0, 256, 32):
            yield x[start:start + 32], y[start:start + 32]
        yield x[:32, :3], y[:32]

    with pytest.raises(Exception):
        find_learning_rate(model, batches(), num_steps=60, min_learning_rate=1e-4,
                           max_learning_rate=1.0)
    assert all(np.array_equal(old, new) for (_, old), (_, new) in zip(before, _state(model)))


def test_schedule_is_refused_and_left_in_place():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.5)
    model = _mlp(keras.optimizers.Adam(schedule))
    with pytest.raises(ModelError, match="schedule.*float learning rate"):
        find_learning_rate(model, _xor_data())
    assert model.optimizer.get_config()["learning_rate"]["class_name"] == "ExponentialDecay"


def test_suggestion_is_sane_and_steady_across_seeds():
    x, y = _xor_data()
    suggestions = []
    for seed in range(3):
        search = find_learning_rate(_mlp(seed=seed), (x, y), batch_size=64, seed=seed)
        assert isinstance(search, LearningRateSearch)
        assert "smoothed loss" in search.rule and "diverged" in search.stopped_because
        assert len(search.smoothed_losses) == len(search.losses) == len(search.learning_rates)
        suggestions.append(search.suggestion)
    # Adam on a small MLP trains well between 1e-3 and 1e-1.
    assert 1e-3 < min(suggestions) and max(suggestions) < 0.3
    assert max(suggestions) / min(suggestions) < 3


def test_sweep_stops_early_on_divergence():
    x = np.random.default_rng(1).uniform(0, 100, size=(256, 3)).astype("float32")
    y = x.sum(axis=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(1e-6), "mse")
    search = find_learning_rate(model, (x, y), min_learning_rate=1e-8, num_steps=100)
    assert len(search.losses) < 60
    assert "diverged" in search.stopped_because or "became" in search.stopped_because
    assert np.all(np.isfinite(search.losses))


def test_no_descent_warns_and_gives_no_suggestion():
    x, y = _xor_data()
    with pytest.warns(UserWarning, match="no suggestion: the smoothed loss did not fall"):
        search = find_learning_rate(_mlp(), (x, y), min_learning_rate=1e-8,
                                    max_learning_rate=1e-7, num_steps=20)
    assert search.suggestion is None and "toolkit doctor" in search.rule


def test_plot_writes_a_readable_png(tmp_path):
    x, y = _xor_data()
    search = find_learning_rate(_mlp(), (x, y), batch_size=64)
    path = search.plot(tmp_path / "plots" / "find_lr.png")
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


@pytest.mark.parametrize("kwargs, match", [
    (dict(min_learning_rate=1.0, max_learning_rate=0.1), "min_learning_rate < max_learning"),
    (dict(min_learning_rate=0.0), "0 < min_learning_rate"),
    (dict(num_steps=10), r"num_steps >= 40 for 8.0 decades.*Pass num_steps=100"),
    (dict(num_steps=50.5), "Received: num_steps=50.5"),
])
def test_bad_arguments_say_how_to_fix_them(kwargs, match):
    with pytest.raises(RecipeError, match=match):
        find_learning_rate(_mlp(), _xor_data(), **kwargs)


def test_uncompiled_model_is_refused():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"not compiled. Call `model.compile"):
        find_learning_rate(model, _xor_data())


def test_cli_find_lr_json_on_digits(tmp_path, capsys):
    out = tmp_path / "lr.png"
    status = main(["find-lr", "digits_mlp", "--set", "data.max_train_examples=256",
                   "--json", "--out", str(out)])
    assert status == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recipe"] == "digits_mlp" and result["plot"] == str(out)
    assert 1e-4 < result["suggestion"] < 0.1
    assert result["command"].startswith("toolkit train digits_mlp --set data.max_train_examples")
    assert "optimizer.learning_rate=" in result["command"]
    assert imread(out).ndim == 3


def test_cli_find_lr_bad_override_exits_2(capsys):
    assert main(["find-lr", "digits_mlp", "--set", "optimizer.lr=3"]) == 2
    assert "unknown key 'lr'" in capsys.readouterr().err
