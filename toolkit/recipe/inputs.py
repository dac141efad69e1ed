"""What a recipe trains and evaluates on: one dataset, a TFDS split, a growing directory, or a mix.

`build_inputs(recipe, run_dir)` reads the `[data]` table and returns `RecipeInputs`:

- `data.name` a built-in dataset or `"package.module:function"`: its arrays (`build_data`).
- `data.name = "tfds:NAME"`: `toolkit.data.tfds_source` on `data.split` (in memory or by random
  access, per `data.in_memory`) and `data.eval_split` (always decoded into memory: slice a large
  one, `"validation[:10000]"`). The class count comes from the label feature.
- `data.shards_dir`: training examples from a growing `toolkit.data.ShardDirectory`, rescanned
  every `data.rescan_every_steps` and recorded in `run_dir/shards.jsonl` (a resumed run replays
  the same shards); `data.name` still gives the test split, the task and the class count.
- `[data.sources.<head>]` tables: `toolkit.data.mix` of one dataset per head, weighted by
  `weight`; the evaluation set concatenates every head's test split with per-head weights that
  mask the other heads' examples (padded to whole batches, so each head's loss is exactly its
  mean over its own test split).

Every head keeps a `BuiltinData` whose `x_train`/`y_train` are the training arrays, or a sample
of them for data read by random access or from shards (used to adapt input scaling and to check
the data).

Only the structure of the data is validated here (rows, dtypes, shapes): the sources are built
with value checks off (`ArraySource(..., check="off")`), because
`toolkit.recipe.data_check.check_recipe_data` checks the values next, once, under the recipe's
`data.check`. With `data.check = "warn"` the training source therefore holds the rows it warned
about, NaN included.

Example:

>>> from toolkit.recipe import load_recipe
>>> recipe = load_recipe("digits_mlp", ["data.max_train_examples=64"])
>>> inputs = build_inputs(recipe, run_dir=None)
>>> inputs.name, inputs.dataset_size, sorted(inputs.heads)
('digits', 64, [''])
"""

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np

from toolkit.errors import DataError, RecipeError
from toolkit.recipe.build import build_data
from toolkit.recipe.schema import DataConfig, Recipe

__all__ = ["RecipeInputs", "build_inputs"]

_SAMPLE = 10_000  # examples read from random-access or shard sources for adapt() and checks
_EVAL_BATCH = 256
_TFDS = "tfds:"
_TFDS_KEYS = ("split", "eval_split", "data_dir", "in_memory", "download")


@dataclasses.dataclass(frozen=True)
class RecipeInputs:
    """The data side of a run (see the module doc).

    Args:
        name: What the run trains on, for the summary (`"mnist1d"`, `"digit=mnist1d, ..."`).
        heads: Head name -> `toolkit.data.BuiltinData`; the single head of a one-dataset recipe
            is `""`.
        train: The source `toolkit.data.endless` draws training batches from.
        eval_data: `(x_test, y_test)` arrays, or a finite batched `tf.data.Dataset` with per-head
            weights for several heads.
        dataset_size: Training examples (for epoch-equivalents), `None` for a growing directory.
        validation_data: `(x, y)` held out from the training arrays by `data.validation_examples`,
            or `None`. Defaults to `None`.

    Example:

    >>> RecipeInputs("demo", {}, None, None, None).multi_head
    False
    """

    name: str
    heads: dict
    train: Any
    eval_data: Any
    dataset_size: Optional[int]
    validation_data: Optional[tuple] = None

    @property
    def monitored_data(self) -> Any:
        """What training evaluates on: the validation split if there is one, else the test split."""
        return self.validation_data if self.validation_data is not None else self.eval_data

    @property
    def multi_head(self) -> bool:
        """Whether the recipe has `[data.sources.<head>]` tables (a model with named outputs)."""
        return bool(self.heads) and "" not in self.heads

    def evaluate(self, model: Any, batch_size: int, split: str = "test") -> dict:
        """Evaluates `model` on the test split(s) or on `"validation"`; returns Keras's metrics."""
        data = self.validation_data if split == "validation" else self.eval_data
        if isinstance(data, tuple):
            x, y = data
            return model.evaluate(x, y, batch_size=batch_size, verbose=0, return_dict=True)
        return model.evaluate(data, verbose=0, return_dict=True)


