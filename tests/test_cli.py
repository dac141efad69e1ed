"""The `toolkit` command: user mistakes exit 2 with one line on stderr, bugs keep tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from toolkit.cli import main

HERE = __name__
NO_DETERMINISM = ["--set", "train.deterministic=false"]  # op determinism is process-wide


def nan_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype("float32")
    x[7, 1] = np.nan
    return {"x_train": x, "y_train": np.arange(40) % 3,
            "x_test": x[:10] * 0, "y_test": np.arange(10) % 3}


def five_labels_three_classes():
    rng = np.random.default_rng(0)
    return {"x_train": rng.normal(size=(40, 5)), "y_train": np.arange(40) % 5,
            "x_test": rng.normal(size=(10, 5)), "y_test": np.arange(10) % 5, "num_classes": 3}


def buggy_data():
    raise RuntimeError("a bug in the user's data function")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default run directory is relative: keep it in tmp_path


def _user_error(capsys, argv, pattern):
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("toolkit: error: ")
    assert "Traceback" not in captured.err + captured.out
    assert __import__("re").search(pattern, lines[0]), lines[0]
    return lines[0]


def test_missing_recipe_file(capsys):
    _user_error(capsys, ["train", "missing.toml"],
                r"Cannot find the recipe file 'missing.toml'.*shipped recipes: .*mnist1d_cnn")


def test_malformed_toml(capsys, tmp_path):
    (tmp_path / "bad.toml").write_text("[train]\nsteps = \n")
    _user_error(capsys, ["train", "bad.toml"], r"bad.toml: malformed TOML: .*line 2, column")


def test_unknown_key_lists_valid_keys(capsys, tmp_path):
    (tmp_path / "typo.toml").write_text("[optimizer]\nlearnig_rate = 0.1\n")
    _user_error(capsys, ["train", "typo.toml"],
                r"unknown key 'learnig_rate'. Valid keys: name, learning_rate")


def test_wrong_type(capsys, tmp_path):
    (tmp_path / "typed.toml").write_text("[data]\nbatch_size = \"64\"\n")
    _user_error(capsys, ["train", "typed.toml"],
                r"`data.batch_size` must be an integer. Received: '64' \(str\)")


@pytest.mark.parametrize(
    "override, pattern",
    [("foo", r"Bad override 'foo': expected KEY=VALUE"),
     ("train.steps=abc", r"--set train.steps=abc: `train.steps` must be an integer"),
     ("train.epochs=3", r"--set train.epochs=3: \[train\]: unknown key 'epochs'")],
)
def test_bad_set_expression(capsys, override, pattern):
    _user_error(capsys, ["train", "--set", override], pattern)


def test_unknown_dataset(capsys):
    _user_error(capsys, ["train", "digits_mlp", "--set", "data.name=mnist2d", "--smoke"],
                r"mnist2d.*mnist1d")


def test_unknown_model(capsys):
    _user_error(capsys, ["train", "digits_mlp", "--set", "model.name=resnet", "--smoke"],
                r"Unknown `model.name` 'resnet'")
    _user_error(capsys, ["train", "digits_mlp", "--set", "model.name=nowhere.models:net",
                         "--smoke", "--fresh"],
                r"cannot import module 'nowhere.models'")


def takes_one_argument(size):
    return np.zeros(size)


def test_functions_with_the_wrong_signature(capsys):
    _user_error(capsys, ["train", "digits_mlp", "--set", "model.name=json:dumps", "--smoke"],
                r"`model.name` = 'json:dumps' cannot be called as f\(input_shape, num_outputs, "
                r"\*, adapt_data, seed\) -> keras.Model: too many positional arguments \(its "
                r"signature is \(obj, \*, skipkeys")
    _user_error(capsys, ["train", "digits_mlp", "--smoke", "--set",
                         f"data.name={HERE}:takes_one_argument"],
                r"`data.name` = '.*:takes_one_argument' cannot be called as f\(\) -> dataset: "
                r"missing a required argument: 'size'")


def test_labels_out_of_range_for_the_head(capsys):
    _user_error(capsys, ["train", "digits_mlp", "--set", "model.num_outputs=4", "--smoke"],
                r"label 9 is out of range for a head of 4 outputs.*model.num_outputs")
    _user_error(capsys, ["train", "digits_mlp", "--set",
                         f"data.name={HERE}:five_labels_three_classes", "--smoke", "--fresh"],
                r"label 4 is out of range for a head of 3 outputs")


def test_nan_in_data(capsys):
    line = _user_error(capsys, ["train", "mnist1d_mlp", "--set", f"data.name={HERE}:nan_data",
                                "--smoke"], r"train split: `x` holds nan at row 7")
    assert "isfinite" in line  # the fix is named


def test_run_dir_of_another_recipe_is_refused_and_fresh_starts_over(capsys, tmp_path):
    run_dir = tmp_path / "shared"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("mine")
    _user_error(capsys, ["train", "--run-dir", str(run_dir), "--smoke"],
                r"is not empty and holds no recipe.toml")
    _user_error(capsys, ["train", "--run-dir", str(run_dir), "--smoke", "--fresh"],
                r"is not empty and holds no recipe.toml")
    assert (run_dir / "notes.txt").read_text() == "mine"  # --fresh never deletes a non-run


def test_bug_keeps_its_traceback():
    with pytest.raises(RuntimeError, match="a bug in the user's data function"):
        main(["train", "digits_mlp", "--set", f"data.name={HERE}:buggy_data", "--smoke"])


def test_argparse_errors_and_help(capsys):
    assert main(["train", "--bogus"]) == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "train.steps = 3000" in out and "optimizer.learning_rate = 0.001" in out
    assert "--smoke" in out and "--fresh" in out


def test_smoke_run_writes_the_run_directory_and_continues(capsys, tmp_path):
    argv = ["train", "digits_mlp", "--smoke", *NO_DETERMINISM, "--set", "train.steps=10"]
    assert main(argv) == 0
    run_dir = Path("runs/digits_mlp/smoke")
    out = capsys.readouterr().out
    assert f"Run directory: {run_dir}" in out
    assert f"tensorboard --logdir {run_dir}" in out and "Test metrics: accuracy" in out
    for name in ("recipe.toml", "model.keras", "report.md", "summary.json"):
        assert (run_dir / name).is_file(), name
    assert any(name.startswith("events.out.tfevents") for _, _, files in os.walk(run_dir)
               for name in files)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 10 and summary["examples_seen"] == 640
    assert summary["wall_seconds"] > 0 and 0 <= summary["eval"]["accuracy"] <= 1
    report = (run_dir / "report.md").read_text()
    assert "| accuracy |" in report and "toolkit.lint" in report and "steps = 10" in report

    import toolkit  # noqa: F401  (registers the custom layers)
    model = keras.saving.load_model(run_dir / "model.keras")
    assert model.output_shape == (None, 10)

    # The same command with a larger budget continues on the same run directory.
    assert main(argv[:-1] + ["train.steps=20"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 20
    # Another recipe's settings on that directory are refused, until --fresh.
    _user_error(capsys, argv + ["--set", "optimizer.learning_rate=0.01"],
                r"holds a run of a different recipe "
                r"\(optimizer.learning_rate=0.001->0.01\).*--fresh")
    assert main(argv + ["--set", "optimizer.learning_rate=0.01", "--fresh"]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == 10


def test_python_dash_m_prints_one_line_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "toolkit", "train", "missing.toml"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(
        "toolkit: error: Cannot find the recipe file 'missing.toml'")
