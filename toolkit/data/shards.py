"""A directory of shard files that grows while training runs (S0.1: "datasets grow every day").

`ShardDirectory(path, rescan_every_steps=N)` is a source for `endless`. At step 0 and then every
`N` steps it rescans the directory; complete new shards (`.npz`, `.tfrecord`, `.csv`, see
`toolkit.data.shard_formats`) are appended to the pool of examples, so IID sampling over the pool
weighs every shard by its number of examples.

- **Half-written shards are skipped until complete**: names starting with `.` or `_` or ending in
  `.tmp`, `.partial`, `.part`, `.incomplete`; files modified less than `min_age_seconds` ago;
  files whose size or modification time changed while they were read; files that cannot be read
  yet. Write shards with `write_shard` (temporary name, then rename) to make them appear at once.
- **Corrupt, mismatched, vanished or rewritten shards are reported** with `warnings.warn` (once
  each) and never stop the run. A corrupt file is retried when it changes. A shard that vanishes
  or is rewritten after it was loaded keeps its loaded examples: the pool only grows, which is
  what makes batches reproducible.
- **Resume replays the same batches.** Every rescan appends a line to the JSON-lines
  `manifest_path` (`{"step": ..., "num_examples": ..., "added": [{"name", "num_examples", ...}]}`).
  A `ShardDirectory` given an existing manifest (a resumed run) loads exactly the recorded shards
  in the recorded order, so `size_at(step)` and `gather` are pure functions of the step and
  `endless(..., start_step=k)` yields the batches the first run drew. Keep the manifest in the run
  directory: a fresh run needs a fresh manifest. Without one, the record lives in memory only.

The loaded examples are held in host memory (NumPy) and gathered with `tf.numpy_function`:
one Python call per batch, no Python per example.

Example:

>>> import numpy as np, os, tempfile
>>> from toolkit.data import endless, write_shard
>>> directory = tempfile.mkdtemp()
>>> write_shard(os.path.join(directory, "day1.npz"), (np.zeros((8, 3), "float32"), np.zeros(8)))
>>> source = ShardDirectory(directory, rescan_every_steps=10, min_age_seconds=0)
>>> x, y = next(iter(endless(source, batch_size=4)))
>>> x.shape, int(source.size_at(0))
(TensorShape([4, 3]), 8)
"""

import bisect
import json
import os
import re
import threading
import time
import warnings
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from toolkit.data.shard_formats import SHARD_FORMATS, read_shard, shard_format
from toolkit.errors import DataError

__all__ = ["ShardDirectory"]

_TEMPORARY_SUFFIXES = (".tmp", ".partial", ".part", ".incomplete", ".inprogress")


