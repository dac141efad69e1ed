"""The on-disk checkpoint format: atomic directories, a manifest written last, verification.

One checkpoint is one directory `ckpt-<step>` holding

- `variables.index` / `variables.data-00000-of-00001`: a TensorFlow tensor bundle (the format
  `tf.train.Checkpoint` writes, readable by `tf.train.list_variables` and
  `tf.train.load_checkpoint`) whose keys are `<group>/<index>/<variable path>`, e.g.
  `optimizer/0002/adam/dense_kernel_momentum`;
- `state.json`: JSON-able run state (callback states, variable names);
- `manifest.json`, written last: the step, the metrics and the size and CRC-32 of every other file.

The directory is written under a temporary name next to its final place and renamed when complete,
so a crash at any instant leaves either the whole checkpoint or none of it; the previous
checkpoints are never touched. Every file is fsynced before the rename and the parent directory
after it (`toolkit.atomic_write`), so a power loss cannot leave a renamed but empty checkpoint. A
checkpoint is *good* when its manifest parses and every file has the recorded size and checksum
(the bundle also carries TensorFlow's per-tensor CRC-32C, checked on read).
"""

import dataclasses
import json
import os
import shutil
import tempfile
import time
import zlib
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from toolkit import atomic_write
from toolkit.errors import CheckpointError

__all__ = [
    "CheckpointInfo",
    "list_checkpoints",
    "read_checkpoint",
    "verify_checkpoint",
    "write_checkpoint",
]

