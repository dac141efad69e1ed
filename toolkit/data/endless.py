"""Endless batches whose position is a pure function of (seed, step) (S0.1-S0.4).

The batch of step `k` is computed from `(seed, k)` alone with stateless random numbers, so there
is no iterator state to save: a run resumed at step `k` rebuilds the pipeline with
`start_step=k` and gets exactly the batches the uninterrupted run would have seen.

How a batch is drawn. Keys derive from `seed` with `tf.random.experimental.stateless_fold_in`
(Philox): `key(purpose, i) = fold_in(fold_in([seed, 0], purpose), i)`.

- `sampling="iid"`: indices drawn uniformly with replacement from `[0, n)` by
  `tf.random.stateless_uniform`. Every batch is independent (S0.1-S0.2). Small batches are drawn
  `K` steps at a time to amortize the per-element cost of `tf.data` (`K = clamp(1024 //
  batch_size, 1, 32)`, fixed by the batch size): steps `[cK, (c+1)K)` take consecutive rows of one
  draw keyed by `key(sampling, c)`, so batch `k` is still a pure function of (seed, k).
- `sampling="passes"`: the examples form an endless stream of passes; pass `p` is the
  permutation `index_shuffle(i, key(passes, p), n - 1)` of `[0, n)`, computed per index in O(1)
  (no sort). The batch of step `k` holds stream positions `[examples_at(k), examples_at(k+1))`, so
  a batch may straddle two passes, and every example appears exactly once per pass.
- `augment(batch, seed)`, when given, runs on each batch with the `[2]` int64 stateless seed
  `key(augment, step)`; it splits that seed per example itself (S0.4).

Here `n` is `source.size_at(step)` for sources that grow (drawn one step at a time), else
`source.num_examples`. Batches are gathered in parallel, order-preserving `tf.data` maps and
prefetched: no Python runs per example (nor per batch, unless `batch_size` is a function of the
step, which a Python generator then evaluates once per step).
"""

import dataclasses
import numbers
import threading
from typing import Any, Callable, Optional, Union

import tensorflow as tf

from toolkit.data import lineage
from toolkit.data.sources import as_source
from toolkit.errors import DataError

__all__ = ["endless", "EndlessInfo", "endless_info"]

SAMPLINGS = ("iid", "passes")
BatchSize = Union[int, Callable[[int], int]]

# Constant first word of the 3-word seed of RandomIndexShuffle; the same one
# `tf.random.experimental.index_shuffle` pads with, so pass p equals that public function's
# permutation with seed `fold_in(pass_key, p)`.
_INDEX_SHUFFLE_PAD = 498247692
_PURPOSES = (1, 2, 3)  # sampling, passes, augmentation
# Small batches are drawn several steps at a time: one map call, one gather for up to
# _CHUNK_STEPS steps of about _CHUNK_EXAMPLES examples in all, then unbatched.
_CHUNK_STEPS, _CHUNK_EXAMPLES = 32, 1024
_CHECKPOINT_STEPS = 4096  # examples_at keeps one prefix sum per this many steps


