"""tf.distribute: strategy selection, errors, and one device against two replicas (real runs).

The two-replica runs need two logical CPU devices, which TensorFlow can only be given before it
initializes: they run in a subprocess (`equivalence_script.py`). The mirrored kill-and-resume
test lives with the other kill tests (`tests/train/test_resume_kill.py`).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from toolkit.cli import main
from toolkit.distribute import make_strategy
from toolkit.errors import StrategyError

SCRIPT = os.path.join(os.path.dirname(__file__), "equivalence_script.py")


def test_one_device_and_two_replicas_give_the_same_curve_and_recipe_run(tmp_path):
    out = tmp_path / "out.json"
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.run([sys.executable, SCRIPT, str(out), str(tmp_path / "runs")],
                             env=environment, capture_output=True, text=True, timeout=600)
    assert process.returncode == 0, process.stdout + process.stderr
    result = json.loads(out.read_text())
    assert result["replicas"] == 2
    # Same global batches, same weights: equal up to float32 rounding of the all-reduce order
    # (measured: 2e-7 relative over 100 steps).
    np.testing.assert_allclose(result["mirrored"], result["default"], rtol=1e-5)
    default, mirrored = result["recipe-default"], result["recipe-mirrored"]
    assert default["code"] == mirrored["code"] == 0
    np.testing.assert_allclose(mirrored["loss"], default["loss"], rtol=1e-5)
    for key, value in default["eval"].items():
        assert mirrored["eval"][key] == pytest.approx(value, rel=1e-5)


@pytest.mark.parametrize("overrides, environment, message", [
    (["train.strategy=tpu"], {}, 'train.strategy = "tpu" needs a TPU, and none is attached'),
    (["train.strategy=multi_worker"], {}, 'train.strategy = "multi_worker" needs TF_CONFIG'),
    (["train.strategy=multi_worker"], {"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid"),
    (["train.strategy=multi_worker"],
     {"TF_CONFIG": '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "ps", '
                   '"index": 0}}'}, "is not one of its cluster's"),
    (["train.strategy=gpus"], {}, "`train.strategy` must be one of 'auto', 'default'"),
])
def test_a_strategy_that_cannot_start_is_one_line_and_exit_2(
        overrides, environment, message, monkeypatch, capsys, tmp_path):
    monkeypatch.delenv("TPU_NAME", raising=False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    arguments = ["train", "digits_mlp", "--smoke", "--run-dir", str(tmp_path / "run")]
    for override in overrides:
        arguments += ["--set", override]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and "Traceback" not in error, error


def test_make_strategy_names():
    assert make_strategy("default").num_replicas_in_sync == 1
    assert make_strategy("auto").num_replicas_in_sync == 1  # one CPU, no GPU, no TPU
    assert make_strategy("mirrored") is make_strategy("mirrored")  # one per device set
    with pytest.raises(StrategyError, match="Unknown train.strategy 'gpu'. Expected one of"):
        make_strategy("gpu")
