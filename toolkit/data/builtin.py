"""Offline datasets: MNIST-1D, scikit-learn's digits and a heavy-tailed regression set.

Every dataset here is generated or shipped locally, so the default recipes train without a
network. `load(name)` returns a `BuiltinData` with float32 features, int64 class labels (or float32
regression targets) and a fixed train/test split.

- `"mnist1d"`: MNIST-1D (Greydanus & Steinbach, https://arxiv.org/abs/2011.14439) regenerated
  with the `mnist1d` package's `make_dataset(get_dataset_args())`, the paper's default arguments:
  5000 signals of length 40, 10 classes, the standard 4000/1000 split. Generation takes seconds, so
  the arrays are cached under `~/.cache/toolkit` (or `$TOOLKIT_CACHE_DIR`), keyed by the
  generator's arguments and the package version, and written atomically. Nothing is downloaded.
- `"digits"`: scikit-learn's 8x8 digits (1797 images, pixel values 0-16) flattened to 64
  features, split 80/20, stratified by class.
- `"heavy_tailed"`: synthetic regression (S2.8), see `_heavy_tailed`.
- `"mnist1d_position"`: regression on MNIST-1D-like signals, where is the digit (the second set
  of the two-task recipe), see `toolkit.data.position`.
"""

import dataclasses
import hashlib
import json
import os
import pathlib
import random
import warnings
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from toolkit import atomic_write
from toolkit.errors import DataError

__all__ = ["BuiltinData", "load", "builtin_names"]

_CACHE_FORMAT = 1
_MNIST1D_SEED = 42  # the paper's default generator seed


