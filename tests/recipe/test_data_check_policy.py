"""`data.check` drives the one value check: error stops, warn warns once per fault, off skips."""

import re
import warnings

import numpy as np
import pytest
import tensorflow as tf

from toolkit.cli import main
from toolkit.data import endless
from toolkit.errors import DataError
from toolkit.recipe import load_recipe
from toolkit.recipe.data_check import check_recipe_data
from toolkit.recipe.heads import build_recipe_model
from toolkit.recipe.inputs import build_inputs

HERE = __name__
FAST = ["train.deterministic=false", "model.hidden_units=[8]"]  # op determinism is process-wide


def nan_rows():
    """Three classes; training row 7 holds a NaN and test row 2 an Inf: two faults."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype("float32")
    x[7, 1] = np.nan
    x[42, 0] = np.inf
    return {"x_train": x[:40], "y_train": np.arange(40) % 3, "x_test": x[40:],
            "y_test": np.arange(10) % 3}


def five_labels_three_classes():
    rng = np.random.default_rng(1)
    return {"x_train": rng.normal(size=(40, 6)).astype("float32"), "y_train": np.arange(40) % 5,
            "x_test": rng.normal(size=(10, 6)).astype("float32"), "y_test": np.arange(10) % 5,
            "num_classes": 3}


def nan_label():
    data = five_labels_three_classes()
    data["y_train"] = (data["y_train"] % 3).astype("float32")
    data["y_train"][4] = np.nan
    data["y_test"] = data["y_test"] % 3
    return {**data, "task": "classification"}


def six_feature_values():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(50, 6)).astype("float32")
    return {"x_train": x[:40], "y_train": x[:40].sum(axis=1), "x_test": x[40:],
            "y_test": x[40:].sum(axis=1)}


def _recipe(policy, name="nan_rows", *overrides):
    return load_recipe("digits_mlp", [f"data.name={HERE}:{name}", f"data.check={policy}",
                                      *FAST, *overrides])


def _load_and_check(recipe):
    """The recipe path up to the training pipeline; returns (inputs, lines, data warnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = build_inputs(recipe, run_dir=None)
        lines = check_recipe_data(inputs, recipe.data.check, recipe.model.input_scaling)
        build_recipe_model(recipe, inputs)
        train = endless(inputs.train, 8, seed=0)
    faults = [str(w.message) for w in caught if re.search(r"holds (nan|inf)", str(w.message))]
    return inputs, train, lines, faults


def test_warn_lets_nan_rows_into_training_with_one_warning_per_fault():
    inputs, train, lines, faults = _load_and_check(_recipe("warn"))
    # Two faults (NaN in the train split, Inf in the test split): two warnings, no more.
    assert len(faults) == 2, faults
    assert re.search(r"nan_rows, train split: error non-finite \[x\]: `x` holds nan at row 7 "
                     r"\(flat column 1\); expected finite numbers", faults[0]), faults
    assert re.search(r"nan_rows, test split: error non-finite \[x\]: `x` holds inf at row 2 "
                     r"\(flat column 0\)", faults[1]), faults
    assert lines == faults  # the same lines go to report.md
    # The NaN row reaches the training pipeline: the source holds it and gathers it.
    x_row = inputs.train.gather(tf.constant([7], tf.int64))[0].numpy()
    assert np.isnan(x_row[0, 1])
    assert np.isnan(inputs.train.tensors[0].numpy()).sum() == 1
    assert train.element_spec[0].shape[-1] == 6


def test_error_stops_at_the_first_fault_with_one_line():
    recipe = _recipe("error")
    inputs = build_inputs(recipe, run_dir=None)
    with pytest.raises(DataError) as raised:
        check_recipe_data(inputs, "error")
    message = str(raised.value)
    assert "\n" not in message
    assert re.match(r"Data check, .*nan_rows, train split: `x` holds nan at row 7 \(flat column "
                    r"1\); expected finite numbers\. .*np\.isfinite\(x\).*\(To train anyway, set "
                    r"data\.check = \"warn\"\.\)$", message), message


def test_off_checks_nothing_and_trains_on_the_data_as_it_is():
    inputs, _, lines, faults = _load_and_check(_recipe("off"))
    assert lines == [] and faults == []
    assert np.isnan(inputs.train.tensors[0].numpy()).sum() == 1


@pytest.mark.parametrize("policy", ["error", "warn", "off"])
def test_a_nan_class_label_gives_one_message_whatever_the_policy(policy):
    # A NaN label indexes no class: like a label out of range it would crash the loss.
    recipe = _recipe(policy, "nan_label")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = build_inputs(recipe, run_dir=None)
        check_recipe_data(inputs, policy, recipe.model.input_scaling)
        with pytest.raises(DataError) as raised:
            build_recipe_model(recipe, inputs)
    assert not [w for w in caught if "holds nan" in str(w.message)]
    assert re.match(r"Dataset '.*nan_label', train split: `y` holds nan at row 4; expected finite "
                    r"numbers\.", str(raised.value)), str(raised.value)


@pytest.mark.parametrize("policy", ["error", "warn", "off"])
def test_labels_outside_the_head_give_one_message_whatever_the_policy(policy):
    recipe = _recipe(policy, "five_labels_three_classes")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inputs = build_inputs(recipe, run_dir=None)
        check_recipe_data(inputs, policy, recipe.model.input_scaling)
        with pytest.raises(DataError) as raised:
            build_recipe_model(recipe, inputs)
    assert not [w for w in caught if "out of range" in str(w.message)]
    message = str(raised.value)
    assert "\n" not in message
    assert re.match(r"Dataset '.*five_labels_three_classes', train split: `y`: label 4 is out of "
                    r"range for a head of 3 outputs \(labels must lie in \[0, 2\]; 16 of 40 "
                    r"examples do not, labels span \[0, 4\]\)\. Remap the labels to 0\.\.2, or "
                    r"set `model.num_outputs` to at least 5\. \(`model.num_outputs` = 0 derives "
                    r"it from the dataset\.\)$", message), message


def test_labels_of_a_head_name_its_source_table():
    recipe = load_recipe("mnist1d_mlp", [
        f"data.sources.cls.name={HERE}:five_labels_three_classes", 
        f"data.sources.sum.name={HERE}:six_feature_values", "data.check=off", *FAST])
    with pytest.raises(DataError, match=r"label 4 is out of range for a head of 3 outputs .*"
                                        r"or set the `num_classes` of the \[data.sources.cls\] "
                                        r"dataset to at least 5\.$"):
        build_recipe_model(recipe, build_inputs(recipe, run_dir=None))


def _user_error(capsys, argv):
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_cli_nan_with_check_error_exits_2_with_one_line(capsys, tmp_path):
    line = _user_error(capsys, [
        "train", "digits_mlp", "--smoke", "--run-dir", str(tmp_path / "run"),
        "--set", f"data.name={HERE}:nan_rows", "--set", "data.check=error",
        "--set", "train.steps=4", "--set", "train.deterministic=false"])
    assert re.search(r"Data check, .*nan_rows, train split: `x` holds nan at row 7", line), line
    assert not (tmp_path / "run" / "model.keras").exists()


def test_cli_labels_out_of_range_exit_2_with_one_line_even_when_checks_are_off(capsys, tmp_path):
    line = _user_error(capsys, [
        "train", "digits_mlp", "--smoke", "--run-dir", str(tmp_path / "run"),
        "--set", f"data.name={HERE}:five_labels_three_classes", "--set", "data.check=off",
        "--set", "train.steps=4", "--set", "train.deterministic=false"])
    assert re.search(r"train split: `y`: label 4 is out of range for a head of 3 outputs.*"
                     r"`model.num_outputs`", line), line
