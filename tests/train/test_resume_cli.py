"""Resuming through the `toolkit train` command: other recipes, damaged checkpoints, SIGTERM."""

import hashlib
import json
import os
import re
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest

from toolkit.checkpoint.run_lock import LOCK_FILE

from toolkit.cli import main

# In-process runs leave op determinism off (it is process-wide and irreversible).
BASE = ["train", "digits_mlp", "--smoke", "--set", "train.deterministic=false"]
WALL_TIME_KEYS = ("wall_seconds", "command_seconds")


def _snapshot(run_dir, skip=()):
    """Every file of the run directory but its lock (holder info): (mtime, sha1) by path."""
    skip = (*skip, LOCK_FILE)
    files = {}
    for root, _, names in os.walk(run_dir):
        for name in names:
            path = os.path.join(root, name)
            relative = os.path.relpath(path, run_dir)
            if relative not in skip:
                with open(path, "rb") as file:
                    files[relative] = (os.stat(path).st_mtime_ns, hashlib.sha1(file.read()).digest())
    return files


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("toolkit: error:")]
    assert len(errors) == 1, err
    return errors[0]


def test_run_dir_of_another_model_is_refused_and_nothing_is_overwritten(capsys, tmp_path):
    run_dir = str(tmp_path / "run")
    argv = BASE + ["--run-dir", run_dir]
    assert main(argv + ["--set", "model.hidden_units=[16]"]) == 0
    before = _snapshot(run_dir)
    assert "summary.json" in before and any(p.startswith("checkpoints") for p in before)

    # Another model shape: the recipe check refuses it before anything is built.
    assert main(argv + ["--set", "model.hidden_units=[32]"]) == 2
    line = _one_error_line(capsys)
    assert "holds a run of a different recipe (model.hidden_units=(16,)->(32,))" in line
    assert "--fresh" in line
    assert _snapshot(run_dir) == before

    # The recipe file was replaced by the other model's: the checkpoint's shapes refuse it.
    recipe_file = os.path.join(run_dir, "recipe.toml")
    with open(recipe_file) as file:
        text = file.read()
    with open(recipe_file, "w") as file:
        file.write(re.sub(r"hidden_units = \[[^\]]*\]", "hidden_units = [32]", text))
    assert main(argv + ["--set", "model.hidden_units=[32]", "--set", "train.steps=20"]) == 2
    line = _one_error_line(capsys)
    assert "does not match the model: model variable `dense_block_0/kernel` has shape (64, 32)" in line
    assert "but (64, 16)" in line and "--fresh" in line
    assert _snapshot(run_dir, skip={"recipe.toml"}) == {
        path: value for path, value in before.items() if path != "recipe.toml"}


def test_truncated_newest_checkpoint_falls_back_and_the_run_completes(capsys, tmp_path):
    run_dir = tmp_path / "run"
    argv = BASE + ["--run-dir", str(run_dir), "--set", "train.checkpoint_every_steps=5"]
    assert main(argv + ["--set", "train.steps=10"]) == 0
    newest = run_dir / "checkpoints" / "ckpt-00000010"
    assert (run_dir / "checkpoints" / "ckpt-00000005").is_dir() and newest.is_dir()
    data_file = newest / "variables.data-00000-of-00001"
    with open(data_file, "r+b") as file:
        file.truncate(os.path.getsize(data_file) // 2)

    with pytest.warns(UserWarning, match=r"Skipping damaged checkpoint: .*ckpt-00000010"):
        assert main(argv + ["--set", "train.steps=20"]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["examples_seen"] == 20 * 64
    assert summary["history"]["steps"] == [10, 20]  # Step 10's point was logged again.
    assert np.isfinite(summary["eval"]["loss"])
    # Steps 5 to 10 were trained again and step 10 is a good checkpoint once more.
    from toolkit.checkpoint.files import verify_checkpoint

    assert verify_checkpoint(str(newest))["step"] == 10


# A real `toolkit train` process stopped with SIGTERM, resumed by the same command.
CLI_SETTINGS = ["--set", "data.max_train_examples=256", "--set", "data.max_eval_examples=128",
                "--set", "data.batch_size=16", "--set", "model.hidden_units=[16]",
                "--set", "train.steps=400", "--set", "train.eval_every_steps=100",
                "--set", "train.log_every_steps=10", "--set", "train.checkpoint_every_steps=20"]


# The CLI's own `main`, paused right after the step-20 checkpoint until the test says go on:
# the test sends SIGTERM while it waits, with no timing window.
PAUSING_CLI = """
import sys
from toolkit.checkpoint import files
from toolkit.cli import main

write = files.write_checkpoint

def pausing_write(directory, step, *args, **kwargs):
    path = write(directory, step, *args, **kwargs)
    if step == 20 and not getattr(pausing_write, "paused", False):
        pausing_write.paused = True
        print("SAVED 20", flush=True)
        sys.stdin.readline()
    return path

files.write_checkpoint = pausing_write
sys.exit(main(sys.argv[1:]))
"""


def _cli(run_dir, wait=True):
    program = ["-m", "toolkit"] if wait else ["-c", PAUSING_CLI]
    command = [sys.executable, *program, "train", "digits_mlp", "--run-dir", str(run_dir),
               *CLI_SETTINGS]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.PIPE, text=True)
    if not wait:
        return process
    out, err = process.communicate(timeout=300)
    return process.returncode, out + err


def _results(run_dir):
    import toolkit  # noqa: F401  (registers the custom layers)

    summary = json.loads((run_dir / "summary.json").read_text())
    for key in WALL_TIME_KEYS:
        summary.pop(key)
    model = keras.saving.load_model(run_dir / "model.keras")
    variables = [np.asarray(v) for v in model.variables + model.optimizer.variables]
    return summary, variables


def test_sigterm_on_the_command_checkpoints_and_the_rerun_matches_an_uninterrupted_run(tmp_path):
    code, output = _cli(tmp_path / "reference")
    assert code == 0, output
    expected_summary, expected_variables = _results(tmp_path / "reference")

    run_dir = tmp_path / "run"
    process = _cli(run_dir, wait=False)
    for line in process.stdout:
        if line.startswith("SAVED 20"):
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate("go on\n", timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, out + err
    assert "run the same command again" in err and "Traceback" not in err
    assert not (run_dir / "summary.json").exists()
    stopped_at = max(int(name.split("-")[1]) for name in os.listdir(run_dir / "checkpoints"))
    assert stopped_at == 20  # Saved at the first step boundary after the signal.

    code, output = _cli(run_dir)
    assert code == 0, output
    summary, variables = _results(run_dir)
    assert summary == expected_summary
    assert len(variables) == len(expected_variables)
    for got, expected in zip(variables, expected_variables):
        assert np.array_equal(got, expected)
