"""The CLI as separate processes see it: one writer per run directory, a stale lock taken over,
and no TensorFlow C++ log line in the output."""

import json
import os
import re
import signal
import subprocess
import sys
import textwrap

import toolkit.errors
from toolkit.checkpoint import run_lock
from toolkit.checkpoint.run_lock import LOCK_FILE, RunLock

TRAIN = ["train", "digits_mlp", "--smoke", "--set", "train.deterministic=false"]
# glog/absl lines: "I0000 00:00:...", "E1206 ...", and absl's pre-initialization warning.
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|absl::InitializeLog|cuInit|cudart_stub")


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # As a user's shell: the toolkit's own default.
    env.pop("TOOLKIT_DEBUG", None)
    return env


def _toolkit(*args, cwd):
    return subprocess.run([sys.executable, "-m", "toolkit", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)


def _files(run_dir):
    found = {}
    for root, _, names in os.walk(run_dir):
        for name in names:
            if name != LOCK_FILE:
                path = os.path.join(root, name)
                found[os.path.relpath(path, run_dir)] = os.path.getsize(path)
    return found


def test_second_process_on_a_run_in_use_exits_2_and_the_first_completes(tmp_path):
    run_dir = tmp_path / "run"
    # The first process holds the run directory (the lock `toolkit train` takes, re-entrant),
    # then trains once told to: a real holder, with no timing window.
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from toolkit.checkpoint import RunLock
            from toolkit.cli import main
            with RunLock({str(run_dir)!r}):
                print("HELD", flush=True)
                sys.stdin.readline()
                sys.exit(main({TRAIN + ["--run-dir", str(run_dir)]!r}))
        """)],
        cwd=tmp_path, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "HELD"
        before = _files(run_dir)
        second = _toolkit(*TRAIN, "--run-dir", str(run_dir), cwd=tmp_path)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert re.match(rf"toolkit: error: Run directory '.*run' is in use by process "
                        rf"{holder.pid} on host ", lines[0]), lines[0]
        assert "--wait SECONDS" in lines[0]
        assert _files(run_dir) == before  # The second process wrote nothing.
        holder.stdin.write("\n")
        holder.stdin.flush()
        _, stderr = holder.communicate(timeout=300)
    finally:
        holder.kill()
    assert holder.returncode == 0, stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["history"]["steps"] == [10, 20]
    assert any(name.startswith("checkpoints/ckpt-00000020") for name in _files(run_dir))
    assert RunLock.holder(run_dir) is None


def test_a_lock_left_by_a_killed_run_does_not_block_the_rerun(tmp_path):
    run_dir = tmp_path / "run"
    # The lock module alone, loaded by path: the holder starts without TensorFlow.
    first = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import importlib.util, sys, threading
            for name, path in (("toolkit.errors", {toolkit.errors.__file__!r}),
                               ("run_lock", {run_lock.__file__!r})):
                spec = importlib.util.spec_from_file_location(name, path)
                sys.modules[name] = module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            module.RunLock({str(run_dir)!r}).acquire()
            print("HELD", flush=True)
            threading.Event().wait()
        """)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, text=True,
    )
    assert first.stdout.readline().strip() == "HELD"
    assert RunLock.holder(run_dir)["pid"] == first.pid
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    rerun = _toolkit(*TRAIN, "--run-dir", str(run_dir), cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert "Finished 'digits_mlp' at step 20" in rerun.stdout
    # No TensorFlow C++ log line, from start-up to the end of training.
    output = (rerun.stdout + rerun.stderr).splitlines()
    assert not [line for line in output if CPP_LOG_LINE.search(line)], output
    assert all(line.startswith(("toolkit: warning:", "Finished", "Test metrics",
                                "Validation metrics", "Run dir", "TensorBoard", "Batch size:", "Sharpness:", "Plots:", "Diagnosis:", "    ", "step "))
               or "%" in line for line in output), output
