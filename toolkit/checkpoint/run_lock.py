"""One writer per run directory: `RunLock`, an exclusive lock on `run_dir/.lock`.

Two processes writing into one run directory corrupt it. `RunLock` holds
`fcntl.flock(LOCK_EX)` on `run_dir/.lock` while its file descriptor is open, so the kernel releases
it when the holder exits or dies, even on SIGKILL: a lock left by a killed run never blocks the
rerun. A PID file cannot promise that, as its PID goes stale and may be reused. The file's JSON
(pid, host, start time, command line) only says *who* holds the lock, for messages and
`RunLock.holder`; a file left by a dead holder is not locked, and is taken over. Where `fcntl` is
missing (Windows), the lock is the file created with `O_CREAT | O_EXCL`, and a file whose pid is
not alive on this host is stale and taken over. The name is hidden so that the lock does not make
a directory look like someone else's files.
"""

import contextlib
import datetime
import json
import os
import socket
import sys
import threading
import time

try:
    import fcntl
except ImportError:  # Windows: see `_try_create`.
    fcntl = None

from toolkit.errors import RunDirectoryInUse

__all__ = ["LOCK_FILE", "RunLock"]

LOCK_FILE = ".lock"
_POLL_SECONDS = 0.2
_IN_USE_MSG = (
    "Run directory {run_dir!r} is in use by {holder}{waited}. Wait for it to finish or stop it, "
    "pass another --run-dir, or wait for it with --wait SECONDS."
)

# Two flock()s of one process on two descriptors of one file conflict, so the process keeps one
# descriptor per directory and counts its acquires: realpath of the lock file -> [fd, count, pid].
_held = {}
_held_guard = threading.Lock()


class RunLock:
    """Makes this process the only writer of a run directory, until released.

    Take it around anything that writes into `run_dir`. Another process holding the directory
    makes `acquire` raise `RunDirectoryInUse`, at once or after `timeout_seconds`. The lock is
    re-entrant within a process: acquiring a directory this process already holds succeeds and
    counts, and the last `release` unlocks it, so `with RunLock(d): toolkit.fit(..., run_dir=d)`
    works although `fit` takes the lock too. The lock file stays in place after release.

    Args:
        run_dir: The run directory, created if missing; the lock file is `run_dir/.lock`.
        timeout_seconds: How long `acquire` waits for another process to release the directory,
            polling every 0.2 s, before it raises. Defaults to `0.0` (raise at once).

    Example:

    >>> import os, tempfile
    >>> from toolkit.checkpoint import RunLock
    >>> run_dir = tempfile.mkdtemp()
    >>> with RunLock(run_dir):
    ...     RunLock.holder(run_dir)["pid"] == os.getpid()
    True
    >>> print(RunLock.holder(run_dir))
    None
    """

    def __init__(self, run_dir, *, timeout_seconds: float = 0.0):
        if not timeout_seconds >= 0:  # Also rejects NaN.
            raise ValueError(
                "`RunLock` requires timeout_seconds >= 0. "
                f"Received: timeout_seconds={timeout_seconds!r}. "
                "Pass 0 to fail at once, or the number of seconds to wait."
            )
        self.run_dir = run_dir
        self.timeout_seconds = timeout_seconds
        self._path = _lock_path(run_dir)
        self._depth = 0

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()

    def acquire(self) -> "RunLock":
        """Takes the lock, waiting up to `timeout_seconds` for another process to release it.

        Returns:
            This `RunLock`.

        Raises:
            RunDirectoryInUse: Another process still holds the directory.
        """
        os.makedirs(self.run_dir, exist_ok=True)
        self._path = _lock_path(self.run_dir)  # Now that the directory exists.
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            with _held_guard:
                entry = _held.get(self._path)
                if entry is not None and entry[2] == os.getpid():  # Not inherited by fork.
                    entry[1] += 1
                    self._depth += 1
                    return self
                fd = _try_acquire(self._path)
                if fd is not None:
                    _held[self._path] = [fd, 1, os.getpid()]
                    self._depth += 1
                    return self
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = _read_holder(self._path)
                raise RunDirectoryInUse(_in_use_message(self.run_dir, holder, self.timeout_seconds))
            time.sleep(min(_POLL_SECONDS, remaining))

    def release(self) -> None:
        """Undoes one `acquire`; the last one unlocks. Does nothing when this lock is not held."""
        if self._depth == 0:
            return
        self._depth -= 1
        with _held_guard:
            entry = _held.get(self._path)
            if entry is None:
                return
            entry[1] -= 1
            if entry[1] == 0:
                del _held[self._path]
                _release_file(self._path, entry[0])

    @staticmethod
    def holder(run_dir) -> "dict | None":
        """Says who holds the lock of `run_dir`, as its lock file says.

        Returns:
            The holder's `{"pid", "host", "started", "argv"}`, or `None` when the lock is free: no
            lock file, one emptied by `release`, or one left by a process that died on this host.
            Also `None` for the instant a new holder takes to write the file. A holder on another
            host cannot be checked and is reported as its file says.
        """
        return _read_holder(_lock_path(run_dir))


def _lock_path(run_dir) -> str:
    return os.path.realpath(os.path.join(os.fspath(run_dir), LOCK_FILE))


def _try_acquire(path):
    """Returns an open descriptor that holds the lock, or `None` if another process holds it."""
    if fcntl is None:
        return _try_create(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write_info(fd)  # Overwrites what a dead holder left.
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _try_create(path):
    """The fallback without `fcntl`: whoever creates the file holds the lock."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            info = _load_info(path)  # None: gone already, or being written by a live holder.
            if (info is None and os.path.exists(path)) or _is_held(info):
                return None
            try:
                # Windows refuses to remove an open file, so of several processes taking over
                # one stale file, none can remove the file the first one has just created.
                os.remove(path)
            except FileNotFoundError:
                pass
            except PermissionError:
                return None
            continue
        try:
            _write_info(fd)
        except BaseException:
            os.close(fd)
            os.remove(path)
            raise
        return fd


def _write_info(fd) -> None:
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "argv": list(sys.argv),
    }
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    view = memoryview(json.dumps(info).encode("utf-8"))
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def _release_file(path, fd) -> None:
    if fcntl is None:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        return
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)  # So that `holder` reads nobody once the lock is free.
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _load_info(path):
    try:
        with open(path, encoding="utf-8") as file:
            info = json.load(file)
    except (OSError, ValueError):
        return None  # Missing, emptied by `release`, or being written.
    if not (isinstance(info, dict) and type(info.get("pid")) is int and "host" in info):
        return None
    return info


def _read_holder(path):
    info = _load_info(path)
    return info if _is_held(info) else None


def _is_held(info) -> bool:
    """Whether `info` names a holder that may be alive (any on another host: no way to check)."""
    return info is not None and (info["host"] != socket.gethostname() or _is_alive(info["pid"]))


def _is_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there: ask the kernel instead.
        import ctypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists.
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return not ok or code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Alive, owned by another user.
        pass
    return True


def _in_use_message(run_dir, info, timeout_seconds) -> str:
    holder = "another process"
    if info is not None:
        argv = [str(arg) for arg in info.get("argv") or ["?"]]
        command = " ".join([os.path.basename(argv[0]), *argv[1:]])
        since = f"since {info.get('started', '?')}: {command}"
        holder = f"process {info['pid']} on host {info['host']} ({since})"
    waited = f"; waited {timeout_seconds:g} s" if timeout_seconds else ""
    return _IN_USE_MSG.format(run_dir=os.fspath(run_dir), holder=holder, waited=waited)
