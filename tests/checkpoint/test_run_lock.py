"""`RunLock`: one writer per run directory, checked against real second processes."""

import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

import toolkit.errors
from toolkit.checkpoint import run_lock
from toolkit.checkpoint.run_lock import LOCK_FILE, RunLock
from toolkit.errors import RunDirectoryInUse, ToolkitError

fcntl = pytest.importorskip("fcntl")

# The child loads the two module files by path: importing `toolkit.checkpoint.run_lock` would run
# `toolkit/__init__.py`, which imports TensorFlow (seconds per child). `run_lock` imports only
# `toolkit.errors`, so that file is registered first under its package name.
_HOLDER_SCRIPT = """
import importlib.util, sys

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

load("toolkit.errors", {errors_file!r})
run_lock = load("toolkit.checkpoint.run_lock", {run_lock_file!r})
assert "tensorflow" not in sys.modules
lock = run_lock.RunLock(sys.argv[1]).acquire()
print("held", flush=True)
sys.stdin.readline()
lock.release()
print("released", flush=True)
sys.stdin.readline()
""".format(errors_file=toolkit.errors.__file__, run_lock_file=run_lock.__file__)

_STARTED = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture
def start_holder():
    """Starts a process that holds a run directory's lock until told through its stdin."""
    children = []

    def start(run_dir):
        command = [sys.executable, "-c", _HOLDER_SCRIPT, str(run_dir)]
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        children.append(child)
        assert child.stdout.readline() == "held\n"
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()


def _tell_to_release(child):
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.stdout.readline() == "released\n"


