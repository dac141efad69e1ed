"""Lineage: which endless pipeline a dataset's batches come from, and whether its position holds.

Users wrap the dataset `toolkit.data.endless` returns: `.map(normalize)`, `.prefetch(2)`,
`.with_options(options)`. Each transform is a new `tf.data.Dataset` object, so metadata kept on
the endless dataset alone would be lost. `trace(dataset)` walks from a dataset down through its
inputs to the endless pipeline it was derived from and tells whether every transform on the way
keeps the *position*: one output batch per input batch, in order, so that the batch of step `k`
of the derived dataset is still a pure function of `(seed, k)`.

Transforms that keep it: `map` (sequential, or parallel with deterministic order), `prefetch`,
`with_options` (unless it turns off deterministic order), `assert_cardinality`. Anything else
(`shuffle`, `batch`, `unbatch`, `filter`, `skip`, `take`, `cache`, `zip`, `interleave`, ...) changes
which batch comes at which step, and `trace` names it as the blocker.

Example:

>>> import numpy as np
>>> from toolkit.data.endless import endless
>>> data = endless(np.zeros((8, 2), "float32"), batch_size=4)
>>> trace(data.map(lambda x: 2 * x).prefetch(2)).blocker is None
True
>>> trace(data.shuffle(4)).blocker
'shuffle'
>>> trace(tf.data.Dataset.range(3).repeat()).info is None
True
"""

import dataclasses
import weakref
from typing import Any, Optional

import tensorflow as tf

from toolkit import keras_compat

__all__ = ["Lineage", "register", "trace"]

_ROOTS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()

# tf.data's dataset classes (their Python names) that yield one element per input element, in
# order: the position of an endless pipeline survives them.
_KEEPS_POSITION = {
    "_MapDataset": "map",
    "_ParallelMapDataset": "map",
    "_PrefetchDataset": "prefetch",
    "_OptionsDataset": "with_options",
    "_AssertCardinalityDataset": "assert_cardinality",
    "_MaxIntraOpParallelismDataset": "with_options",
    "_PrivateThreadPoolDataset": "with_options",
}
# Readable names of the common transforms that lose it, for the warning.
_LOSES_POSITION = {
    "_ShuffleDataset": "shuffle",
    "_BatchDataset": "batch",
    "_ParallelBatchDataset": "batch",
    "_PaddedBatchDataset": "padded_batch",
    "_UnbatchDataset": "unbatch",
    "_RebatchDataset": "rebatch",
    "_FilterDataset": "filter",
    "_SkipDataset": "skip",
    "_TakeDataset": "take",
    "CacheDataset": "cache",
    "_ZipDataset": "zip",
    "_ConcatenateDataset": "concatenate",
    "_InterleaveDataset": "interleave",
    "_ParallelInterleaveDataset": "interleave",
    "_FlatMapDataset": "flat_map",
    "_RepeatDataset": "repeat",
    "_IgnoreErrorsDataset": "ignore_errors",
    "_ShardDataset": "shard",
}


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Where a dataset's batches come from.

    Args:
        info: The `EndlessInfo` of the endless pipeline the dataset derives from, or `None`
            when it derives from none.
        blocker: The first transform (from the endless pipeline up) that loses the position,
            e.g. `"shuffle"`; `None` when the position holds.
    """

    info: Optional[Any]
    blocker: Optional[str]

    @property
    def positioned(self) -> bool:
        """Whether `info.seek(step)` positions the dataset at step `step`."""
        return self.info is not None and self.blocker is None


def register(dataset: tf.data.Dataset, info: Any) -> None:
    """Records that `dataset` is the endless pipeline described by `info` (by `endless`)."""
    _ROOTS[dataset] = info


def trace(dataset: Any) -> Lineage:
    """Walks from `dataset` to the endless pipeline it derives from (see the module doc).

    Args:
        dataset: Any object; only `tf.data.Dataset`s can derive from an endless pipeline.

    Returns:
        A `Lineage`. With several inputs (e.g. `zip`), the first endless pipeline found is
        reported, and the multi-input transform is the blocker.
    """
    blocker = None
    pending = [dataset]
    seen = set()
    while pending:
        node = pending.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        info = _root_info(node)
        if info is not None:
            return Lineage(info=info, blocker=blocker)
        if not isinstance(node, tf.data.Dataset):
            continue
        name = keras_compat.dataset_op_name(node)
        inputs = keras_compat.dataset_inputs(node)
        if name in _KEEPS_POSITION and len(inputs) == 1:
            if not keras_compat.dataset_keeps_order(node):
                blocker = blocker or f"{_KEEPS_POSITION[name]} without deterministic order"
        elif inputs:
            # The transform nearest to the user is named (it is the one they wrote last).
            blocker = blocker or _LOSES_POSITION.get(name, name.strip("_").replace("Dataset", ""))
        pending.extend(inputs)
    return Lineage(info=None, blocker=None)


def _root_info(node: Any) -> Optional[Any]:
    try:
        return _ROOTS.get(node)
    except TypeError:  # unhashable or not weak-referenceable: not a dataset of ours
        return None