class ShardDirectory:
    """A growing directory of shards, rescanned every `rescan_every_steps` (see the module doc).

    Args:
        path: The directory of shard files.
        rescan_every_steps: Steps between rescans. Defaults to `1000`.
        manifest_path: JSON-lines file recording the shards in use at each rescan (put it in the
            run directory); resuming with the same file replays the same batches. `None` keeps
            the record in memory. Defaults to `None`.
        formats: Formats to read, among `"npz"`, `"tfrecord"`, `"csv"`. Defaults to all three.
        min_age_seconds: A file modified more recently than this is treated as still being
            written. Defaults to `1.0`.

    Raises:
        DataError: If `path` is not a directory or holds no complete shard at step 0.

    Example:

    >>> import numpy as np, os, tempfile
    >>> from toolkit.data import write_shard
    >>> directory = tempfile.mkdtemp()
    >>> write_shard(os.path.join(directory, "a.npz"), (np.ones((5, 2)), np.arange(5)))
    >>> ShardDirectory(directory, min_age_seconds=0).shard_names
    ['a.npz']
    """

    def __init__(
        self,
        path: str,
        *,
        rescan_every_steps: int = 1000,
        manifest_path: Optional[str] = None,
        formats: tuple = ("npz", "tfrecord", "csv"),
        min_age_seconds: float = 1.0,
    ):
        if not os.path.isdir(path):
            raise DataError(
                f"`ShardDirectory` needs an existing directory. Received: path={path!r}. "
                f"Create it and write shards into it with `toolkit.data.write_shard`."
            )
        if isinstance(rescan_every_steps, bool) or not isinstance(rescan_every_steps, int) or (
            rescan_every_steps <= 0
        ):
            raise DataError(
                f"`rescan_every_steps` must be a positive integer. Received: "
                f"rescan_every_steps={rescan_every_steps!r}."
            )
        unknown = set(formats) - set(SHARD_FORMATS.values())
        if unknown:
            raise DataError(
                f"Unknown shard formats {sorted(unknown)!r}; expected some of "
                f"{sorted(set(SHARD_FORMATS.values()))!r}."
            )
        self.path = path
        self.rescan_every_steps = rescan_every_steps
        self.manifest_path = manifest_path
        self.formats = tuple(formats)
        self.min_age_seconds = float(min_age_seconds)
        self._lock = threading.Lock()
        self._shards = {}  # name -> (size, mtime_ns, num_examples) as loaded
        self._warned = set()
        self._chunks = []  # nested arrays, one per loaded shard, in pool order
        self._pool = None  # nested arrays: the concatenation of _chunks
        self._steps, self._totals = [], []  # rescan steps and pool sizes, ascending
        self._structure = None
        self._replay()
        if not self._steps:
            self._rescan(0)
        if self._structure is None:
            raise DataError(
                f"`ShardDirectory` found no complete shard in {path!r}; expected files ending in "
                f"{sorted(k for k, v in SHARD_FORMATS.items() if v in self.formats)!r}. Write "
                f"at least one shard (with `toolkit.data.write_shard`) before training."
            )
        spec = tf.nest.map_structure(
            lambda a: tf.TensorSpec(a.shape[1:], tf.as_dtype(a.dtype)), self._structure
        )
        self._element_spec = spec

    @property
    def num_examples(self) -> None:
        """`None`: the number of examples changes over time (see `size_at`)."""
        return None

    @property
    def element_spec(self) -> Any:
        """Nested `tf.TensorSpec` of one example, from the first shard."""
        return self._element_spec

    @property
    def shard_names(self) -> list:
        """Names of the shards in the pool, in pool order."""
        with self._lock:
            return list(self._shards)

    def size_at(self, step: tf.Tensor) -> tf.Tensor:
        """Number of examples in the pool at `step` (rescanning first when `step` is due)."""
        size = tf.numpy_function(self._size_at, [tf.cast(step, tf.int64)], tf.int64, stateful=True)
        return tf.reshape(size, [])

    def gather(self, indices: tf.Tensor) -> Any:
        """Returns the examples at `indices` (each below `size_at(step)`) as one nested batch."""
        flat_spec = tf.nest.flatten(self._element_spec)
        flat = tf.numpy_function(
            self._gather, [tf.cast(indices, tf.int64)], [s.dtype for s in flat_spec], stateful=False
        )
        flat = [tf.ensure_shape(t, [None] + s.shape.as_list()) for t, s in zip(flat, flat_spec)]
        return tf.nest.pack_sequence_as(self._element_spec, flat)

    def _size_at(self, step) -> np.int64:
        step = int(step)
        with self._lock:
            due = step - step % self.rescan_every_steps
            while self._steps[-1] < due:
                self._rescan(self._steps[-1] + self.rescan_every_steps)
            return np.int64(self._totals[bisect.bisect_right(self._steps, step) - 1])

    def _gather(self, indices) -> list:
        with self._lock:
            pool = self._pool
        return [leaf[indices] for leaf in tf.nest.flatten(pool)]

    def _rescan(self, step: int) -> None:
        """Scans the directory, loads complete new shards and records them at `step`."""
        now = time.time_ns()
        present = set()
        added = []
        for name in sorted(os.listdir(self.path)):
            full = os.path.join(self.path, name)
            if not self._candidate(name, full):
                continue
            present.add(name)
            try:
                before = os.stat(full)
            except FileNotFoundError:
                continue
            key = (name, before.st_size, before.st_mtime_ns)
            if name in self._shards:
                if self._shards[name][:2] != key[1:]:
                    self._warn(("changed", name), (
                        f"Shard {name!r} in {self.path!r} changed after it was loaded; keeping "
                        f"the loaded examples. Write new data under new shard names."))
                continue
            if now - before.st_mtime_ns < self.min_age_seconds * 1e9 or key in self._warned:
                continue  # still being written, or known corrupt and unchanged
            entry = self._load(full, key)
            if entry is not None:
                added.append(entry)
        for name in self._shards:
            if name not in present:
                self._warn(("vanished", name), (
                    f"Shard {name!r} vanished from {self.path!r}; its loaded examples stay in "
                    f"the pool (the pool only grows, so batches stay reproducible)."))
        self._record(step, added)

    def _candidate(self, name: str, full: str) -> bool:
        if name.startswith((".", "_")) or name.lower().endswith(_TEMPORARY_SUFFIXES):
            return False
        return shard_format(name) in self.formats and os.path.isfile(full)

    def _load(self, full: str, key: tuple) -> Optional[dict]:
        name = key[0]
        try:
            arrays = read_shard(full)
            after = os.stat(full)
        except FileNotFoundError:
            return None  # vanished between the listing and the read
        except Exception as error:  # a corrupt file may raise anything; it must not stop training
            self._warn(key, f"Skipping shard {name!r} in {self.path!r}: it cannot be read "
                            f"({_reason(error)}). Rewrite it; it is retried when it changes.")
            return None
        if (after.st_size, after.st_mtime_ns) != key[1:]:
            return None  # still growing: try again at the next rescan
        mismatch = self._mismatch(arrays)
        if mismatch:
            self._warn(key, f"Skipping shard {name!r} in {self.path!r}: {mismatch}")
            return None
        count = len(tf.nest.flatten(arrays)[0])
        if count == 0:
            return None
        self._append(name, key, arrays)
        return {"name": name, "num_examples": count, "size": key[1], "mtime_ns": key[2]}

    def _mismatch(self, arrays: Any) -> str:
        if self._structure is None:
            return ""
        describe = lambda a: f"{a.dtype}{list(a.shape[1:])}"  # noqa: E731
        expected = repr(tf.nest.map_structure(describe, self._structure))
        try:
            received = repr(tf.nest.map_structure(describe, arrays))
            tf.nest.assert_same_structure(arrays, self._structure)
        except (ValueError, TypeError):
            received = f"a different structure ({type(arrays).__name__})"
        if received == expected:
            return ""
        return (f"its examples are {received} but the first shard's are {expected}. Write every "
                f"shard with the same arrays, dtypes and shapes.")

    def _append(self, name: str, key: tuple, arrays: Any) -> None:
        if self._structure is None:
            self._structure = tf.nest.map_structure(lambda a: a[:0], arrays)
        self._shards[name] = (key[1], key[2], len(tf.nest.flatten(arrays)[0]))
        self._chunks.append(arrays)
        # Readers hold the previous pool while this one is built: gathers never see it change.
        self._pool = tf.nest.map_structure(lambda *a: np.concatenate(a), *self._chunks)

    def _record(self, step: int, added: list) -> None:
        total = sum(count for _, _, count in self._shards.values())
        self._steps.append(step)
        self._totals.append(total)
        if self.manifest_path is None:
            return
        line = json.dumps({"step": step, "num_examples": total, "added": added})
        with open(self.manifest_path, "a") as file:
            file.write(line + "\n")
            file.flush()
            os.fsync(file.fileno())

    def _replay(self) -> None:
        """Loads the shards recorded in an existing manifest, in the recorded order."""
        if self.manifest_path is None or not os.path.exists(self.manifest_path):
            return
        with open(self.manifest_path) as file:
            lines = file.read().splitlines()
        for number, line in enumerate(lines):
            try:
                entry = json.loads(line)
                step, added = int(entry["step"]), entry["added"]
            except (ValueError, KeyError, TypeError):
                # Only a crash mid-write leaves a bad line, and only the last one.
                self._warn(("manifest", number), (
                    f"Ignoring unreadable line {number + 1} of manifest "
                    f"{self.manifest_path!r}: {line[:80]!r}."))
                continue
            for shard in added:
                self._replay_shard(shard)
            self._steps.append(step)
            self._totals.append(sum(count for _, _, count in self._shards.values()))
            if entry.get("num_examples") != self._totals[-1]:
                self._warn(("replay", step), (
                    f"Resuming from manifest {self.manifest_path!r}: at step {step} it records "
                    f"{entry.get('num_examples')} examples but {self._totals[-1]} could be "
                    f"loaded again; batches from step {step} on differ from the first run."))

    def _replay_shard(self, shard: dict) -> None:
        name = shard["name"]
        full = os.path.join(self.path, name)
        try:
            arrays = read_shard(full)
            stat = os.stat(full)
        except Exception as error:  # vanished or corrupt since: reported, never fatal
            self._warn(("replay", name), (
                f"Shard {name!r} of manifest {self.manifest_path!r} cannot be read again "
                f"({_reason(error)}); resuming without it."))
            return
        changed = stat.st_size != shard["size"] or len(tf.nest.flatten(arrays)[0]) != shard[
            "num_examples"]
        if changed or self._mismatch(arrays):
            self._warn(("replay", name), (
                f"Shard {name!r} changed since manifest {self.manifest_path!r} recorded it "
                f"({shard['num_examples']} examples then); resuming without it."))
            return
        self._append(name, (name, stat.st_size, stat.st_mtime_ns), arrays)

    def _warn(self, key: Any, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn(message, stacklevel=2)

    def __repr__(self) -> str:
        total = self._totals[-1] if self._totals else 0
        return (f"ShardDirectory({self.path!r}, shards={len(self._shards)}, "
                f"num_examples={total}, rescan_every_steps={self.rescan_every_steps})")


def _reason(error: Exception) -> str:
    """The first line of an error, without TensorFlow's `{{function_node ...}}` prefix."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error)).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:160] if text else ''}"