def build_inputs(recipe: Recipe, run_dir: Optional[os.PathLike]) -> RecipeInputs:
    """Loads the recipe's training and evaluation data (see the module doc).

    Args:
        recipe: The recipe; its `[data]` table is read.
        run_dir: The run directory, home of `shards.jsonl` for `data.shards_dir`; `None` keeps
            the shard record in memory.

    Returns:
        `RecipeInputs`.

    Raises:
        DataError: For unknown, unprepared or malformed data (empty, rows that do not align,
            non-numeric arrays), or shards whose examples do not match the test split. NaN/Inf
            are not errors here: `check_recipe_data` reports them under `data.check`.
        RecipeError: For `[data]` keys that contradict each other.

    Example:

    >>> from toolkit.recipe import load_recipe
    >>> recipe = load_recipe("digits_mlp", ["data.max_eval_examples=10"])
    >>> build_inputs(recipe, run_dir=None).eval_data[0].shape
    (10, 64)
    """
    config = recipe.data
    _check_keys(config)
    if config.sources:
        if config.validation_examples:
            raise RecipeError(
                "`data.validation_examples` is not supported with [data.sources] tables yet. "
                "Remove it, or train one dataset at a time."
            )
        return _mixed(config)
    data, train = _load(config.name, config)
    if config.shards_dir:
        data, train = _shards(config, data, run_dir)
    validation = None
    if config.validation_examples:
        data, validation = _hold_out(data, config, in_memory=train is None)
    if train is None:
        train = _array_source(data)
    return RecipeInputs(name=data.name, heads={"": data}, train=train,
                        eval_data=(data.x_test, data.y_test), dataset_size=train.num_examples,
                        validation_data=validation)


def _hold_out(data: Any, config: DataConfig, in_memory: bool) -> tuple:
    """Splits `data.validation_examples` off the training arrays: `(data, (x_val, y_val))`.

    The permutation is seeded by `data.seed` alone, so every trial of a search and every seed
    of `train.seed` holds out the same examples.
    """
    count, total = config.validation_examples, len(data.x_train)
    if not in_memory or config.shards_dir:
        raise RecipeError(
            "`data.validation_examples` needs the training set in memory, but this recipe reads "
            "it by random access or from `data.shards_dir`. For TFDS, hold out a slice instead: "
            'data.split = "train[:90%]" and data.eval_split = "train[90%:]".'
        )
    if count >= total:
        raise RecipeError(
            f"`data.validation_examples` = {count} holds out every training example (there are "
            f"{total}). Use fewer, e.g. {max(1, total // 10)}."
        )
    order = np.random.default_rng(config.seed).permutation(total)
    kept, held = np.sort(order[count:]), np.sort(order[:count])
    validation = (data.x_train[held], data.y_train[held])
    data = dataclasses.replace(data, x_train=data.x_train[kept], y_train=data.y_train[kept])
    return data, validation


def _check_keys(config: DataConfig) -> None:
    defaults = DataConfig()
    if config.sources and config.name != defaults.name:
        warnings.warn(
            f"`data.name` = {config.name!r} is ignored: the [data.sources.<head>] tables name "
            f"the datasets. Remove `data.name` from the recipe.", stacklevel=3)
    if config.sources and config.shards_dir:
        raise RecipeError(
            "`data.shards_dir` cannot be mixed with [data.sources] (mixing needs sources of "
            "fixed size). Train on the growing directory alone, or mix fixed datasets."
        )
    names = [s.name for s in config.sources] if config.sources else [config.name]
    if not any(name.startswith(_TFDS) for name in names):
        changed = [k for k in _TFDS_KEYS if getattr(config, k) != getattr(defaults, k)]
        if changed:
            raise RecipeError(
                f"`data.{changed[0]}` is only read for TFDS datasets (data.name = \"tfds:NAME\"), "
                f"but the recipe trains on {', '.join(names)}. Remove it."
            )


def _load(name: str, config: DataConfig) -> tuple:
    """Returns `(BuiltinData, source or None)`: `None` means train on its arrays."""
    if name.startswith(_TFDS):
        return _tfds(name, config)
    # Values are checked once, by check_recipe_data under data.check, not while loading.
    return build_data(dataclasses.replace(config, name=name, check="off")), None


def _array_source(data: Any) -> Any:
    """The training arrays of `data` as a source, values unchecked (see the module doc)."""
    from toolkit.data import ArraySource

    return ArraySource((data.x_train, data.y_train), check="off")


