"""Several datasets, one model: each source trains its own head with its own loss (S0.1).

`mix({"a": source_a, "b": source_b}, weights=...)` is a source whose every example comes from
one of the sources, so `endless(mix(...))` draws every batch IID across them. Its examples are
`(x, {"a": y_a, "b": y_b}, {"a": w_a, "b": w_b})`: the input `x` (the same structure in every
source), one label slot per head (zeros of the right shape for the other sources' examples) and
per-head sample weights that are 0 for the other sources' examples. A Keras model with outputs
named like the sources, compiled with one loss per output, then trains each head on its own data
only, and Keras logs each head's loss (`a_loss`, `b_loss`).

With `normalize_weights=True` (the default) the weight of a source's examples is `1 / p` where
`p` is that source's share of the mixture, so each head's loss is an unbiased estimate of its mean
loss on its own data, whatever the mixing weights: the weights set how many examples of each
source a batch holds, `compile(loss_weights=...)` sets how much each head matters.

Example:

>>> import numpy as np
>>> classes = (np.zeros((6, 3), "float32"), np.arange(6) % 2)
>>> values = (np.ones((4, 3), "float32"), np.linspace(0, 1, 4).astype("float32"))
>>> mixture = mix({"cls": classes, "reg": values}, weights={"cls": 0.5, "reg": 0.5})
>>> last = int(mixture.size_at(0)) - 1  # the index space: every source's share of it
>>> x, y, w = mixture.gather(tf.constant([0, last], tf.int64))
>>> sorted(y), w["cls"].numpy().tolist(), w["reg"].numpy().tolist()
(['cls', 'reg'], [2.0, 0.0], [0.0, 2.0])
"""

import math
from typing import Any, Dict, Mapping, Optional

import tensorflow as tf

from toolkit.data.sources import as_source
from toolkit.errors import DataError

__all__ = ["Mixture", "mix"]

# With explicit weights, source s owns round(w_s * 2**48) virtual indices; index j of that range
# maps to example j mod n_s, which is uniform to within n_s / 2**48.
_VIRTUAL_BITS = 48


def mix(
    sources: Mapping[str, Any],
    *,
    weights: Optional[Mapping[str, float]] = None,
    normalize_weights: bool = True,
) -> "Mixture":
    """Returns a source that draws each example from one of `sources`, for a multi-head model.

    Args:
        sources: Dict `head name -> source` (arrays `(x, y)` / `(x, y, sample_weight)` or a
            source with a fixed `num_examples`). Every source must have the same `x` structure,
            shapes and dtypes. The names must be the model's output names.
        weights: Dict `head name -> share` of the examples drawn from each source (normalized
            to sum to 1). `None` draws every example of every source with equal probability,
            i.e. shares proportional to the sources' sizes. Defaults to `None`.
        normalize_weights: Weight a source's examples by `1 / share`, so each head's loss is
            its mean loss on its own data. With `False` the weights are a plain 0/1 mask.
            Defaults to `True`.

    Returns:
        A `Mixture` source for `endless`.

    Raises:
        DataError: If the sources' `x` differ, a source has no labels, a weight is missing or
            not positive, or a source grows (has `size_at`).

    Example:

    >>> import numpy as np, keras
    >>> from toolkit.data import endless
    >>> x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
    >>> mixture = mix({"a": (x, np.arange(64) % 3), "b": (x, x.sum(axis=1))})
    >>> inputs = keras.Input((8,))
    >>> trunk = keras.layers.Dense(16, activation="relu")(inputs)
    >>> outputs = {"a": keras.layers.Dense(3, name="a")(trunk),
    ...            "b": keras.layers.Dense(1, name="b")(trunk)}
    >>> model = keras.Model(inputs, outputs)
    >>> classification = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    >>> model.compile("adam", loss={"a": classification, "b": "mse"})
    >>> history = model.fit(endless(mixture, 16), steps_per_epoch=5, epochs=1, verbose=0)
    >>> sorted(k for k in history.history if k.endswith("_loss"))
    ['a_loss', 'b_loss']
    """
    return Mixture(sources, weights=weights, normalize_weights=normalize_weights)


