"""Issue 4's data features in recipes: TFDS, augmentation, shards, data checks, two heads."""

import dataclasses
import json
import os
import re
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from toolkit.cli import main
from toolkit.data import write_shard
from toolkit.errors import DataError, ModelError, RecipeError
from toolkit.recipe import dumps_recipe, load_recipe, recipe_from_dict, run_recipe, smoke_recipe
from toolkit.recipe.augmentations import augmentation_names, build_augment
from toolkit.recipe.heads import build_recipe_model
from toolkit.recipe.inputs import build_inputs
from toolkit.recipe.schema import AugmentStep, DataConfig, SourceConfig

HERE = __name__
FAST = ["train.deterministic=false"]  # op determinism is process-wide: keep it off in tests


def classes_300():
    rng = np.random.default_rng(0)
    return {"x_train": rng.normal(size=(64, 6)).astype("float32"), "y_train": np.arange(64) % 3,
            "x_test": rng.normal(size=(300, 6)).astype("float32"), "y_test": np.arange(300) % 3}


def values_100():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(164, 6)).astype("float32")
    return {"x_train": x[:64], "y_train": x[:64].sum(axis=1), "x_test": x[64:],
            "y_test": x[64:].sum(axis=1)}


def constant_column():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 5)).astype("float32")
    x[:, 3] = 7.0
    return {"x_train": x[:60], "y_train": np.arange(60) % 2, "x_test": x[60:],
            "y_test": np.arange(20) % 2}


def _two_sources(*overrides):
    return load_recipe("mnist1d_mlp", [
        f"data.sources.cls.name={HERE}:classes_300", f"data.sources.reg.name={HERE}:values_100",
        "data.sources.reg.weight=3", "model.hidden_units=[8]", *FAST, *overrides])


@pytest.mark.parametrize("name", ["two_tasks", "mnist1d_cnn_augmented", "mnist_tfds",
                                  "cifar10_tfds"])
def test_new_recipes_ship_with_a_command_result_and_time_header(name):
    from toolkit.recipe import resolve_recipe

    comment = "\n".join(line for line in resolve_recipe(name).read_text().splitlines()
                        if line.startswith("#"))
    assert f"toolkit train {name}" in comment and "2-core" in comment
    assert re.search(r"Expected: .*\d", comment)


# --- keys: defaults, parsing, round trip ------------------------------------------------------

def test_new_data_keys_have_safe_defaults():
    config = DataConfig()
    assert (config.split, config.eval_split, config.data_dir, config.in_memory) == (
        "train", "test", "", "auto")
    assert (config.download, config.augment, config.shards_dir, config.sources) == (
        False, (), "", ())
    assert (config.rescan_every_steps, config.check) == (1000, "error")


def test_augment_and_sources_parse_and_round_trip(tmp_path):
    recipe = load_recipe("mnist1d_cnn", [
        'data.augment=[{name="random_shift", max_shift=3, mode="zeros"}, '
        '{name="gaussian_noise", stddev=0.05}]',
        "data.sources.digit.name=mnist1d", "data.sources.where.name=mnist1d_position",
        "data.sources.where.weight=2", "data.in_memory=false", "data.check=warn"])
    assert recipe.data.augment == (
        AugmentStep("random_shift", (("max_shift", 3), ("mode", "zeros"))),
        AugmentStep("gaussian_noise", (("stddev", 0.05),)))
    assert recipe.data.sources == (SourceConfig("digit", "mnist1d", 1.0),
                                   SourceConfig("where", "mnist1d_position", 2.0))
    assert recipe.data.in_memory is False and recipe.data.check == "warn"
    text = dumps_recipe(recipe)
    assert "[data.sources.where]" in text and '{ name = "random_shift"' in text
    (tmp_path / "again.toml").write_text(text)
    assert load_recipe(tmp_path / "again.toml") == recipe