FORMAT = "toolkit-checkpoint/1"
PREFIX = "ckpt-"
BUNDLE = "variables"
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
_TMP = ".tmp-"
_TRASH = ".trash-"


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint on disk, as listed (not yet verified).

    Args:
        path: The checkpoint directory.
        step: Optimizer step the checkpoint was taken at.
        metrics: Metrics recorded with it (e.g. `{"val_loss": 0.31}`), used to keep the best.
        created: Unix time it was written.
    """

    path: str
    step: int
    metrics: Dict[str, float]
    created: float


def _crc32(path: str) -> int:
    crc = 0
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 22), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _remove(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def checkpoint_path(directory: str, step: int) -> str:
    """Returns the directory checkpoint `step` lives in."""
    return os.path.join(directory, f"{PREFIX}{int(step):08d}")


def write_checkpoint(
    directory: str,
    step: int,
    tensors: Mapping[str, tf.Tensor],
    state: Mapping[str, Any],
    metrics: Optional[Mapping[str, float]] = None,
) -> str:
    """Writes one checkpoint atomically and durably, and returns its path.

    Raises:
        CheckpointError: The directory cannot be written (read-only, disk full, ...). Whatever
            was partly written is removed; existing checkpoints are untouched.
    """
    tmp = None
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, exist_ok=True)
            # The new directory is an entry of its parent: durable only once that is fsynced.
            atomic_write.fsync_directory(os.path.dirname(os.path.abspath(directory)))
        tmp = tempfile.mkdtemp(prefix=f"{_TMP}{PREFIX}{int(step):08d}-", dir=directory)
        names = list(tensors)
        tf.raw_ops.SaveV2(
            prefix=os.path.join(tmp, BUNDLE),
            tensor_names=names,
            shape_and_slices=[""] * len(names),
            tensors=[tensors[name] for name in names],
        )
        for name in os.listdir(tmp):  # TensorFlow writes the bundle without fsync.
            atomic_write.fsync_file(os.path.join(tmp, name))
        _write_json(os.path.join(tmp, STATE_FILE), state)
        files = {}
        for name in sorted(os.listdir(tmp)):
            path = os.path.join(tmp, name)
            files[name] = {"bytes": os.path.getsize(path), "crc32": _crc32(path)}
        manifest = {
            "format": FORMAT,
            "step": int(step),
            "metrics": {key: float(value) for key, value in (metrics or {}).items()},
            "created": time.time(),
            "files": files,
        }
        # Written last; its write also fsyncs `tmp`, so every entry is durable before the rename.
        _write_json(os.path.join(tmp, MANIFEST_FILE), manifest)
        final = checkpoint_path(directory, step)
        trash = None
        if os.path.exists(final):
            # Same step written again (e.g. after a rollback): the new one replaces it.
            trash = tempfile.mkdtemp(prefix=_TRASH, dir=directory)
            os.rename(final, os.path.join(trash, "old"))
        os.rename(tmp, final)
        tmp = None
        atomic_write.fsync_directory(directory)
        if trash is not None:
            _remove(trash)
        return final
    except (OSError, tf.errors.OpError) as error:
        if tmp is not None:
            _remove(tmp)
        reason = getattr(error, "message", None) or str(error)
        raise CheckpointError(
            f"Could not write the checkpoint of step {int(step)} into `{directory}`: {reason}. "
            f"The checkpoints already there are intact. Make the directory writable or free "
            f"disk space, then resume."
        ) from error


def _write_json(path: str, value: Mapping[str, Any]) -> None:
    atomic_write.write_text(path, json.dumps(value, indent=1, sort_keys=True))


def _read_json(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        value = json.load(file)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, found {type(value).__name__}")
    return value


def list_checkpoints(directory: str) -> List[CheckpointInfo]:
    """Lists the complete checkpoints of `directory` (those with a manifest), oldest first.

    Temporary directories of writes that never finished are skipped (and removed when older
    than an hour, so they cannot belong to a write in progress).
    """
    if not os.path.isdir(directory):
        return []
    infos = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith((_TMP, _TRASH)):
            if time.time() - os.path.getmtime(path) > 3600:
                _remove(path)
            continue
        if not name.startswith(PREFIX) or not name[len(PREFIX) :].isdigit():
            continue
        try:
            manifest = _read_json(os.path.join(path, MANIFEST_FILE))
            infos.append(
                CheckpointInfo(
                    path=path,
                    step=int(manifest["step"]),
                    metrics=dict(manifest.get("metrics", {})),
                    created=float(manifest.get("created", 0.0)),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            # No manifest or not parsable: never complete, or damaged; `verify` says which.
            infos.append(CheckpointInfo(path, int(name[len(PREFIX) :]), {}, 0.0))
    return sorted(infos, key=lambda info: info.step)


def verify_checkpoint(path: str) -> Dict[str, Any]:
    """Checks the manifest and every file's size and CRC-32; returns the manifest.

    Raises:
        CheckpointError: Naming what is missing or damaged.
    """
    try:
        manifest = _read_json(os.path.join(path, MANIFEST_FILE))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"`{path}` has no readable `{MANIFEST_FILE}` ({error}).") from error
    if manifest.get("format") != FORMAT:
        raise CheckpointError(
            f"`{path}` has format {manifest.get('format')!r}; expected {FORMAT!r}."
        )
    for name, expected in manifest.get("files", {}).items():
        file = os.path.join(path, name)
        if not os.path.isfile(file):
            raise CheckpointError(f"`{path}` is missing `{name}`.")
        size = os.path.getsize(file)
        if size != expected["bytes"]:
            raise CheckpointError(
                f"`{file}` is truncated or damaged: {size} bytes, expected {expected['bytes']}."
            )
        if _crc32(file) != expected["crc32"]:
            raise CheckpointError(f"`{file}` is damaged: its checksum does not match.")
    return manifest


def read_checkpoint(path: str) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Reads every tensor and the state of a verified checkpoint into host memory.

    Raises:
        CheckpointError: The bundle cannot be read (TensorFlow's own checksums failed).
    """
    try:
        reader = tf.train.load_checkpoint(os.path.join(path, BUNDLE))
        tensors = {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()}
        state = _read_json(os.path.join(path, STATE_FILE))
    except (OSError, ValueError, tf.errors.OpError) as error:
        reason = getattr(error, "message", None) or str(error)
        raise CheckpointError(f"`{path}` cannot be read: {reason}") from error
    return tensors, state


def remove_checkpoint(path: str) -> None:
    """Deletes a checkpoint: renamed out of the way first, so a crash never leaves half of one."""
    directory = os.path.dirname(path)
    trash = tempfile.mkdtemp(prefix=_TRASH, dir=directory)
    os.rename(path, os.path.join(trash, "old"))
    _remove(trash)
