"""Exact resume of real training processes killed with SIGTERM and SIGKILL (tests/train/resume_script.py)."""

import json
import os
import signal
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

SCRIPT = os.path.join(os.path.dirname(__file__), "resume_script.py")
WALL_TIME_TAGS = ("steps_per_second", "examples_per_second")


def _run(run_dir, out, env=None, wait=True, mirrored=False):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    if mirrored:
        environment["TOOLKIT_TEST_MIRRORED"] = "1"
    process = subprocess.Popen([sys.executable, SCRIPT, str(run_dir), str(out)], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait:
        return process
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout + stderr


def _scalars(run_dir):
    curves = {}
    for run in ("train", "validation"):
        accumulator = EventAccumulator(str(run_dir / run), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["tensors"]:  # Scalars written as tensor summaries.
            if not tag.endswith(WALL_TIME_TAGS):
                curves[f"{run}/{tag}"] = [
                    (e.step, tensor_util.make_ndarray(e.tensor_proto).item())
                    for e in accumulator.Tensors(tag)
                ]
    return curves


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    code, output = _run(root / "run", root / "out.json")
    assert code == 0, output
    return json.loads((root / "out.json").read_text()), _scalars(root / "run")


def _assert_same(reference, run_dir, out):
    result, curves = reference
    resumed = json.loads(out.read_text())
    for key in ("model", "optimizer", "steps", "examples", "history", "diagnosis"):
        assert resumed[key] == result[key], key
    assert _scalars(run_dir) == curves
    steps = [step for step, _ in curves["train/loss"]]
    assert steps == sorted(set(steps)) and steps[-1] == 120, steps  # no overlap, no restart
    assert [step for step, _ in curves["validation/loss"]] == [30, 60, 90, 120]
    assert curves["train/by_examples/loss"][-1][0] == 120 * 16


def test_sigterm_through_a_wrapped_pipeline_stops_cleanly_and_resumes_exactly(reference, tmp_path):
    # The user's `.map().prefetch().with_options()` on top of `endless` (the map multiplies by
    # one): the data position survives the wrapping, so the resumed run equals the reference.
    wrap = {"TOOLKIT_TEST_WRAP": "1"}
    code, output = _run(tmp_path / "run", tmp_path / "out.json",
                        {**wrap, "TOOLKIT_TEST_SIGTERM_AT": "47"})
    assert code == 128 + signal.SIGTERM, output
    assert "checkpoint of step 47" in output and "run the same command again" in output
    assert "cannot resume this training data exactly" not in output
    assert not (tmp_path / "out.json").exists()
    code, output = _run(tmp_path / "run", tmp_path / "out.json", wrap)
    assert code == 0, output
    _assert_same(reference, tmp_path / "run", tmp_path / "out.json")


def _kill_inside_save(run_dir, out, save, mirrored=False):
    """Runs until the process blocks inside its `save`-th checkpoint write, then SIGKILLs it."""
    process = _run(run_dir, out, {"TOOLKIT_TEST_BLOCK_IN_SAVE": str(save)}, wait=False,
                   mirrored=mirrored)
    for line in process.stdout:  # No timing window: the process waits inside the save.
        if line.startswith("BLOCKED"):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return sorted(name for name in os.listdir(run_dir / "checkpoints") if name.startswith("ckpt-"))


def test_sigkill_inside_saves_then_resume_is_exact(reference, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    # Saves are written at steps 0, 10, 20, ...: the 5th (step 40) never completes.
    assert _kill_inside_save(run_dir, out, 5)[-1] == "ckpt-00000030"
    # Resumed at 30, it writes 40, 50, ...: its 6th save (step 90) never completes, after the
    # step-90 evaluation flushed its events: points after step 80 must be cut on resume.
    assert _kill_inside_save(run_dir, out, 6)[-1] == "ckpt-00000080"
    assert max(step for step, _ in _scalars(run_dir)["validation/loss"]) == 90
    code, output = _run(run_dir, out)
    assert code == 0, output
    _assert_same(reference, run_dir, out)


def test_mirrored_run_killed_inside_a_save_resumes_bit_for_bit(tmp_path):
    # Two replicas (two logical CPU devices) under MirroredStrategy: the uninterrupted run and a
    # run SIGKILLed inside its 4th save (step 30), then resumed, end bit-identical.
    code, output = _run(tmp_path / "reference", tmp_path / "reference.json", mirrored=True)
    assert code == 0, output
    reference = (json.loads((tmp_path / "reference.json").read_text()),
                 _scalars(tmp_path / "reference"))
    run_dir, out = tmp_path / "run", tmp_path / "out.json"
    assert _kill_inside_save(run_dir, out, 4, mirrored=True)[-1] == "ckpt-00000020"
    code, output = _run(run_dir, out, mirrored=True)
    assert code == 0, output
    _assert_same(reference, run_dir, out)