def test_augment_builds_a_stateless_composed_function():
    import tensorflow as tf

    assert load_recipe("mnist1d_cnn_augmented").data.augment == (
        AugmentStep("random_shift", (("max_shift", 1), ("mode", "reflect"))),)
    steps = load_recipe("mnist1d_cnn", [
        'data.augment=[{name="random_shift", max_shift=2}, {name="random_scale", '
        'min_factor=0.9, max_factor=1.1}, {name="gaussian_noise", stddev=0.05}]']).data.augment
    assert [step.name for step in steps] == ["random_shift", "random_scale", "gaussian_noise"]
    fn = build_augment(steps)
    x = tf.random.stateless_normal((4, 40), (0, 1))
    seed = tf.constant([3, 7], tf.int64)
    np.testing.assert_array_equal(fn(x, seed), fn(x, seed))  # a pure function of the seed
    assert not np.array_equal(fn(x, seed), fn(x, tf.constant([3, 8], tf.int64)))
    assert set(augmentation_names()) == {"random_shift", "random_scale", "gaussian_noise",
                                         "random_flip", "random_crop", "random_brightness"}


@pytest.mark.parametrize("value, pattern", [
    ('[{name="flip"}]', r"`data.augment\[0\]` names an unknown augmentation 'flip'\. Valid names: "
                        r"random_shift, .*Did you mean 'random_flip'\?"),
    ('[{name="random_shift", shift=4}]',
     r"`data.augment\[0\]` \(random_shift\): unknown argument 'shift'\. Its arguments are "
     r"max_shift, mode .*Did you mean 'max_shift'\?"),
    ('[{name="random_shift"}]', r"missing a required argument: 'max_shift'"),
    ('[{name="gaussian_noise", stddev=-1.0}]', r"`gaussian_noise` needs stddev >= 0\. Received"),
    ('[{name="random_shift", max_shift=2}, {max_shift=2}]', r"`data.augment\[1\]` needs a `name`"),
    ('"random_shift:4"', r"`data.augment` must be a list of tables such as"),
])
def test_bad_augmentations_are_recipe_errors(value, pattern):
    with pytest.raises(RecipeError, match=pattern):
        load_recipe("mnist1d_cnn", [f"data.augment={value}"])


@pytest.mark.parametrize("override, pattern", [
    ("data.sources.digit.wieght=2", r"\[data.sources.digit\]: unknown key 'wieght'. Valid keys: "
                                    r"name, weight. Did you mean 'weight'\?"),
    ("data.sources.digit.weight=2", r"`name` must name a dataset"),
    ("data.sources.2nd.name=digits", r"head name '2nd' must start with a letter"),
    ("data.sources=3", r"`data.sources` must hold one table per head"),
    ("data.sources.digit=3", r"is not a key. Only \[data.sources.<head>\] tables take dotted keys"),
    ("data.in_memory=yes", r"`data.in_memory` must be one of 'auto', true, false. Received: 'yes'"),
    ("data.in_memory=3", r"`data.in_memory` must be true, false or a string"),
    ("data.check=strict", r"`data.check` must be one of 'error', 'warn', 'off'"),
    ("data.rescan_every_steps=0", r"`data.rescan_every_steps` must be >= 1"),
    ("model.sources.x.name=a", r"\[model\]: unknown key 'sources'. Valid keys: name, "),
    ("model.hidden_units.x=1", r"'model.hidden_units.x' is not a key. Only \[data.sources"),
])
def test_bad_source_tables_and_keys_are_recipe_errors(override, pattern):
    with pytest.raises(RecipeError, match=pattern):
        load_recipe("mnist1d_cnn", [override])


@pytest.mark.parametrize("weight", ["0", "-1.5", "inf", "true", '"1"'])
def test_source_weight_must_be_a_positive_number(weight):
    with pytest.raises(RecipeError, match=r"^--set data.sources.position.weight=.*: "
                                          r"\[data.sources.position\]: `weight` must be a "
                                          r"positive number"):
        load_recipe("two_tasks", [f"data.sources.position.weight={weight}"])


def test_unknown_data_key_still_lists_the_valid_keys():
    with pytest.raises(RecipeError, match=r"unknown key 'augmentation'. Valid keys: name, .*"
                                          r"augment, shards_dir, rescan_every_steps, check, "
                                          r"sources"):
        recipe_from_dict({"data": {"augmentation": []}})


