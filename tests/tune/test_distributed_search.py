"""`toolkit tune` as KerasTuner's distributed search: a chief and two workers on 127.0.0.1.

KerasTuner (1.4) runs a search distributed when every process has `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT` and `KERASTUNER_TUNER_ID`: the process whose id holds "chief" serves
the oracle over gRPC and runs no trial; the others ("tuner0", "tuner1") ask it for trials until
it answers STOPPED. The chief's server loop returns once a worker was told to stop and every
worker that asked has been told so with no trial running; it checks that every 20 s, so it exits
up to 20 s after the last worker. All the processes share one search directory.
"""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from toolkit.checkpoint.run_lock import RunLock
from toolkit.errors import RecipeError


# The digits_mlp recipe with a search space (`--set` cannot set `tune.space`).
RECIPE = textwrap.dedent("""\
    name = "digits_mlp_distributed"

    [data]
    name = "digits"
    batch_size = 64

    [model]
    name = "mlp"
    hidden_units = [128, 128]
    input_scaling = "tanh"

    [optimizer]
    name = "adam"
    learning_rate = 1e-3

    [train]
    steps = 1500
    eval_every_steps = 250
    seed = 0

    [tune.space]
    "optimizer.learning_rate" = {min = 1e-3, max = 1e-2, sampling = "log"}
""")
OVERRIDES = ["data.validation_examples=100", "data.max_train_examples=400", "train.steps=20",
             "train.eval_every_steps=10", "train.deterministic=false", "tune.tuner=random",
             "tune.max_trials=4"]
NUM_TRIALS = 4
WORKERS = ("tuner0", "tuner1")
# A bound for a loaded CI machine: the search takes about 40 s on 2 idle cores, 85 s on 2
# cores shared with other runs (load average 5 to 8).
TIMEOUT_SECONDS = 180
TRIAL_LINE = re.compile(r"^Trial (\d+)\b", re.MULTILINE)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(tuner_id, port, recipe_path, search_dir, log_dir):
    """Starts `toolkit tune` as `tuner_id`; its stdout and stderr go to files (no pipe fills)."""
    environment = dict(os.environ, CUDA_VISIBLE_DEVICES="", KERASTUNER_TUNER_ID=tuner_id,
                       KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=str(port))
    overrides = [argument for key in OVERRIDES for argument in ("--set", key)]
    out, err = log_dir / f"{tuner_id}.out", log_dir / f"{tuner_id}.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "toolkit", "tune", str(recipe_path), *overrides,
             "--run-dir", str(search_dir)],
            cwd=log_dir, env=environment, stdout=stdout, stderr=stderr,
        )


def _run_search(tmp_path):
    """Runs the chief and two workers to their ends.

    Returns `({tuner_id: (exit status, stdout)}, search directory, every output to show)`.
    """
    recipe_path = tmp_path / "recipe.toml"
    recipe_path.write_text(RECIPE)
    search_dir = tmp_path / "search"
    port = _free_port()
    processes = {}
    try:
        # The workers first: each waits for the chief's oracle before it writes anything.
        for tuner_id in (*WORKERS, "chief"):
            processes[tuner_id] = _start(tuner_id, port, recipe_path, search_dir, tmp_path)
        deadline = time.monotonic() + TIMEOUT_SECONDS
        # Until all end, one fails (the others would wait for it, a worker up to an hour for a
        # chief that is gone), or the deadline; the assertions then show every output.
        while time.monotonic() < deadline:
            statuses = [process.poll() for process in processes.values()]
            if None not in statuses or any(status for status in statuses):
                break
            time.sleep(0.5)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = {tuner_id: ((tmp_path / f"{tuner_id}.out").read_text(),
                       (tmp_path / f"{tuner_id}.err").read_text()) for tuner_id in processes}
    shown = "\n".join(f"--- {tuner_id} (exit {processes[tuner_id].returncode}):\n{out}\n"
                      f"{err[-3000:]}" for tuner_id, (out, err) in logs.items())
    return {tuner_id: (processes[tuner_id].returncode, logs[tuner_id][0])
            for tuner_id in processes}, search_dir, shown


def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    ended, search_dir, shown = _run_search(tmp_path)
    assert all(status == 0 for status, _ in ended.values()), shown

    # The chief's oracle recorded every trial, each completed once.
    trial_files = sorted(search_dir.glob("trial_*/trial.json"))
    states = [json.loads(path.read_text()) for path in trial_files]
    assert sorted(state["trial_id"] for state in states) == [str(i) for i in range(NUM_TRIALS)]
    assert {state["status"] for state in states} == {"COMPLETED"}, shown
    for state in states:
        summary = json.loads((search_dir / "runs" / f"trial_{state['trial_id']}" /
                              "summary.json").read_text())
        assert summary["steps"] == 20

    # Each worker ran at least one trial, no trial ran on both, and each says which it ran.
    ran = {}
    for tuner_id in WORKERS:
        stdout = ended[tuner_id][1]
        ran[tuner_id] = TRIAL_LINE.findall(stdout)
        assert ran[tuner_id], shown
        reported = re.search(rf"^Worker {tuner_id} of the distributed search of "
                             rf"'digits_mlp_distributed' is done: ran trials ([\d, ]+) \(",
                             stdout, re.MULTILINE)
        assert reported and reported.group(1).split(", ") == sorted(ran[tuner_id]), shown
    assert sorted(ran["tuner0"] + ran["tuner1"]) == [str(i) for i in range(NUM_TRIALS)], shown

    # The chief ran no trial, exited by itself once the workers were done, wrote search.json
    # with every trial, and let go of the search directory.
    chief_stdout = ended["chief"][1]
    assert not TRIAL_LINE.search(chief_stdout), shown
    assert (f"Finished the search of 'digits_mlp_distributed': {NUM_TRIALS} trials, "
            f"{NUM_TRIALS * 20} optimizer steps") in chief_stdout, shown
    results = json.loads((search_dir / "search.json").read_text())
    assert sorted(trial["trial_id"] for trial in results["trials"]) == [
        str(i) for i in range(NUM_TRIALS)]
    assert results["optimizer_steps"] == NUM_TRIALS * 20
    assert RunLock.holder(search_dir) is None
    # KerasTuner's own state: the chief's and each worker's tuner file beside oracle.json.
    assert {"chief.json", "tuner0.json", "tuner1.json", "oracle.json"} <= {
        path.name for path in search_dir.iterdir()}


def test_distributed_search_without_tuner_id_says_which_variables_to_set(tmp_path, monkeypatch):
    from toolkit.recipe import load_recipe
    from toolkit.tune import search_recipe

    recipe_path = tmp_path / "recipe.toml"
    recipe_path.write_text(RECIPE)
    recipe = load_recipe(str(recipe_path), OVERRIDES)
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(_free_port()))
    monkeypatch.delenv("KERASTUNER_TUNER_ID", raising=False)
    search_dir = tmp_path / "search"
    with pytest.raises(RecipeError, match=r"KERASTUNER_ORACLE_IP is set, so this is a "
                       r"distributed search, but KERASTUNER_TUNER_ID is not\. .*"
                       r"KERASTUNER_TUNER_ID=chief to the chief, tuner0, tuner1"):
        search_recipe(recipe, search_dir, verbose=0)
    assert not search_dir.exists()  # Refused before anything was written.
