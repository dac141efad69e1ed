"""A `toolkit tune` process SIGKILLed at random points, rerun until done, equals an unbroken one.

Every trial runs exactly once (no trial lost, none run twice), the interrupted trials resume
from their checkpoints, and every trial's results are bit-identical to the uninterrupted
search's (CPU, `train.deterministic = true`).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

TINY = Path(__file__).with_name("tiny_search.toml")
TIMEOUT_SECONDS = 240


def _command(search_dir):
    return [sys.executable, "-m", "toolkit", "tune", str(TINY), "--run-dir", str(search_dir)]


def _environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")


def _run_to_end(search_dir):
    done = subprocess.run(_command(search_dir), env=_environment(), capture_output=True,
                          text=True, timeout=TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _kill_during_trial(search_dir, trial_lines, delay_seconds):
    """Starts the search and SIGKILLs it `delay_seconds` after its `trial_lines`-th trial began."""
    process = subprocess.Popen(_command(search_dir), env=_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        seen, deadline = 0, time.monotonic() + TIMEOUT_SECONDS
        while seen < trial_lines and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:  # The search ended before that trial.
                return False
            seen += line.startswith("Trial ")
        time.sleep(delay_seconds)
        process.send_signal(signal.SIGKILL)
        return True
    finally:
        process.kill()
        process.wait(timeout=60)


def _results(search_dir):
    document = json.loads((search_dir / "search.json").read_text())
    return {trial["trial_id"]: (trial["values"], trial["steps"], trial["parent"],
                                trial["validation"], trial["test"])
            for trial in document["trials"]}


def test_a_killed_search_completes_every_trial_exactly_once(tmp_path):
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    _run_to_end(reference_dir)
    reference = _results(reference_dir)
    assert len(reference) == 6

    chooser = random.Random(0)
    kills = 0
    # Kill during the 1st, 2nd and 1st trial line of successive processes: each restart first
    # resumes the trial the previous process was in.
    for trial_lines in (1, 2, 1, 2):
        kills += _kill_during_trial(killed_dir, trial_lines, chooser.uniform(0.0, 2.0))
    assert kills >= 3
    output = _run_to_end(killed_dir)
    assert "Finished the search" in output

    assert _results(killed_dir) == reference
    oracle = json.loads((killed_dir / "oracle.json").read_text())
    assert sorted(oracle["end_order"]) == sorted(reference)  # each trial ended exactly once
    assert oracle["ongoing_trials"] == {} and oracle["retry_queue"] == []
    for trial_id in reference:
        trial = json.loads((killed_dir / f"trial_{trial_id}" / "trial.json").read_text())
        assert trial["status"] == "COMPLETED"
    assert sorted(p.name for p in (killed_dir / "runs").iterdir()) == sorted(
        f"trial_{trial_id}" for trial_id in reference)