class Mixture:
    """The source returned by `mix` (see there); `shares` gives each source's share.

    Args:
        sources: Dict `head name -> source`.
        weights: Dict `head name -> share`, or `None` for shares proportional to sizes.
        normalize_weights: Weight examples by `1 / share` instead of 1. Defaults to `True`.

    Example:

    >>> import numpy as np
    >>> a, b = (np.zeros((3, 2)), np.zeros(3)), (np.ones((1, 2)), np.ones(1))
    >>> mixture = Mixture({"a": a, "b": b})
    >>> mixture.shares
    {'a': 0.75, 'b': 0.25}
    """

    def __init__(
        self,
        sources: Mapping[str, Any],
        *,
        weights: Optional[Mapping[str, float]] = None,
        normalize_weights: bool = True,
    ):
        if not isinstance(sources, Mapping) or not sources:
            raise DataError(
                f"`mix` takes a non-empty dict `head name -> source`. Received: {sources!r}. "
                f'E.g. mix({{"classes": (x1, y1), "values": (x2, y2)}}).'
            )
        self._names = list(sources)
        self._sources = {name: _labelled(name, as_source(sources[name])) for name in self._names}
        _check_same_x(self._sources)
        sizes = {name: source.num_examples for name, source in self._sources.items()}
        if weights is None:
            total = sum(sizes.values())
            self._shares = {name: sizes[name] / total for name in self._names}
            self._counts = dict(sizes)
            self._size = total
        else:
            self._shares = _check_weights(weights, self._names)
            self._counts = {n: round(self._shares[n] * 2**_VIRTUAL_BITS) for n in self._names}
            self._size = sum(self._counts.values())
        self._num_examples = sum(sizes.values())
        self._normalize = bool(normalize_weights)
        self._sizes = sizes
        first = self._sources[self._names[0]].element_spec
        y_specs = {name: self._sources[name].element_spec[1] for name in self._names}
        weight_spec = tf.TensorSpec((), tf.float32)
        self._element_spec = (first[0], y_specs, {name: weight_spec for name in self._names})

    @property
    def num_examples(self) -> int:
        """Total number of examples of all sources (for epoch-equivalents)."""
        return self._num_examples

    @property
    def element_spec(self) -> Any:
        """`(x spec, {head: y spec}, {head: weight spec})` of one example."""
        return self._element_spec

    @property
    def shares(self) -> Dict[str, float]:
        """Share of the examples drawn from each source (sums to 1)."""
        return dict(self._shares)

    def size_at(self, step: tf.Tensor) -> tf.Tensor:
        """Size of the mixture's index space (constant: the sources do not grow)."""
        del step
        return tf.constant(self._size, tf.int64)

    def gather(self, indices: tf.Tensor) -> Any:
        """Returns the examples at `indices` in `[0, size_at(step))` as `(x, y, weights)`."""
        indices = tf.cast(indices, tf.int64)
        counts = [self._counts[name] for name in self._names]
        starts = [sum(counts[:i]) for i in range(len(counts))]
        # Source of each index: the last range whose start is <= index.
        which = tf.searchsorted(tf.constant(starts[1:], tf.int64), indices, side="right")
        which = tf.cast(which, tf.int32)
        positions = tf.range(tf.shape(indices)[0])
        batch_size = tf.shape(indices)[0:1]
        x_parts, x_positions, ys, weights = [], [], {}, {}
        parts = tf.dynamic_partition(indices, which, len(self._names))
        part_positions = tf.dynamic_partition(positions, which, len(self._names))
        for i, name in enumerate(self._names):
            local = (parts[i] - starts[i]) % self._sizes[name]
            example = self._sources[name].gather(local)
            x_parts.append(example[0])
            x_positions.append(part_positions[i])
            where = part_positions[i][:, None]
            ys[name] = tf.scatter_nd(
                where, example[1], tf.concat([batch_size, tf.shape(example[1])[1:]], 0)
            )
            weight = tf.ones_like(parts[i], tf.float32)
            if len(example) == 3:
                weight *= tf.cast(tf.reshape(example[2], [-1]), tf.float32)
            if self._normalize:
                weight /= self._shares[name]
            weights[name] = tf.scatter_nd(where, weight, batch_size)
        x = tf.nest.map_structure(
            lambda *leaves: tf.dynamic_stitch(x_positions, list(leaves)), *x_parts
        )
        return x, ys, weights

    def __repr__(self) -> str:
        shares = {name: round(share, 4) for name, share in self._shares.items()}
        return f"Mixture(shares={shares!r}, num_examples={self._num_examples})"


def _labelled(name: str, source: Any) -> Any:
    if getattr(source, "size_at", None) is not None or not source.num_examples:
        raise DataError(
            f"`mix` needs sources of fixed size, but source {name!r} grows or has no size "
            f"(num_examples={source.num_examples!r}). Mix fixed snapshots, or train on the "
            f"growing source alone."
        )
    spec = source.element_spec
    if not isinstance(spec, tuple) or len(spec) not in (2, 3):
        raise DataError(
            f"Every source of `mix` needs labels: `(x, y)` or `(x, y, sample_weight)`. Source "
            f"{name!r} gives {_describe(spec)}. Add its targets `y`."
        )
    if not isinstance(spec[1], tf.TensorSpec):
        raise DataError(
            f"Source {name!r} of `mix` has nested targets {_describe(spec[1])}; expected one "
            f"target array per source (its head). Split it into several sources."
        )
    if len(spec) == 3 and not isinstance(spec[2], tf.TensorSpec):
        raise DataError(
            f"Source {name!r} of `mix` has a nested sample_weight {_describe(spec[2])}; expected "
            f"one weight per example. Pass a 1-D array of weights."
        )
    return source


def _check_same_x(sources: Dict[str, Any]) -> None:
    names = list(sources)
    reference = _describe(sources[names[0]].element_spec[0])
    for name in names[1:]:
        spec = _describe(sources[name].element_spec[0])
        if spec != reference:
            raise DataError(
                f"Every source of `mix` must give the same input `x`: source {names[0]!r} gives "
                f"{reference} but {name!r} gives {spec}. Resize or cast the inputs so they "
                f"match (one trunk reads them all)."
            )


def _check_weights(weights: Mapping[str, float], names: list) -> Dict[str, float]:
    if not isinstance(weights, Mapping) or set(weights) != set(names):
        received = sorted(weights) if isinstance(weights, Mapping) else weights
        raise DataError(
            f"`weights` must be a dict with one share per source {sorted(names)!r}. Received: "
            f"{received!r}. E.g. weights={{{', '.join(f'{n!r}: 1.0' for n in names)}}}."
        )
    for name, weight in weights.items():
        if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight <= 0:
            raise DataError(
                f"Every mixing weight must be a positive number. Received: weights[{name!r}]="
                f"{weight!r}. Remove the source instead of giving it weight 0."
            )
    total = float(sum(weights.values()))
    return {name: float(weights[name]) / total for name in names}


def _describe(spec: Any) -> str:
    return repr(tf.nest.map_structure(lambda s: f"{s.dtype.name}{list(s.shape)}", spec))