@dataclasses.dataclass(frozen=True)
class BuiltinData:
    """A built-in dataset, split into train and test arrays.

    Args:
        name: Dataset name, one of `builtin_names()`.
        x_train: Float32 features of the training examples.
        y_train: Training labels (int64) or regression targets (float32).
        x_test: Float32 features of the test examples.
        y_test: Test labels or targets.
        num_classes: Number of classes, or `None` for regression.
        task: `"classification"` or `"regression"`.
        description: One paragraph on where the data comes from.

    Example:

    >>> data = load("digits")
    >>> data.x_train.shape, data.num_classes, data.task
    ((1437, 64), 10, 'classification')
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: Optional[int]
    task: str
    description: str


def builtin_names() -> Tuple[str, ...]:
    """Returns the names `load` accepts, sorted.

    Example:

    >>> builtin_names()
    ('digits', 'heavy_tailed', 'mnist1d', 'mnist1d_position')
    """
    return tuple(sorted(_LOADERS))


def load(name: str, *, seed: int = 0) -> BuiltinData:
    """Loads a built-in dataset by name, offline.

    Args:
        name: One of `builtin_names()`: `"mnist1d"`, `"digits"`, `"heavy_tailed"` or
            `"mnist1d_position"`.
        seed: Seed of the split (`"digits"`) or of the generator (`"heavy_tailed"`;
            `"mnist1d"` uses generator seed `42 + seed`, so `0` gives the paper's standard
            dataset). Defaults to `0`.

    Returns:
        A `BuiltinData`.

    Raises:
        DataError: If `name` is not a built-in dataset.

    Example:

    >>> data = load("heavy_tailed")
    >>> float(data.x_train.min()), float(data.x_train.max())
    (0.0, 140000000.0)
    """
    if name not in _LOADERS:
        raise DataError(
            f"Unknown dataset {name!r}. Valid names: {', '.join(builtin_names())}. "
            f"Pick one of them, or pass your own arrays."
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise DataError(f"`seed` must be a non-negative integer. Received: seed={seed!r}.")
    return _LOADERS[name](int(seed))


def cache_dir() -> pathlib.Path:
    """Directory of cached generated datasets: `$TOOLKIT_CACHE_DIR`, else `~/.cache/toolkit`."""
    if os.environ.get("TOOLKIT_CACHE_DIR"):
        return pathlib.Path(os.environ["TOOLKIT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "toolkit"


def _mnist1d(seed: int) -> BuiltinData:
    from importlib.metadata import version

    from mnist1d.data import get_dataset_args, make_dataset
    from mnist1d.utils import ObjectView

    args = get_dataset_args(as_dict=True)
    args.pop("url")  # never downloaded; only the generator's arguments matter
    args["seed"] = _MNIST1D_SEED + seed
    key = json.dumps({"args": args, "mnist1d": version("mnist1d"), "format": _CACHE_FORMAT},
                     sort_keys=True)
    path = cache_dir() / f"mnist1d-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    arrays = _read_cache(path)
    if arrays is None:
        # make_dataset seeds NumPy's and Python's global generators; restore the user's.
        numpy_state, python_state = np.random.get_state(), random.getstate()
        try:
            generated = make_dataset(ObjectView(dict(args)))
        finally:
            np.random.set_state(numpy_state)
            random.setstate(python_state)
        arrays = {
            "x_train": generated["x"].astype(np.float32),
            "y_train": generated["y"].astype(np.int64),
            "x_test": generated["x_test"].astype(np.float32),
            "y_test": generated["y_test"].astype(np.int64),
        }
        _write_cache(path, arrays)
    return BuiltinData(
        name="mnist1d",
        num_classes=10,
        task="classification",
        description=(
            "MNIST-1D (Greydanus & Steinbach 2020): 10 digit templates as 1-D signals of length "
            "40, padded, sheared, translated, with correlated and iid noise; regenerated locally "
            f"with the mnist1d package (generator seed {args['seed']}), 4000 train / 1000 test."
        ),
        **arrays,
    )


def _digits(seed: int) -> BuiltinData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=seed
    )
    return BuiltinData(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        num_classes=10,
        task="classification",
        description=(
            "scikit-learn's handwritten digits: 1797 8x8 images with pixel values 0-16, "
            f"flattened to 64 features; stratified 80/20 split (seed {seed})."
        ),
    )


def _heavy_tailed(seed: int, num_train: int = 4000, num_test: int = 1000) -> BuiltinData:
    """Synthetic regression whose 8 features span [0, 1.4e8] with heavy tails (S2.8).

    Feature j is lognormal around a median `m_j = 10**(6 j / 7)` (1 to 1e6):
    `x_j = m_j * exp(2.5 * z)`, `z ~ N(0, 1)`, so each feature spans about five orders of
    magnitude; 10% of the entries are exactly 0 and values are clipped at 1.4e8 (the largest
    feature reaches it). With `r_j = x_j / m_j` and `s_j = tanh(log r_j) = (r_j**2 - 1) /
    (r_j**2 + 1)` (-1 at 0, 0 at the median, +1 in the tail), the target is
    `y = sum_j w_j s_j + 0.5 s_0 s_1 + 0.1 noise` with fixed weights `w_j` of both signs, then
    standardized. It depends on where each feature sits in its bulk, across orders of magnitude:
    plain standardization divides by a tail-dominated std, squashing the bulk next to 0, while
    `tanh(x / C)` with `C` near the bulk keeps it in tanh's responsive range.
    """
    rng = np.random.default_rng(seed)
    num_features = 8
    medians = 10.0 ** np.linspace(0.0, 6.0, num_features)
    weights = np.array([1.0, -0.8, 0.6, -0.5, 0.9, -0.7, 0.4, -0.6])
    num = num_train + num_test
    x = medians * np.exp(2.5 * rng.standard_normal((num, num_features)))
    x[rng.random((num, num_features)) < 0.1] = 0.0
    x = np.clip(x, 0.0, 1.4e8)
    ratio_squared = (x / medians) ** 2
    s = (ratio_squared - 1.0) / (ratio_squared + 1.0)
    y = s @ weights + 0.5 * s[:, 0] * s[:, 1] + 0.1 * rng.standard_normal(num)
    y = (y - y[:num_train].mean()) / y[:num_train].std()
    x, y = x.astype(np.float32), y.astype(np.float32)
    return BuiltinData(
        name="heavy_tailed",
        x_train=x[:num_train],
        y_train=y[:num_train],
        x_test=x[num_train:],
        y_test=y[num_train:],
        num_classes=None,
        task="regression",
        description=(
            "Synthetic heavy-tailed regression (S2.8): 8 lognormal features with medians 1 to "
            "1e6, 10% zeros, clipped to [0, 1.4e8]; the target is a smooth function of each "
            f"feature's log-position in its bulk plus noise (seed {seed}), 4000 train / 1000 test."
        ),
    )


def _read_cache(path: pathlib.Path) -> Optional[Dict[str, np.ndarray]]:
    try:
        with np.load(path) as stored:
            return {key: stored[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError):  # corrupt or partial: regenerate
        return None


def _write_cache(path: pathlib.Path, arrays: Dict[str, np.ndarray]) -> None:
    """Writes the arrays atomically and durably (`toolkit.atomic_write`)."""
    try:
        with atomic_write.temporary_path(path) as temporary:
            with open(temporary, "xb") as file:
                np.savez(file, **arrays)
    except OSError as error:  # a read-only home only costs regenerating next time
        warnings.warn(
            f"Could not cache the generated dataset at {str(path)!r} ({error}); it will be "
            f"generated again next time. Set TOOLKIT_CACHE_DIR to a writable directory.",
            stacklevel=3,
        )


def _mnist1d_position(seed: int) -> BuiltinData:
    from toolkit.data.position import mnist1d_position

    return mnist1d_position(seed)


_LOADERS: Dict[str, Callable[[int], BuiltinData]] = {
    "mnist1d": _mnist1d,
    "digits": _digits,
    "heavy_tailed": _heavy_tailed,
    "mnist1d_position": _mnist1d_position,
}
