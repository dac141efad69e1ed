"""A recipe with a growing batch and a decaying, annealed learning rate, SIGKILLed and resumed.

The resumed run equals the uninterrupted one bit for bit: weights, examples seen (the exact sum
of the growing batches), evaluation and every logged loss point.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np

from toolkit.report import read_run

RECIPE = Path(__file__).with_name("schedule_recipe.toml")
TIMEOUT_SECONDS = 240


def _command(run_dir):
    return [sys.executable, "-m", "toolkit", "train", str(RECIPE), "--run-dir", str(run_dir)]


def _environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _train_to_end(run_dir):
    done = subprocess.run(_command(run_dir), env=_environment(), capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr


def _kill_after_checkpoints(run_dir, count, delay_seconds):
    """SIGKILLs the run `delay_seconds` after its `count`-th checkpoint appeared."""
    process = subprocess.Popen(_command(run_dir), env=_environment(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        folder = run_dir / "checkpoints"
        while time.monotonic() < deadline and process.poll() is None:
            if folder.is_dir() and len([p for p in folder.iterdir()
                                        if p.name.startswith("ckpt-")]) >= count:
                break
            time.sleep(0.02)
        time.sleep(delay_seconds)
        killed = process.poll() is None
        process.send_signal(signal.SIGKILL)
        return killed
    finally:
        process.kill()
        process.wait(timeout=60)


def _result(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    weights = keras.saving.load_model(run_dir / "model.keras").get_weights()
    loss = read_run(run_dir).series("loss")
    return summary, weights, loss


def test_a_scheduled_recipe_killed_twice_resumes_bit_for_bit(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _train_to_end(straight)
    chooser = random.Random(1)
    kills = sum(_kill_after_checkpoints(killed, count, chooser.uniform(0.0, 0.3))
                for count in (2, 6))
    assert kills >= 1
    _train_to_end(killed)
    (summary, weights, loss), (summary_k, weights_k, loss_k) = _result(straight), _result(killed)
    assert summary_k["examples_seen"] == summary["examples_seen"] == 40 * (16 + 32 + 64)
    assert summary_k["eval"] == summary["eval"]
    assert summary_k["history"] == summary["history"]
    for a, b in zip(weights, weights_k):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loss.steps, loss_k.steps)
    np.testing.assert_array_equal(loss.values, loss_k.values)
