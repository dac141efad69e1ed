"""Endless data: batches drawn by step, not by epoch (S0.1-S0.4).

A training pipeline here never ends. `endless(source, batch_size, seed=..., start_step=...)`
draws the batch of optimizer step `k` from `(seed, k)` alone, either IID with replacement or in
reshuffled passes, so there are no epochs to choose and a resumed run rebuilds the pipeline at its
step instead of saving iterator state. A *source* is anything with random access
(`toolkit.data.sources`); in-memory arrays become an `ArraySource`. `load(name)` gives the
offline datasets (`builtin_names()`).

Example:

>>> import keras
>>> from toolkit.data import endless, endless_info, load
>>> data = load("digits")
>>> train = endless((data.x_train, data.y_train), batch_size=32, seed=0)
>>> model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(data.num_classes)])
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
>>> _ = model.fit(train, steps_per_epoch=20, epochs=2, verbose=0)
>>> endless_info(train).examples_at(40)  # examples drawn in those 40 steps
1280
"""

from toolkit.data.builtin import BuiltinData, builtin_names, load
from toolkit.data.endless import EndlessInfo, endless, endless_info
from toolkit.data.sources import ArraySource, Source, as_source
from toolkit.data import augment
from toolkit.data.check import DataFinding, check
from toolkit.data.mixing import Mixture, mix
from toolkit.data.shard_formats import read_shard, write_shard
from toolkit.data.shards import ShardDirectory
from toolkit.data.tfds_source import TfdsSource, tfds_source, tfds_stream

__all__ = [
    "ArraySource",
    "BuiltinData",
    "EndlessInfo",
    "Source",
    "as_source",
    "builtin_names",
    "endless",
    "endless_info",
    "load",
    "augment",
    "DataFinding",
    "check",
    "Mixture",
    "mix",
    "read_shard",
    "write_shard",
    "ShardDirectory",
    "TfdsSource",
    "tfds_source",
    "tfds_stream",
]
