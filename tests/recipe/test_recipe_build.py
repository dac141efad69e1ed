"""Recipe -> data and compiled model, with every data/model mistake a clear error."""

import sys
import types

import keras
import numpy as np
import pytest

from toolkit.errors import DataError, ModelError
from toolkit.recipe.build import build_data, build_model, import_function
from toolkit.recipe.load import load_recipe
from toolkit.recipe.schema import DataConfig

RNG = np.random.default_rng(0)


def small_classes():
    return {"x_train": RNG.normal(size=(32, 6)).astype("float32"), "y_train": np.arange(32) % 4,
            "x_test": RNG.normal(size=(8, 6)).astype("float32"), "y_test": np.arange(8) % 4}


def nan_features():
    data = small_classes()
    data["x_train"][5, 2] = np.nan
    return data


def inf_test_targets():
    data = small_classes()
    data.update(y_train=RNG.normal(size=32).astype("float32"),
                y_test=np.full(8, np.inf, dtype="float32"))
    return data


def claims_three_classes():
    return {**small_classes(), "num_classes": 3}


def not_data():
    return [1, 2, 3]


def tiny_model(input_shape, num_outputs, *, adapt_data, seed):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Dense(num_outputs)])


def wrong_width_model(input_shape, num_outputs, *, adapt_data, seed):
    return tiny_model(input_shape, num_outputs + 1, adapt_data=adapt_data, seed=seed)


def not_a_model(input_shape, num_outputs, *, adapt_data, seed):
    return "model"


HERE = __name__


def _recipe(*overrides, base="digits_mlp"):
    return load_recipe(base, overrides)


def test_builtin_data_is_cut_to_the_requested_sizes():
    data = build_data(DataConfig(name="digits", max_train_examples=50, max_eval_examples=20))
    assert data.x_train.shape == (50, 64) and data.x_test.shape == (20, 64)
    assert data.num_classes == 10 and data.task == "classification"


def test_unknown_dataset_lists_the_builtin_names():
    with pytest.raises(DataError, match=r"mnist1d"):
        build_data(DataConfig(name="mnist2d"))


def test_user_dataset_dict_infers_classification():
    data = build_data(DataConfig(name=f"{HERE}:small_classes"))
    assert (data.task, data.num_classes) == ("classification", 4)
    assert data.name == f"{HERE}:small_classes"


def test_user_dataset_float_targets_mean_regression():
    data = build_data(DataConfig(name=f"{HERE}:small_classes"))
    regression = {**small_classes(), "y_train": np.zeros(32, "float32"), "y_test": np.zeros(8)}
    module = types.ModuleType("recipe_test_regression")
    module.make = lambda: regression
    sys.modules[module.__name__] = module
    try:
        data = build_data(DataConfig(name="recipe_test_regression:make"))
    finally:
        del sys.modules[module.__name__]
    assert (data.task, data.num_classes) == ("regression", None)


@pytest.mark.parametrize(
    "function, pattern",
    [
        ("nan_features", r"train split: `x` holds nan at row 5"),
        ("inf_test_targets", r"test split: `y` holds inf at row 0"),
        ("not_data", r"must return a toolkit.data.BuiltinData or a dict with keys x_train"),
    ],
)
def test_bad_user_data_is_a_data_error(function, pattern):
    with pytest.raises(DataError, match=pattern):
        build_data(DataConfig(name=f"{HERE}:{function}"))


def test_bad_function_names_are_user_errors():
    with pytest.raises(DataError, match=r"cannot import module 'no_such_pkg.data'"):
        build_data(DataConfig(name="no_such_pkg.data:make"))
    with pytest.raises(DataError, match=rf"module '{HERE}' has no function 'missing'"):
        build_data(DataConfig(name=f"{HERE}:missing"))
    with pytest.raises(ModelError, match=r"not of the form 'package.module:function'"):
        import_function("pkg.mod:", "model.name", ModelError)


def test_missing_import_inside_the_user_module_is_a_bug_not_a_user_error(tmp_path, monkeypatch):
    (tmp_path / "recipe_test_broken.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        import_function("recipe_test_broken:make", "data.name", DataError)


def test_builtin_model_is_compiled_with_a_from_logits_loss():
    recipe = _recipe("data.max_train_examples=64", "model.hidden_units=[16]")
    model = build_model(recipe, build_data(recipe.data))
    assert model.output_shape == (None, 10)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    assert model.loss.get_config()["from_logits"] is True
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.layers[-1].get_config().get("activation") in (None, "linear")


def test_regression_recipe_uses_mean_squared_error():
    recipe = _recipe("data.max_train_examples=64", base="heavy_tailed_regression")
    model = build_model(recipe, build_data(recipe.data))
    assert model.output_shape == (None, 1)
    assert isinstance(model.loss, keras.losses.MeanSquaredError)


def test_sgd_optimizer():
    recipe = _recipe("data.max_train_examples=64", "optimizer.name=sgd")
    assert isinstance(build_model(recipe, build_data(recipe.data)).optimizer, keras.optimizers.SGD)


def test_labels_out_of_range_for_the_head():
    recipe = _recipe("model.num_outputs=5")
    with pytest.raises(DataError, match=r"label 9 is out of range for a head of 5 outputs.*"
                                        r"`model.num_outputs` to at least 10"):
        build_model(recipe, build_data(recipe.data))
    recipe = _recipe(f"data.name={HERE}:claims_three_classes")
    with pytest.raises(DataError, match=r"label 3 is out of range for a head of 3 outputs"):
        build_model(recipe, build_data(recipe.data))


def test_unknown_model_name():
    recipe = _recipe("model.name=resnet", "data.max_train_examples=16")
    with pytest.raises(ModelError, match=r"Unknown `model.name` 'resnet'.*'mlp', 'convnet'"):
        build_model(recipe, build_data(recipe.data))


def test_user_model_function():
    recipe = _recipe(f"model.name={HERE}:tiny_model", "data.max_train_examples=16",
                     "model.hidden_units=[8]", "model.input_scaling=auto")
    with pytest.warns(UserWarning, match=r"`model.hidden_units` is ignored"):
        model = build_model(recipe, build_data(recipe.data))
    assert model.output_shape == (None, 10) and model.optimizer is not None


@pytest.mark.parametrize(
    "function, pattern",
    [("wrong_width_model", r"output shape \(None, 11\); expected a single output of width 10"),
     ("not_a_model", r"returned str; expected an uncompiled keras.Model")],
)
def test_user_model_that_does_not_fit_the_data(function, pattern):
    recipe = _recipe(f"model.name={HERE}:{function}", "model.input_scaling=auto",
                     "data.max_train_examples=16")
    with pytest.raises(ModelError, match=pattern):
        build_model(recipe, build_data(recipe.data))


def test_keys_of_the_other_architecture_warn():
    recipe = _recipe("model.filters=[8]", "data.max_train_examples=16", "model.hidden_units=[8]")
    with pytest.warns(UserWarning, match=r"`model.filters` is ignored by model.name='mlp'"):
        build_model(recipe, build_data(recipe.data))
