"""Atomic, durable file writes: readers and crashes see the old file or the new one, never a part.

Every file the toolkit writes over another (recipes, reports, trimmed event files, dataset caches,
shards, `model.keras`) goes through here, so each step is done once and done right:

1. The content is written under a temporary name in the destination's own directory: a rename
   is only atomic within one file system.
2. The temporary file is fsynced *before* the rename. Without that a power loss can leave an
   empty or partial file under the final name: file systems may commit the rename (metadata)
   before the data it points to.
3. `os.replace` renames it onto the destination: atomic, a reader sees the old file or the new.
4. The directory is fsynced: the rename is a change of the directory, durable only then.

On any error, the temporary file is removed and the destination is left untouched.

The temporary name is `.<random>.tmp<suffix>`: hidden, with the destination's suffix (Keras's
`model.save` insists on `.keras`), and without the destination's name, so tools that pick files
by name never read a half-written one (TensorBoard reads every file whose name holds `tfevents`;
`toolkit.data.ShardDirectory` skips hidden files).

Example:

>>> import pathlib, tempfile
>>> from toolkit import atomic_write
>>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
>>> atomic_write.write_text(path, "first").read_text()
'first'
>>> with atomic_write.temporary_path(path) as temporary:
...     _ = temporary.write_text("second")
...     path.read_text()  # unchanged until the block ends
'first'
>>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
('second', ['notes.txt'])
"""

import contextlib
import os
import uuid
from pathlib import Path
from typing import Iterator

__all__ = ["fsync_directory", "fsync_file", "temporary_path", "write_bytes", "write_text"]


@contextlib.contextmanager
def temporary_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path to write; on success it atomically becomes `path`.

    Write the file at the yielded path with any writer (`open`, `np.savez`, `model.save`,
    `tf.io.TFRecordWriter`) and close it inside the block. When the block ends, the file is
    fsynced, renamed onto `path` and the directory fsynced. If the block raises, the temporary
    file is removed and `path` keeps its old content.

    Args:
        path: The destination file; its directory is created if missing.

    Yields:
        A path in the same directory with the same suffix, which does not exist yet.

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.keras"
    >>> with temporary_path(path) as temporary:
    ...     _ = temporary.write_bytes(b"zip")  # e.g. model.save(temporary)
    ...     temporary.suffix, temporary.parent == path.parent, path.exists()
    ('.keras', True, False)
    >>> path.read_bytes()
    b'zip'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{uuid.uuid4().hex[:12]}.tmp{path.suffix}")
    try:
        yield temporary
        fsync_file(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically and durably (see the module docstring).

    Args:
        path: The destination file; its directory is created if missing.
        data: The complete new content.

    Returns:
        `path`, as a `pathlib.Path`.

    Example:

    >>> import pathlib, tempfile
    >>> path = write_bytes(pathlib.Path(tempfile.mkdtemp()) / "blob.bin", b"\\x00\\x01")
    >>> path.read_bytes()
    b'\\x00\\x01'
    """
    with temporary_path(path) as temporary:
        # "x": never follow or overwrite anything; the file gets the usual umask permissions.
        with open(temporary, "xb") as file:
            file.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` as UTF-8 to `path` atomically and durably (see the module docstring).

    Args:
        path: The destination file; its directory is created if missing.
        text: The complete new content. Newlines are written as `\\n` on every platform.

    Returns:
        `path`, as a `pathlib.Path`.

    Example:

    >>> import pathlib, tempfile
    >>> write_text(pathlib.Path(tempfile.mkdtemp()) / "summary.json", "{}").read_text()
    '{}'
    """
    return write_bytes(path, text.encode("utf-8"))


def fsync_file(path: str | os.PathLike) -> None:
    """Flushes a written file's data to the disk, whichever handle wrote it.

    Args:
        path: The file.

    Example:

    >>> import pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "bundle.data"
    >>> _ = path.write_bytes(b"tensors")
    >>> fsync_file(path)
    """
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_directory(path: str | os.PathLike) -> None:
    """Makes the entries of a directory durable: files created, renamed or removed in it.

    Call it after renaming into `path` (a file, or a whole directory such as a checkpoint).

    Args:
        path: The directory.

    Example:

    >>> import tempfile
    >>> fsync_directory(tempfile.mkdtemp())
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