def _tfds(name: str, config: DataConfig) -> tuple:
    import tensorflow_datasets as tfds

    from toolkit.data import BuiltinData, tfds_source

    # Values are checked once, by check_recipe_data under data.check, not while decoding.
    options = dict(data_dir=config.data_dir or None, download=config.download, check="off")
    train = tfds_source(name, config.split, in_memory=config.in_memory, **options)
    test = tfds_source(name, config.eval_split, in_memory=True, **options)
    if len(test.element_spec) != 2:
        raise DataError(f"TFDS dataset {name!r} has no labels (supervised keys); expected (x, y).")
    x_test, y_test = (np.asarray(t) for t in test.tensors)
    if config.max_eval_examples:
        x_test, y_test = x_test[: config.max_eval_examples], y_test[: config.max_eval_examples]
    in_memory = hasattr(train, "tensors")
    if in_memory:
        x_train, y_train = (np.asarray(t)[: config.max_train_examples or None]
                            for t in train.tensors)
    else:
        if 0 < config.max_train_examples < train.num_examples:
            train = _FirstExamples(train, config.max_train_examples)
        x_train, y_train = _sample(train)
    builder = tfds.builder(name[len(_TFDS):], data_dir=options["data_dir"])
    label = builder.info.features[builder.info.supervised_keys[1]]
    num_classes = getattr(label, "num_classes", None)
    data = BuiltinData(
        name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        num_classes=num_classes, task="classification" if num_classes else "regression",
        description=f"TFDS {name[len(_TFDS):]}, splits {config.split!r} / {config.eval_split!r}.",
    )
    return data, None if in_memory else train


class _FirstExamples:
    """The first `limit` examples of a random-access source (for `max_train_examples`)."""

    def __init__(self, source: Any, limit: int):
        self._source = source
        self.num_examples = min(limit, source.num_examples)
        self.element_spec = source.element_spec

    def gather(self, indices: Any) -> Any:
        return self._source.gather(indices)


def _sample(source: Any, size_at_start: Optional[int] = None) -> tuple:
    """Reads up to `_SAMPLE` first examples of a source as NumPy `(x, y)`."""
    import tensorflow as tf

    total = size_at_start if size_at_start is not None else source.num_examples
    x, y = source.gather(tf.range(min(int(total), _SAMPLE), dtype=tf.int64))[:2]
    return np.asarray(x), np.asarray(y)


def _shards(config: DataConfig, data: Any, run_dir: Optional[os.PathLike]) -> tuple:
    import tensorflow as tf

    from toolkit.data import ShardDirectory

    manifest = Path(run_dir) / "shards.jsonl" if run_dir is not None else None
    source = ShardDirectory(config.shards_dir, rescan_every_steps=config.rescan_every_steps,
                            manifest_path=manifest)
    x_train, y_train = _sample(source, int(source.size_at(tf.constant(0, tf.int64))))
    if x_train.shape[1:] != data.x_test.shape[1:]:
        raise DataError(
            f"The shards of `data.shards_dir` = {config.shards_dir!r} hold examples of shape "
            f"{x_train.shape[1:]}, but the test split of `data.name` = {config.name!r} has "
            f"{data.x_test.shape[1:]}. Point data.name at the dataset the shards extend."
        )
    data = dataclasses.replace(data, name=f"{config.shards_dir} (shards)", x_train=x_train,
                               y_train=y_train)
    return data, source


def _mixed(config: DataConfig) -> RecipeInputs:
    import tensorflow as tf

    from toolkit.data import mix

    heads, sources = {}, {}
    for source in config.sources:
        data, train = _load(source.name, config)
        heads[source.head] = data
        sources[source.head] = train if train is not None else _array_source(data)
    mixture = mix(sources, weights={s.head: s.weight for s in config.sources})
    return RecipeInputs(
        name=", ".join(f"{s.head}={heads[s.head].name}" for s in config.sources), heads=heads,
        train=mixture, eval_data=_mixed_eval(heads, tf), dataset_size=mixture.num_examples,
    )


def _mixed_eval(heads: dict, tf: Any) -> Any:
    """Every head's test split in one finite dataset `(x, {head: y}, {head: weight})`.

    Keras averages a head's batch losses `sum(weight * loss) / batch_size` over batches with
    equal weight, so the set is padded to whole batches with zero-weight rows and head `h`'s
    examples weigh `total / count_h`: the logged `h_loss` is exactly its mean over its own test
    split; weighted metrics (`weighted_metrics`) ignore the other heads' rows.
    """
    counts = {h: len(d.x_test) for h, d in heads.items()}
    total = sum(counts.values())
    batch = min(_EVAL_BATCH, total)
    padded = -(-total // batch) * batch
    pad = padded - total
    first = next(iter(heads.values()))
    x = np.concatenate([d.x_test for d in heads.values()]
                       + [np.zeros((pad,) + first.x_test.shape[1:], first.x_test.dtype)])
    ys, weights, start = {}, {}, 0
    for head, data in heads.items():
        y = np.zeros((padded,) + data.y_test.shape[1:], data.y_test.dtype)
        y[start:start + counts[head]] = data.y_test
        weight = np.zeros(padded, np.float32)
        weight[start:start + counts[head]] = padded / counts[head]
        ys[head], weights[head] = y, weight
        start += counts[head]
    return tf.data.Dataset.from_tensor_slices((x, ys, weights)).batch(batch)