def endless(
    source: Any,
    batch_size: BatchSize,
    *,
    seed: int = 0,
    start_step: int = 0,
    sampling: str = "iid",
    augment: Optional[Callable[[Any, tf.Tensor], Any]] = None,
) -> tf.data.Dataset:
    """Returns a `tf.data.Dataset` that yields batches forever, batch `k` fixed by `(seed, k)`.

    Use it instead of `from_tensor_slices(...).shuffle(...).batch(...).repeat()`: there are no
    epochs to choose, training counts steps, and resuming is exact (build it at `start_step`).
    Give it to `toolkit.train.fit`, or to `model.fit` with `steps_per_epoch` (it never ends).

    Args:
        source: Arrays (`x`, `(x, y)`, `(x, y, sample_weight)`, dicts of arrays) or a source
            (see `toolkit.data.sources`).
        batch_size: Examples per batch, or a pure Python function `step -> batch size` (for a
            batch-size schedule; the batch dimension is then dynamic).
        seed: Integer seed; the same seed gives the same batches. Defaults to `0`.
        start_step: Optimizer step of the first batch yielded. Defaults to `0`.
        sampling: `"iid"` (with replacement, every batch independent) or `"passes"` (reshuffled
            passes without replacement). Defaults to `"iid"`.
        augment: A function `augment(batch, seed) -> batch` of traceable TensorFlow ops, where
            `seed` is a `[2]` int64 stateless seed for this step. Defaults to `None`.

    Returns:
        An infinite `tf.data.Dataset` of batches nested like the source's examples;
        `endless_info(dataset)` describes it.

    Raises:
        DataError: For a bad `batch_size`, `seed`, `start_step`, `sampling` or `augment`, or an
            invalid source (empty, mismatched rows, NaN/Inf).

    Example:

    >>> import numpy as np
    >>> x = np.arange(10, dtype="float32").reshape(5, 2)
    >>> y = np.arange(5)
    >>> dataset = endless((x, y), batch_size=4, seed=1, sampling="passes")
    >>> batches = list(dataset.take(5).as_numpy_iterator())
    >>> resumed = endless((x, y), batch_size=4, seed=1, sampling="passes", start_step=3)
    >>> bool((next(iter(resumed))[1].numpy() == batches[3][1]).all())
    True
    >>> sorted(np.concatenate([b[1] for b in batches])[:5].tolist())  # one pass
    [0, 1, 2, 3, 4]
    """
    source = as_source(source)
    batch_size = _check_batch_size(batch_size)
    seed = _check_int("seed", seed, minimum=-(2**63))
    start_step = _check_int("start_step", start_step, minimum=0)
    if sampling not in SAMPLINGS:
        raise DataError(
            f"`sampling` must be one of {SAMPLINGS!r}. Received: sampling={sampling!r}. Use "
            f'"iid" for independent batches or "passes" for reshuffled passes.'
        )
    if augment is not None and not callable(augment):
        raise DataError(
            f"`augment` must be a function `augment(batch, seed) -> batch` or None. "
            f"Received: augment={augment!r}."
        )
    if getattr(source, "size_at", None) is None and not source.num_examples:
        raise DataError(
            f"`endless` needs a source with a known, positive `num_examples` or a `size_at` "
            f"method. Received a source with num_examples={source.num_examples!r}. Give it at "
            f"least one example, or use a source that reports its size."
        )
    info = EndlessInfo(
        source=source,
        batch_size=batch_size,
        seed=seed,
        start_step=start_step,
        sampling=sampling,
        augment=augment,
    )
    dataset = _build(info)
    lineage.register(dataset, info)
    return dataset


