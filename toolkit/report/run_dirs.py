"""find_run_dirs: run directories from paths, glob patterns and search directories.

`toolkit compare` takes what a user types: run directories, quoted globs (`'runs/*/default'`,
expanded here, recursively with `**`) and search directories (`toolkit tune`'s, or any folder
of runs), and this module turns them into the list of run directories. A run directory is a
folder with a `recipe.toml` or with event files in `train/` or `validation/`; the search stops
at the first one found on each path, so a run's own folders (`checkpoints/`, ...) are never
taken for runs.

Example:

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> for name in ("a", "b"):
...     (root / "search" / name).mkdir(parents=True)
...     _ = (root / "search" / name / "recipe.toml").write_text("")
>>> [path.name for path in find_run_dirs([root / "search"])]
['a', 'b']
"""

import glob
import os
import warnings
from pathlib import Path
from typing import Dict, List, Sequence

from toolkit.errors import DataError

__all__ = ["HELP", "RUN_MARKERS", "find_run_dirs"]

RUN_MARKERS = ("train", "validation")
HELP = ("Pass run directories (written by `toolkit train` or `toolkit.fit(run_dir=...)`), "
         "glob patterns such as 'runs/*/default', or a search directory holding runs.")

def find_run_dirs(patterns: Sequence[str | os.PathLike]) -> List[Path]:
    """Expands run directories, glob patterns and search directories into run directories.

    A run directory holds a `recipe.toml` or TensorBoard events in `train/` or `validation/`.
    A directory that is not one is searched: every run directory below it is found (a found run
    is not searched further, so its `checkpoints/` are never read). Patterns are expanded here too
    (`**` included), since quoting them keeps the shell from doing it.

    Args:
        patterns: Paths or glob patterns.

    Returns:
        The run directories, each once, in the order given (a pattern's matches sorted).

    Files are skipped with a warning (a shell expanding `runs/x/*` passes them).

    Raises:
        DataError: When a path does not exist, a pattern matches nothing, a directory holds no
            run directory, or no run directory is found at all.

    Example:

    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> for trial in ("trial_0", "trial_1"):
    ...     (root / "search" / "trials" / trial / "checkpoints").mkdir(parents=True)
    ...     _ = (root / "search" / "trials" / trial / "recipe.toml").write_text("")
    >>> [path.name for path in find_run_dirs([root / "search"])]
    ['trial_0', 'trial_1']
    >>> [path.name for path in find_run_dirs([str(root / "search" / "*" / "trial_1")])]
    ['trial_1']
    """
    if not patterns:
        raise DataError(f"No run directory was given. {HELP}")
    found: Dict[Path, None] = {}
    for pattern in map(os.fspath, patterns):
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
            runs = [run for path in matches if path.is_dir() for run in _runs_below(path)]
            if not runs:
                what = "matches nothing" if not matches else "matches no run directory"
                raise DataError(f"The pattern {pattern!r} {what}. Check it with `ls {pattern}`. "
                                f"{HELP}")
        elif Path(pattern).is_file():  # e.g. `runs/x/*` expanded by the shell: plots, logs
            warnings.warn(f"{pattern!r} is a file, not a run directory; it is skipped.",
                          stacklevel=2)
            continue
        else:
            if not Path(pattern).is_dir():
                raise DataError(f"The run directory {pattern!r} does not exist. {HELP}")
            runs = _runs_below(Path(pattern))
            if not runs:
                raise DataError(
                    f"{pattern!r} holds no run directory (a folder with a recipe.toml or event "
                    f"files in train/ or validation/). {HELP}")
        found.update(dict.fromkeys(runs))
    if not found:
        raise DataError(f"{[os.fspath(p) for p in patterns]} names no run directory. {HELP}")
    return list(found)


def _is_run_dir(path: Path) -> bool:
    if (path / "recipe.toml").is_file():
        return True
    return any(name for marker in RUN_MARKERS if (path / marker).is_dir()
               for name in os.listdir(path / marker) if "tfevents" in name)


def _runs_below(root: Path) -> List[Path]:
    runs = []
    for folder, dirs, _ in os.walk(root):
        if _is_run_dir(Path(folder)):
            runs.append(Path(folder))
            dirs[:] = []  # A run's subfolders (checkpoints/, train/, ...) are its own.
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return runs
