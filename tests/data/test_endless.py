import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import ArraySource, endless, endless_info
from toolkit.errors import DataError

N = 37


def _data(n=N):
    x = np.arange(2 * n, dtype=np.float32).reshape(n, 2)
    return x, np.arange(n, dtype=np.int64)


def _labels(dataset, num_batches):
    """The y of the first batches (labels equal row indices in `_data`)."""
    return [batch[1] for batch in dataset.take(num_batches).as_numpy_iterator()]


def _schedule(step):
    return 3 + step % 5


@pytest.mark.parametrize("sampling", ["iid", "passes"])
def test_same_seed_same_batches_and_other_seed_other_batches(sampling):
    first = _labels(endless(_data(), 8, seed=3, sampling=sampling), 6)
    again = _labels(endless(_data(), 8, seed=3, sampling=sampling), 6)
    other = _labels(endless(_data(), 8, seed=4, sampling=sampling), 6)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(np.stack(first), np.stack(other))


@pytest.mark.parametrize("sampling", ["iid", "passes"])
@pytest.mark.parametrize("batch_size", [8, 100, _schedule])
def test_start_step_yields_the_original_batches_from_that_step(sampling, batch_size):
    # batch_size=100 draws 10 steps per chunk: starts inside and across chunks.
    original = _labels(endless(_data(), batch_size, seed=5, sampling=sampling), 25)
    for start in (1, 4, 13, 20):
        resumed = _labels(
            endless(_data(), batch_size, seed=5, sampling=sampling, start_step=start), 25 - start
        )
        for expected, got in zip(original[start:], resumed):
            np.testing.assert_array_equal(expected, got)


def test_batches_keep_rows_aligned_across_arrays():
    x, y = _data()
    for xb, yb in endless((x, y), 16, sampling="passes").take(4).as_numpy_iterator():
        np.testing.assert_array_equal(xb, x[yb])


def test_iid_draws_with_replacement_at_the_expected_duplicate_rate():
    n, batch = 10_000, 1_000
    labels = next(iter(endless(np.arange(n), batch, seed=0))).numpy()
    duplicates = batch - len(np.unique(labels))
    expected = batch - n * (1 - (1 - 1 / n) ** batch)  # about 48
    assert abs(duplicates - expected) < 4 * np.sqrt(expected)


def test_iid_index_frequencies_are_uniform():
    n, batch, num_batches = 50, 50, 200
    draws = np.concatenate(_labels_x(endless(np.arange(n), batch, seed=7), num_batches))
    counts = np.bincount(draws, minlength=n)
    expected = batch * num_batches / n
    chi_square = ((counts - expected) ** 2 / expected).sum()
    # n - 1 = 49 degrees of freedom: mean 49, std about 10.
    assert chi_square < 49 + 5 * 10
    # IID batches are not passes: the first n draws repeat some examples.
    assert len(np.unique(draws[:n])) < n


def _labels_x(dataset, num_batches):
    return list(dataset.take(num_batches).as_numpy_iterator())


@pytest.mark.parametrize("batch_size", [8, _schedule, 100])
def test_passes_hold_every_example_exactly_once_per_pass(batch_size):
    num_passes = 5
    dataset = endless(_data(), batch_size, seed=2, sampling="passes")
    labels = np.concatenate(_labels(dataset, 200))[: num_passes * N].reshape(num_passes, N)
    for one_pass in labels:
        np.testing.assert_array_equal(np.sort(one_pass), np.arange(N))
    assert len({tuple(one_pass) for one_pass in labels}) == num_passes  # reshuffled each pass
    assert not np.array_equal(labels[0], np.arange(N))


def test_dynamic_batch_size_follows_the_schedule():
    dataset = endless(_data(), _schedule, start_step=2)
    assert [len(y) for y in _labels(dataset, 6)] == [_schedule(k) for k in range(2, 8)]


def test_examples_at_counts_examples_drawn_before_a_step():
    info = endless_info(endless(_data(), 8))
    assert info.examples_at(0) == 0
    assert info.examples_at(125) == 1000
    scheduled = endless_info(endless(_data(), _schedule))
    assert scheduled.examples_at(10_000) == sum(_schedule(k) for k in range(10_000))
    assert scheduled.examples_at(4_097) == sum(_schedule(k) for k in range(4_097))
    assert scheduled.examples_at(3) == 3 + 4 + 5


def test_endless_info_describes_the_dataset_and_rebuilds_it_at_a_step():
    source = ArraySource(_data())
    dataset = endless(source, 8, seed=9, sampling="passes")
    info = endless_info(dataset)
    assert (info.source, info.batch_size, info.seed, info.start_step, info.sampling) == (
        source,
        8,
        9,
        0,
        "passes",
    )
    assert info.dataset_size == N
    resumed = info.at_step(4)
    assert endless_info(resumed).start_step == 4
    np.testing.assert_array_equal(_labels(dataset, 5)[4], _labels(resumed, 1)[0])
    assert endless_info(dataset.take(3)) is None
    assert endless_info(tf.data.Dataset.range(3)) is None
    assert endless_info(np.zeros(3)) is None