@dataclasses.dataclass(frozen=True)
class EndlessInfo:
    """What `endless` built: enough to count examples and rebuild the pipeline at any step.

    Args:
        source: The source batches are drawn from.
        batch_size: Examples per batch, or the function `step -> batch size`.
        seed: The integer seed.
        start_step: Step of the first batch of this dataset.
        sampling: `"iid"` or `"passes"`.
        augment: The augmentation function, or `None`.

    Example:

    >>> import numpy as np
    >>> info = endless_info(endless(np.zeros((100, 3)), batch_size=32))
    >>> info.dataset_size, info.examples_at(10)
    (100, 320)
    >>> resumed = info.at_step(10)
    >>> endless_info(resumed).start_step
    10
    """

    source: Any
    batch_size: BatchSize
    seed: int
    start_step: int
    sampling: str
    augment: Optional[Callable[[Any, tf.Tensor], Any]]
    _prefix_sums: list = dataclasses.field(
        default_factory=lambda: [0], init=False, repr=False, compare=False
    )
    # examples_at runs on the caller's thread and in tf.data's generator thread.
    _lock: Any = dataclasses.field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    # The step the next iterator starts at, read by the pipeline when an iterator begins.
    _position: Any = dataclasses.field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        with tf.init_scope():  # An eager variable, even when built inside a `tf.function`.
            position = tf.Variable(self.start_step, dtype=tf.int64, trainable=False,
                                   name="endless_position")
        object.__setattr__(self, "_position", position)

    @property
    def position(self) -> int:
        """The step whose batch the next iteration of the dataset (or of any dataset derived
        from it by per-batch transforms) starts with."""
        return int(self._position.numpy())

    def seek(self, step: int) -> None:
        """Makes every iteration started from now on begin with the batch of step `step`.

        The dataset reads its position when an iterator is created, so this moves the
        dataset `endless` returned *and* every dataset derived from it by per-batch
        transforms (`map`, `prefetch`, `with_options`): `toolkit.train.fit` restores a run,
        then seeks the user's own pipeline to the restored step. Iterators already running
        are not affected.

        Args:
            step: An optimizer step, `>= 0`.
        """
        self._position.assign(_check_int("step", step, minimum=0))

    @property
    def dataset_size(self) -> Optional[int]:
        """Number of examples of the source (`None` when it changes over time)."""
        return self.source.num_examples

    def batch_size_at(self, step: int) -> int:
        """Returns the number of examples in the batch of optimizer step `step`."""
        if not callable(self.batch_size):
            return self.batch_size
        return _call_batch_size(self.batch_size, int(step))

    def examples_at(self, step: int) -> int:
        """Returns the number of examples drawn before optimizer step `step` (from step 0)."""
        step = _check_int("step", step, minimum=0)
        if not callable(self.batch_size):
            return step * self.batch_size
        # A schedule makes this a sum over steps; keep one prefix sum per _CHECKPOINT_STEPS
        # steps so repeated calls (every logging interval) stay cheap.
        sums = self._prefix_sums  # sums[j] == examples_at(j * _CHECKPOINT_STEPS)
        with self._lock:
            while len(sums) <= step // _CHECKPOINT_STEPS:
                first = (len(sums) - 1) * _CHECKPOINT_STEPS
                sums.append(sums[-1] + self._sum_sizes(first, first + _CHECKPOINT_STEPS))
            base = step - step % _CHECKPOINT_STEPS
            return sums[base // _CHECKPOINT_STEPS] + self._sum_sizes(base, step)

    def at_step(self, step: int) -> tf.data.Dataset:
        """Returns a new, independent pipeline whose first batch is that of step `step`."""
        return endless(
            self.source,
            self.batch_size,
            seed=self.seed,
            start_step=step,
            sampling=self.sampling,
            augment=self.augment,
        )

    def _sum_sizes(self, first: int, stop: int) -> int:
        return sum(self.batch_size_at(k) for k in range(first, stop))


def endless_info(dataset: Any) -> Optional[EndlessInfo]:
    """Returns the `EndlessInfo` of a dataset made by `endless`, or `None` for any other object.

    A dataset derived from one by per-batch transforms that keep its position (`map`,
    `prefetch`, `with_options`; see `toolkit.data.lineage`) gives the same info, so
    `info.seek(step)` positions it too. A dataset whose transforms change which batch comes at
    which step (`shuffle`, `batch`, `filter`, `take`, ...) gives `None`.

    Args:
        dataset: Any object, typically a `tf.data.Dataset`.

    Example:

    >>> import numpy as np
    >>> data = endless(np.zeros((8, 2)), batch_size=4)
    >>> endless_info(data.prefetch(2)).sampling
    'iid'
    >>> endless_info(data.shuffle(2)) is None, endless_info(tf.data.Dataset.range(3)) is None
    (True, True)
    """
    found = lineage.trace(dataset)
    return found.info if found.positioned else None


def _build(info: EndlessInfo) -> tf.data.Dataset:
    source, sampling, augment = info.source, info.sampling, info.augment
    size_at = getattr(source, "size_at", None)
    num_examples = source.num_examples
    sample_word, pass_word, augment_word = (_key_word(info.seed, p) for p in _PURPOSES)

    def draw_chunk(chunk, first_step, offset, num_steps, size):
        """Batches of steps [first_step, first_step + num_steps), stacked: [num_steps, size, ...]."""
        if size_at is not None:  # then num_steps == 1
            n = tf.cast(size_at(first_step), tf.int64)
        else:
            n = tf.constant(num_examples, tf.int64)
        if sampling == "iid":
            indices = tf.random.stateless_uniform(
                [num_steps * size], seed=tf.stack([sample_word, chunk]), minval=0, maxval=n,
                dtype=tf.int64, alg="philox",
            )
        else:
            positions = offset + tf.range(num_steps * size, dtype=tf.int64)
            passes = positions // n
            # fold_in(pass_key, p) == [pass_word, p]; RandomIndexShuffle takes a leading word.
            pass_seeds = tf.stack(
                [
                    tf.fill(tf.shape(passes), tf.constant(_INDEX_SHUFFLE_PAD, tf.int64)),
                    tf.fill(tf.shape(passes), pass_word),
                    passes,
                ],
                axis=1,
            )
            indices = tf.raw_ops.RandomIndexShuffle(
                index=positions % n, seed=pass_seeds, max_index=n - 1, rounds=4
            )
        batches = tf.nest.map_structure(
            lambda t: tf.reshape(t, tf.concat([[num_steps, size], tf.shape(t)[1:]], 0)),
            source.gather(indices),
        )
        steps = first_step + tf.range(num_steps, dtype=tf.int64)
        return (steps, batches) if augment is not None else batches

    def from_position(_):
        """The pipeline from the step in `info._position`, read when an iterator starts."""
        start = info._position.read_value()
        if callable(info.batch_size):
            return _scheduled_steps(info, start).map(
                lambda step, offset, size: draw_chunk(step, step, offset, 1, size),
                num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True,
            ).unbatch()
        batch_size = info.batch_size  # Python ints: the batch dimension stays static
        num_steps = 1 if size_at is not None else min(_CHUNK_STEPS, _CHUNK_EXAMPLES // batch_size)
        num_steps = max(1, num_steps)
        chunks = tf.data.Dataset.counter(start // num_steps).map(
            lambda chunk: draw_chunk(
                chunk, chunk * num_steps, chunk * num_steps * batch_size, num_steps, batch_size
            ),
            # Order-preserving parallel map: chunks are drawn concurrently, yielded in order.
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        return chunks.unbatch().skip(start % num_steps)

    # One outer element whose inner pipeline starts at the position: a dataset derived from
    # this one by per-batch transforms moves with `info.seek` without being rebuilt.
    dataset = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).flat_map(from_position)
    if augment is not None:
        dataset = dataset.map(
            lambda step, batch: augment(batch, tf.stack([augment_word, step])),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    # unbatch() forgets that the chunks never end; say so, as Dataset.counter does.
    return dataset.apply(tf.data.experimental.assert_cardinality(tf.data.INFINITE_CARDINALITY))


def _key_word(seed: int, purpose: int) -> tf.Tensor:
    """First word of `fold_in(fold_in([seed, 0], purpose), i)`, which is the same for every i."""
    purpose_key = tf.random.experimental.stateless_fold_in(
        tf.constant([seed, 0], tf.int64), tf.constant(purpose, tf.int64), alg="philox"
    )
    return tf.random.experimental.stateless_fold_in(
        purpose_key, tf.constant(0, tf.int64), alg="philox"
    )[0]


@tf.autograph.experimental.do_not_convert  # Plain Python (a generator), called while tracing.
def _scheduled_steps(info: EndlessInfo, start: tf.Tensor) -> tf.data.Dataset:
    """(step, examples before it, batch size) from step `start`, for a Python schedule."""

    def generate(first):
        step = int(first)
        offset = info.examples_at(step)
        while True:
            size = info.batch_size_at(step)
            yield step, offset, size
            step, offset = step + 1, offset + size

    scalar = tf.TensorSpec((), tf.int64)
    return tf.data.Dataset.from_generator(  # never ends
        generate, output_signature=(scalar, scalar, scalar), args=(start,)
    )


def _check_int(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise DataError(f"`{name}` must be an integer. Received: {name}={value!r}.")
    if not minimum <= int(value) < 2**63:
        raise DataError(
            f"`{name}` must be an integer in [{minimum}, 2**63). Received: {name}={value!r}."
        )
    return int(value)


def _check_batch_size(batch_size: Any) -> BatchSize:
    if callable(batch_size):
        _call_batch_size(batch_size, 0)
        return batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size <= 0:
        raise DataError(
            f"`batch_size` must be a positive integer or a function `step -> batch size`. "
            f"Received: batch_size={batch_size!r}. Pass e.g. batch_size=32."
        )
    return int(batch_size)


def _call_batch_size(schedule: Callable[[int], int], step: int) -> int:
    size = schedule(step)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size <= 0:
        raise DataError(
            f"The `batch_size` function must return a positive integer for every step. "
            f"Received: batch_size({step}) = {size!r}. Fix the schedule function."
        )
    return int(size)
