"""Where a dataset's batches come from: `map`/`prefetch`/`with_options` keep an endless
pipeline's position (and exact resume); `shuffle`, `batch`, ... lose it, and `fit` says so."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import endless, endless_info
from toolkit.data.lineage import trace
from toolkit.train import Execution, fit
from toolkit.train.training_data import training_data

BATCH = 4


def make_data(n=32):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), np.arange(n) % 2


def labels(dataset, num):
    return np.stack([batch[1] for batch in dataset.take(num).as_numpy_iterator()])


def wrap(dataset):
    options = tf.data.Options()
    options.threading.private_threadpool_size = 2
    return (dataset.map(lambda x, y: (2.0 * x, y), num_parallel_calls=2)
            .prefetch(2).with_options(options).map(lambda x, y: (x, y)))


def test_per_batch_transforms_keep_the_position():
    data = endless(make_data(), BATCH, seed=3)
    info = endless_info(data)
    wrapped = wrap(data)
    assert trace(wrapped).positioned and endless_info(wrapped) is info
    expected = labels(data, 10)
    info.seek(6)  # Moves the wrapped dataset too: it reads the position when iterated.
    np.testing.assert_array_equal(labels(wrapped, 4), expected[6:10])
    np.testing.assert_array_equal(labels(wrapped, 4), expected[6:10])  # Every new iteration.
    info.seek(0)
    x_raw = next(iter(data))[0].numpy()
    np.testing.assert_array_equal(next(iter(wrapped))[0].numpy(), 2.0 * x_raw)


@pytest.mark.parametrize(
    "transform, blocker",
    [
        (lambda d: d.shuffle(8), "shuffle"),
        (lambda d: d.unbatch().batch(BATCH), "batch"),
        (lambda d: d.skip(3), "skip"),
        (lambda d: d.filter(lambda x, y: True), "filter"),
        (lambda d: d.map(lambda x, y: (x, y), num_parallel_calls=2, deterministic=False),
         "map without deterministic order"),
        (lambda d: tf.data.Dataset.zip((d, d)).map(lambda a, b: a), "zip"),
    ],
    ids=["shuffle", "rebatch", "skip", "filter", "nondeterministic-map", "zip"],
)
def test_transforms_that_move_batches_lose_the_position(transform, blocker):
    found = trace(transform(endless(make_data(), BATCH)))
    assert found.info is not None and found.blocker == blocker
    assert not found.positioned


def test_a_dataset_not_from_endless_has_no_lineage():
    found = trace(tf.data.Dataset.range(4).repeat())
    assert found.info is None and found.blocker is None


def test_fit_trains_a_wrapped_pipeline_on_the_batches_of_each_step(tmp_path):
    x, y = make_data()
    data = wrap(endless((x, y), BATCH, seed=1))
    seen = []

    class Labels(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(int(self.model.optimizer.iterations))

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    train = training_data(data, batch_size=None)
    assert train.info is endless_info(data) and train.position_warning() is None
    expected = labels(endless((x, y), BATCH, seed=1), 12)
    np.testing.assert_array_equal(labels(train.batches(7, 5), 5), expected[7:12])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # No "cannot resume exactly" warning.
        fit(model, data, steps=12, eval_every_steps=5, run_dir=tmp_path, verbose=0,
            callbacks=[Labels()], execution=Execution(steps_per_execution=1))
    assert seen == list(range(12))


def test_fit_warns_once_when_the_position_is_lost(tmp_path):
    x, y = make_data()
    data = endless((x, y), BATCH).shuffle(8)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.warns(UserWarning, match=r"cannot resume this training data exactly: .*"
                      r"`shuffle`.* Build it with `toolkit.data.endless") as caught:
        fit(model, data, steps=4, run_dir=tmp_path / "a", verbose=0)
    assert sum("cannot resume" in str(w.message) for w in caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # The same dataset again: warned once already.
        fit(model, data, steps=8, run_dir=tmp_path / "a", verbose=0)
    with pytest.warns(UserWarning, match=r"not built by `toolkit.data.endless`"):
        fit(model, tf.data.Dataset.from_tensors((x[:4], y[:4])).repeat(), steps=12,
            run_dir=tmp_path / "a", verbose=0)