def test_data_name_is_ignored_with_a_warning_when_sources_name_the_data():
    recipe = load_recipe("digits_mlp", [f"data.sources.a.name={HERE}:classes_300"])
    with pytest.warns(UserWarning, match=r"`data.name` = 'digits' is ignored: the "
                                         r"\[data.sources.<head>\] tables name the datasets"):
        inputs = build_inputs(recipe, run_dir=None)
    assert list(inputs.heads) == ["a"] and inputs.heads["a"].x_train.shape == (64, 6)


@pytest.mark.parametrize("overrides, pattern", [
    (["data.split=train[:10]"], r"`data.split` is only read for TFDS datasets"),
    (["data.name=mnist1d", "data.shards_dir=/tmp", "data.sources.a.name=digits"],
     r"`data.shards_dir` cannot be mixed with \[data.sources\]"),
])
def test_contradicting_data_keys_are_recipe_errors(overrides, pattern):
    with pytest.raises(RecipeError, match=pattern):
        build_inputs(load_recipe("digits_mlp", overrides), run_dir=None)


# --- two sources, two heads, two losses ---------------------------------------------------------

def test_mixed_evaluation_gives_each_head_its_exact_test_mean():
    recipe = _two_sources()
    inputs = build_inputs(recipe, run_dir=None)
    assert inputs.multi_head and inputs.train.shares == {"cls": 0.25, "reg": 0.75}
    model = build_recipe_model(recipe, inputs)
    metrics = inputs.evaluate(model, batch_size=64)  # 400 examples: padded to two batches of 256
    cls, reg = classes_300(), values_100()
    logits = model.predict(cls["x_test"], verbose=0)["cls"]
    values = model.predict(reg["x_test"], verbose=0)["reg"][:, 0]
    expected_ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(
        cls["y_test"], logits)
    np.testing.assert_allclose(metrics["cls_loss"], float(expected_ce), rtol=1e-4)
    np.testing.assert_allclose(metrics["reg_loss"], np.mean((values - reg["y_test"]) ** 2),
                               rtol=1e-4)
    np.testing.assert_allclose(metrics["cls_accuracy"],
                               np.mean(logits.argmax(axis=1) == cls["y_test"]), rtol=1e-5)
    np.testing.assert_allclose(metrics["reg_mae"], np.mean(np.abs(values - reg["y_test"])),
                               rtol=1e-4)


def test_head_named_like_a_trunk_layer_is_a_model_error():
    recipe = load_recipe("two_tasks", ["data.sources.inputs.name=mnist1d", "model.filters=[4]"])
    with pytest.raises(ModelError, match=r"Head name 'inputs' .* is already a layer"):
        build_recipe_model(recipe, build_inputs(recipe, run_dir=None))


def test_two_tasks_logs_both_losses_on_the_four_axes(tmp_path):
    recipe = smoke_recipe(load_recipe("two_tasks", FAST))
    result = run_recipe(recipe, tmp_path / "run", verbose=0)
    assert set(result.summary["eval"]) == {"loss", "digit_loss", "digit_accuracy",
                                           "position_loss", "position_mae"}
    assert result.summary["dataset"] == "digit=mnist1d, position=mnist1d_position"
    for run in ("train", "validation"):  # validation tags drop Keras's `val_` prefix
        events = EventAccumulator(str(tmp_path / "run" / run)).Reload()
        tags = set(events.Tags()["scalars"]) | set(events.Tags().get("tensors", []))
        for head_loss in ("digit_loss", "position_loss"):
            # Against steps (event step) and examples seen (by_examples/); each event also
            # carries its wall time, and train/ holds the epoch-equivalents.
            assert {head_loss, f"by_examples/{head_loss}"} <= tags, (run, tags)
    train = EventAccumulator(str(tmp_path / "run" / "train")).Reload()
    steps = [event.step for event in _scalars(train, "position_loss")]
    assert steps == [5, 10, 15, 20]  # logged every 5 steps of the smoke budget
    assert "epochs" in set(train.Tags()["scalars"]) | set(train.Tags().get("tensors", []))
    loaded = keras.saving.load_model(tmp_path / "run" / "model.keras")
    predictions = loaded.predict(np.zeros((2, 40), "float32"), verbose=0)
    assert {k: v.shape for k, v in predictions.items()} == {"digit": (2, 10), "position": (2, 1)}