def _is_locked(path) -> bool:
    """Whether any open file description, this process's included, holds a flock on `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # Also drops the probe's own lock.
    return False


def _file_info(run_dir):
    return json.loads((run_dir / LOCK_FILE).read_text())


def test_acquire_writes_holder_and_release_frees_it(tmp_path):
    run_dir = tmp_path / "run"
    lock = RunLock(run_dir)
    assert lock.acquire() is lock
    path = run_dir / LOCK_FILE
    assert _is_locked(path)
    info = RunLock.holder(run_dir)
    assert info == _file_info(run_dir)
    assert info["pid"] == os.getpid()
    assert (info["host"], info["argv"]) == (socket.gethostname(), sys.argv)
    assert re.fullmatch(_STARTED, info["started"])

    lock.release()
    assert path.exists() and not _is_locked(path)
    assert RunLock.holder(run_dir) is None
    lock.release()  # A second release does nothing.
    RunLock(run_dir).release()  # Nor does releasing a lock never acquired.


def test_reacquiring_in_one_process_counts_until_last_release(tmp_path):
    run_dir = tmp_path / "run"
    alias = tmp_path / "alias"
    alias.symlink_to(run_dir, target_is_directory=True)
    path = run_dir / LOCK_FILE
    outer = RunLock(run_dir)
    with outer:
        with RunLock(alias), outer:
            assert _is_locked(path)
        assert _is_locked(path)
        assert RunLock.holder(run_dir)["pid"] == os.getpid()
    assert not _is_locked(path)


def test_second_process_is_refused_and_named(tmp_path, start_holder):
    run_dir = tmp_path / "run"
    child = start_holder(run_dir)
    with pytest.raises(RunDirectoryInUse) as raised:
        RunLock(run_dir).acquire()
    assert isinstance(raised.value, ToolkitError)
    assert f"process {child.pid} on host {socket.gethostname()} " in str(raised.value)
    holder = RunLock.holder(run_dir)
    assert (holder["pid"], holder["argv"]) == (child.pid, ["-c", str(run_dir)])

    _tell_to_release(child)
    assert RunLock.holder(run_dir) is None
    with RunLock(run_dir):
        assert _file_info(run_dir)["pid"] == os.getpid()


def test_in_use_message_names_holder_and_fix(tmp_path, start_holder):
    run_dir = tmp_path / "run"
    child = start_holder(run_dir)
    fix = (
        "Wait for it to finish or stop it, pass another --run-dir, or wait for it with "
        "--wait SECONDS."
    )
    expected = (
        re.escape(f"Run directory {str(run_dir)!r} is in use by process {child.pid} on host ")
        + re.escape(f"{socket.gethostname()} (since ")
        + _STARTED
        + re.escape(f": -c {run_dir}). {fix}")
    )
    with pytest.raises(RunDirectoryInUse, match=f"^{expected}$"):
        RunLock(run_dir).acquire()
    with pytest.raises(RunDirectoryInUse, match=re.escape(f"{run_dir}); waited 0.01 s. {fix}")):
        RunLock(run_dir, timeout_seconds=0.01).acquire()
    # The holder's file emptied, as while it is being written: the holder is unknown.
    (run_dir / LOCK_FILE).write_text("")
    unknown = f"Run directory {str(run_dir)!r} is in use by another process. {fix}"
    with pytest.raises(RunDirectoryInUse, match=f"^{re.escape(unknown)}$"):
        RunLock(run_dir).acquire()


def test_waiting_acquire_succeeds_once_holder_releases(tmp_path, start_holder, monkeypatch):
    run_dir = tmp_path / "run"
    child = start_holder(run_dir)
    refused = concurrent.futures.Future()
    try_acquire = run_lock._try_acquire

    def recording_try_acquire(path):
        fd = try_acquire(path)
        if fd is None and not refused.done():
            refused.set_result(True)
        return fd

    monkeypatch.setattr(run_lock, "_try_acquire", recording_try_acquire)
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        waiting = executor.submit(RunLock(run_dir, timeout_seconds=120).acquire)
        assert refused.result(timeout=120)  # The acquire is now polling: release it.
        _tell_to_release(child)
        lock = waiting.result(timeout=120)
    try:
        assert RunLock.holder(run_dir)["pid"] == os.getpid()
    finally:
        lock.release()


def test_lock_of_killed_process_is_taken_over_at_once(tmp_path, start_holder):
    run_dir = tmp_path / "run"
    child = start_holder(run_dir)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert _file_info(run_dir)["pid"] == child.pid  # Left behind, but no longer locked.
    assert RunLock.holder(run_dir) is None
    with RunLock(run_dir):
        assert _file_info(run_dir)["pid"] == os.getpid()
        assert RunLock.holder(run_dir)["pid"] == os.getpid()


def test_rejects_negative_timeout(tmp_path):
    expected = "timeout_seconds >= 0. Received: timeout_seconds=-1."
    with pytest.raises(ValueError, match=re.escape(expected)):
        RunLock(tmp_path, timeout_seconds=-1)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_fallback_without_fcntl_creates_and_removes_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "fcntl", None)
    path = tmp_path / LOCK_FILE
    with RunLock(tmp_path):
        with RunLock(tmp_path):
            assert _file_info(tmp_path)["pid"] == os.getpid()
        assert path.exists()
    assert not path.exists()


def test_fallback_without_fcntl_takes_over_only_dead_holders(tmp_path, monkeypatch):
    monkeypatch.setattr(run_lock, "fcntl", None)
    path = tmp_path / LOCK_FILE
    host = socket.gethostname()
    path.write_text(json.dumps({"pid": os.getppid(), "host": host, "argv": ["toolkit"]}))
    with pytest.raises(RunDirectoryInUse, match=f"in use by process {os.getppid()} on host"):
        RunLock(tmp_path).acquire()
    # A pid on another host cannot be checked, so it is respected.
    path.write_text(json.dumps({"pid": _dead_pid(), "host": host + "-elsewhere"}))
    with pytest.raises(RunDirectoryInUse):
        RunLock(tmp_path).acquire()
    path.write_text(json.dumps({"pid": _dead_pid(), "host": host}))
    assert RunLock.holder(tmp_path) is None
    with RunLock(tmp_path):
        assert _file_info(tmp_path)["pid"] == os.getpid()