def test_the_dataset_never_ends():
    assert endless(_data(), 4).cardinality() == tf.data.INFINITE_CARDINALITY
    assert endless(_data(), _schedule).cardinality() == tf.data.INFINITE_CARDINALITY


def test_structures_are_kept_as_keras_expects_with_a_static_batch_dimension():
    x, y = _data()
    weights = np.linspace(0.0, 1.0, N).astype(np.float32)
    cases = {
        "x": x,
        "(x,)": (x,),
        "(x, y)": (x, y),
        "(x, y, w)": (x, y, weights),
        "dict": {"a": x, "b": y},
        "(dict, y)": ({"a": x, "b": y}, y),
        "((x1, x2), y)": ((x, x[:, :1]), y),
    }
    for name, data in cases.items():
        spec = endless(data, 4).element_spec
        expected = tf.nest.map_structure(
            lambda a: tf.TensorSpec((4,) + a.shape[1:], tf.as_dtype(a.dtype)),
            data,
        )
        assert spec == expected, name


def test_a_list_of_inputs_feeds_a_multi_input_model():
    x, y = _data()
    first, second = keras.Input((2,)), keras.Input((1,))
    output = keras.layers.Dense(1)(keras.layers.Concatenate()([first, second]))
    model = keras.Model([first, second], output)
    model.compile("adam", "mse")
    dataset = endless(([x, x[:, :1]], y.astype(np.float32)), 4)
    assert len(dataset.element_spec[0]) == 2
    model.fit(dataset, steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 2


def test_a_growing_source_samples_within_its_size_at_each_step():
    class Growing:
        num_examples = None
        element_spec = tf.TensorSpec((), tf.int64)

        def size_at(self, step):
            return 3 + step

        def gather(self, indices):
            return indices

    for sampling in ("iid", "passes"):
        batches = list(endless(Growing(), 16, sampling=sampling).take(8).as_numpy_iterator())
        assert all(batch.max() < 3 + step for step, batch in enumerate(batches))
        assert batches[7].max() >= 3  # the new examples are drawn


def test_augment_gets_a_step_seed_and_is_reproduced_on_resume():
    seen_shapes = []

    def add_noise(batch, seed):
        seen_shapes.append((seed.shape, seed.dtype))
        x, y = batch
        return x + tf.random.stateless_normal(tf.shape(x), seed), y

    dataset = endless(_data(), 4, seed=1, augment=add_noise)
    batches = _labels_x(dataset, 3)
    assert seen_shapes[0] == ((2,), tf.int64)
    x, _ = _data()
    noise = [xb - x[yb] for xb, yb in batches]
    assert np.abs(noise[0]).max() > 0 and not np.allclose(noise[0], noise[1])
    resumed = _labels_x(endless(_data(), 4, seed=1, augment=add_noise, start_step=2), 1)
    np.testing.assert_array_equal(resumed[0][0], batches[2][0])


def test_model_fit_runs_on_an_endless_dataset():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    weights = np.ones(64, np.float32)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(endless((x, y, weights), 16), steps_per_epoch=5, epochs=2, shuffle=False, verbose=0)
    assert len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations.numpy()) == 10


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, r"`batch_size` must be a positive integer.*batch_size=0"),
        ({"batch_size": 2.5}, r"`batch_size` must be a positive integer.*batch_size=2.5"),
        ({"batch_size": True}, r"`batch_size` must be a positive integer.*batch_size=True"),
        ({"batch_size": lambda step: 0}, r"batch_size\(0\) = 0.*Fix the schedule"),
        ({"batch_size": 4, "sampling": "random"}, r"`sampling` must be one of.*'random'"),
        ({"batch_size": 4, "start_step": -1}, r"`start_step` must be an integer in \[0"),
        ({"batch_size": 4, "seed": "a"}, r"`seed` must be an integer. Received: seed='a'"),
        ({"batch_size": 4, "augment": 3}, r"`augment` must be a function"),
    ],
)
def test_bad_arguments_raise_data_errors_naming_them(kwargs, match):
    with pytest.raises(DataError, match=match):
        endless(_data(), **kwargs)


def test_bad_sources_raise_data_errors():
    with pytest.raises(DataError, match=r"`x` holds no examples"):
        endless(np.zeros((0, 3)), 4)
    with pytest.raises(DataError, match=r"`y` has 5 rows but `x` has 37"):
        endless((_data()[0], np.zeros(5)), 4)
    with pytest.raises(DataError, match=r"received a `tf.data.Dataset`"):
        endless(tf.data.Dataset.range(3), 4)

    class Unsized:
        num_examples = None
        element_spec = tf.TensorSpec((), tf.int64)

        def gather(self, indices):
            return indices

    with pytest.raises(DataError, match=r"known, positive `num_examples` or a `size_at`"):
        endless(Unsized(), 4)