def _scalars(events, tag):
    if tag in events.Tags()["scalars"]:
        return events.Scalars(tag)
    return events.Tensors(tag)


# --- TFDS -------------------------------------------------------------------------------------

def test_mnist_tfds_smoke_runs_through_the_cli_on_mock_data(tmp_path, capsys):
    # cifar10_tfds runs the same way in tests/recipe/test_recipe_run.py (every shipped recipe).
    with tfds.testing.mock_data(num_examples=48):
        code = main(["train", "mnist_tfds", "--smoke", "--run-dir", str(tmp_path / "run"),
                     "--set", "train.deterministic=false"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 20 and set(summary["eval"]) == {"loss", "accuracy"}
    assert summary["dataset"] == "tfds:mnist"
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    assert model.input_shape == (None, 28, 28, 1)
    # uint8 pixels are standardized by the model's own first layer (S2.7).
    assert type(model.get_layer("input_scaling")).__name__ == "Normalization"


class ToolkitRecipeImages(tfds.core.GeneratorBasedBuilder):
    """A tiny real TFDS dataset, prepared as ArrayRecord (random access, no mocking)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(6, 6, 1)),
            "label": tfds.features.ClassLabel(num_classes=3)})
        return tfds.core.DatasetInfo(builder=self, features=features,
                                     supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(30), "test": self._generate_examples(9)}

    def _generate_examples(self, count):
        for i in range(count):
            image = ((np.arange(36).reshape(6, 6, 1) * (i + 1)) % 251).astype(np.uint8)
            yield i, {"image": image, "label": i % 3}


def test_tfds_random_access_trains_from_a_prepared_array_record_split(tmp_path):
    ToolkitRecipeImages(data_dir=str(tmp_path / "tfds"),
                        file_format="array_record").download_and_prepare()
    recipe = smoke_recipe(load_recipe("mnist_tfds", [
        "data.name=tfds:toolkit_recipe_images", f"data.data_dir={tmp_path / 'tfds'}",
        "data.in_memory=false", "data.batch_size=8", "model.filters=[4]", *FAST]))
    inputs = build_inputs(recipe, run_dir=None)
    assert type(inputs.train).__name__ == "TfdsSource" and inputs.dataset_size == 30
    assert inputs.heads[""].num_classes == 3 and inputs.heads[""].x_train.shape == (30, 6, 6, 1)
    result = run_recipe(recipe, tmp_path / "run", verbose=0)
    assert result.summary["steps"] == 20 and result.summary["examples_seen"] == 160
    smaller = build_inputs(dataclasses.replace(
        recipe, data=dataclasses.replace(recipe.data, max_train_examples=12)), run_dir=None)
    assert smaller.dataset_size == 12 and smaller.heads[""].x_train.shape == (12, 6, 6, 1)


def test_unprepared_tfds_dataset_is_a_one_line_data_error(tmp_path):
    recipe = load_recipe("mnist_tfds", [f"data.data_dir={tmp_path}"])
    with pytest.raises(DataError, match=r"Prepare it once with `tfds build mnist`"):
        build_inputs(recipe, run_dir=None)


# --- growing shards -----------------------------------------------------------------------------

def test_shards_dir_trains_on_the_directory_and_records_its_manifest(tmp_path):
    from toolkit.data import load

    digits = load("digits")
    shards = tmp_path / "shards"
    shards.mkdir()
    write_shard(str(shards / "day1.npz"), (digits.x_train[:100], digits.y_train[:100]))
    write_shard(str(shards / "day2.npz"), (digits.x_train[100:160], digits.y_train[100:160]))
    (shards / "day3.npz.partial").write_bytes(b"half written")
    recipe = smoke_recipe(load_recipe("digits_mlp", [
        f"data.shards_dir={shards}", "data.rescan_every_steps=10", *FAST]))
    _age(shards)
    result = run_recipe(recipe, tmp_path / "run", verbose=0)
    manifest = [json.loads(line) for line in (tmp_path / "run" / "shards.jsonl").open()]
    assert manifest[0]["num_examples"] == 160
    assert sorted(entry["name"] for entry in manifest[0]["added"]) == ["day1.npz", "day2.npz"]
    assert result.summary["dataset"].endswith("(shards)") and result.summary["epochs"] is None
    assert set(result.summary["eval"]) == {"loss", "accuracy"}


def test_shards_of_another_shape_than_the_test_split_are_a_data_error(tmp_path):
    write_shard(str(tmp_path / "a.npz"), (np.zeros((5, 3), "float32"), np.zeros(5, "int64")))
    recipe = load_recipe("digits_mlp", [f"data.shards_dir={tmp_path}"])
    _age(tmp_path)
    with pytest.raises(DataError, match=r"hold examples of shape \(3,\), but the test split of "
                                        r"`data.name` = 'digits' has \(64,\)"):
        build_inputs(recipe, run_dir=None)


def _age(directory):
    """Backdates the shards: files younger than `min_age_seconds` count as being written."""
    past = time.time() - 60
    for path in directory.iterdir():
        os.utime(path, (past, past))


# --- data check -------------------------------------------------------------------------------

def test_constant_feature_is_warned_and_reported(tmp_path):
    recipe = smoke_recipe(load_recipe("digits_mlp", [f"data.name={HERE}:constant_column", *FAST]))
    with pytest.warns(UserWarning, match=r"constant-feature \[x\[:, 3\]\]"):
        run_recipe(recipe, tmp_path / "run", verbose=0)
    report = (tmp_path / "run" / "report.md").read_text()
    section = report.split("## Data check (toolkit.data.check)")[1].split("##")[0]
    assert re.search(r"- .*constant_column, train split: warning constant-feature \[x\[:, 3\]\]: "
                     r"1 of 5 features of `x` are constant", section), section
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert any("constant-feature" in line for line in summary["data_check"])


def test_data_check_off_skips_the_check_and_the_report_section(tmp_path):
    recipe = smoke_recipe(load_recipe("digits_mlp", [
        f"data.name={HERE}:constant_column", "data.check=off", *FAST]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_recipe(recipe, tmp_path / "run", verbose=0)
    assert not [w for w in caught if "constant-feature" in str(w.message)]
    assert "## Data check" not in (tmp_path / "run" / "report.md").read_text()


# --- the command line: user mistakes exit 2 with one line -------------------------------------

def _user_error(capsys, argv, pattern):
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert re.search(pattern, lines[0]), lines[0]


def test_cli_unknown_augmentation_is_one_line(capsys, tmp_path):
    _user_error(capsys, ["train", "mnist1d_cnn", "--smoke", "--run-dir", str(tmp_path), "--set",
                         'data.augment=[{name="random_rotate", degrees=10}]'],
                r"^toolkit: error: --set data.augment=.*: `data.augment\[0\]` names an unknown "
                r"augmentation 'random_rotate'. Valid names: random_shift, random_scale")


def test_cli_nan_in_growing_shards_stops_at_the_data_check(capsys, tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 64)).astype("float32")
    x[5, 2] = np.inf
    write_shard(str(tmp_path / "day1.npz"), (x, np.arange(40) % 10))
    _age(tmp_path)
    _user_error(capsys, ["train", "digits_mlp", "--smoke", "--run-dir", str(tmp_path / "run"),
                         "--set", f"data.shards_dir={tmp_path}"],
                r"Data check, .*\(shards\), train split: `x` holds inf at row 5 \(flat column "
                r"2\); expected finite numbers.*set data.check = \"warn\"")
    assert not (tmp_path / "run" / "model.keras").exists()


def test_cli_labels_out_of_range_stop_even_when_checks_only_warn(capsys, tmp_path):
    # Labels outside the head would crash the loss: that is checked against the model's head,
    # whatever data.check says.
    _user_error(capsys, ["train", "digits_mlp", "--smoke", "--run-dir", str(tmp_path), "--set",
                         "model.num_outputs=5", "--set", "data.check=warn"],
                r"train split: `y`: label 9 is out of range for a head of 5 outputs.*"
                r"`model.num_outputs`")


def test_cli_wrong_type_for_a_new_key_lists_the_expected_type(capsys, tmp_path):
    _user_error(capsys, ["train", "--smoke", "--run-dir", str(tmp_path), "--set",
                         "data.rescan_every_steps=often"],
                r"`data.rescan_every_steps` must be an integer. Received: 'often'")
