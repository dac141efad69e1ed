"""`train.strategy = "multi_worker"`: refused, because Keras's `fit` fails under two workers.

The refusal is checked in-process and through the CLI. `multi_worker_script.py` runs as two real
worker processes on 127.0.0.1 (one `TF_CONFIG` task each): they join one
`MultiWorkerMirroredStrategy`, `check_strategy` and `toolkit.fit` refuse it, and plain
`Model.fit` still fails there with keras-team/keras#20585's error. When a Keras release trains
under it, `test_plain_keras_fit_still_fails_under_two_workers` fails: lift the refusal then.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

from toolkit.cli import main
from toolkit.distribute import check_strategy, make_strategy
from toolkit.errors import StrategyError

SCRIPT = os.path.join(os.path.dirname(__file__), "multi_worker_script.py")
REFUSED = re.escape('train.strategy = "multi_worker" is not supported: Keras ')
ALTERNATIVE = 'keras-team/keras#20585, tensorflow/tensorflow#72388). Train on one machine with ' \
              'train.strategy = "mirrored"'
WORKER_SECONDS = 150  # Both workers together took 25-45 s on a shared 2-core CPU.


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                       "task": {"type": "worker", "index": index}})


def test_make_strategy_refuses_multi_worker_with_a_valid_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", _tf_config(_free_ports(2), 0))
    with pytest.raises(StrategyError, match=REFUSED + r"3\.[0-9.]+ `Model.fit` fails under "):
        make_strategy("multi_worker")


def test_cli_refuses_multi_worker_in_one_line_and_exit_2(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TF_CONFIG", _tf_config(_free_ports(2), 1))
    run_dir = tmp_path / "run"
    code = main(["train", "digits_mlp", "--smoke", "--run-dir", str(run_dir),
                 "--set", "train.strategy=multi_worker", "--set", "train.steps=20"])
    error = capsys.readouterr().err
    assert code == 2, error
    assert ALTERNATIVE in error and error.count("\n") == 1 and "Traceback" not in error, error
    assert not (run_dir / "recipe.toml").exists()  # Refused before anything was written.


def test_check_strategy_passes_one_process_strategies():
    assert check_strategy(make_strategy("default")) is None
    assert check_strategy(make_strategy("mirrored")) is None


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Runs two workers on loopback; every process is killed on the way out, whatever happens."""
    root = tmp_path_factory.mktemp("multi_worker")
    ports = _free_ports(2)
    processes = []
    try:
        for index in range(2):
            environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                               TF_CONFIG=_tf_config(ports, index))
            processes.append(subprocess.Popen(
                [sys.executable, SCRIPT, str(root / f"worker{index}.json")], env=environment,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True))
        outputs = [process.communicate(timeout=WORKER_SECONDS)[0] for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return [json.loads((root / f"worker{index}.json").read_text()) for index in range(2)]


def _assert_refused(error):
    kind, message = error
    assert kind == "StrategyError" and re.match(REFUSED, message) and ALTERNATIVE in message, error


def test_two_workers_join_one_strategy_and_the_toolkit_refuses_it(workers):
    for result in workers:
        assert result["replicas"] == 2  # One CPU replica per worker: the cluster formed.
        _assert_refused(result["make_strategy"])
        _assert_refused(result["check_strategy"])


def test_toolkit_fit_refuses_a_model_built_under_two_workers(workers):
    # Not Keras's "Attempt to convert a value (PerReplica...)" from inside its `fit`.
    for result in workers:
        _assert_refused(result["toolkit_fit"])


def test_plain_keras_fit_still_fails_under_two_workers(workers):
    # keras-team/keras#20585: `_maybe_symbolic_build` hands the (x, y) batch to
    # `strategy.reduce`, which cannot reduce a nest across workers.
    for result in workers:
        kind, message = result["keras_fit"] or [None, "Model.fit trained: lift the refusal"]
        assert kind == "ValueError" and "PerReplica" in message, message
