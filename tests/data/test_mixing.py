import keras
import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import ArraySource, ShardDirectory, endless, mix, write_shard
from toolkit.errors import DataError


def _classification(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0)


def _regression(n=200, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x @ np.arange(1, 7, dtype="float32"))[:, None] / 5


def _draw(mixture, steps=40, batch_size=64, **kwargs):
    return list(endless(mixture, batch_size, seed=3, **kwargs).take(steps).as_numpy_iterator())


def test_examples_carry_masked_labels_and_weights():
    (xa, ya), (xb, yb) = _classification(), _regression()
    mixture = mix({"a": (xa, ya), "b": (xb, yb)}, normalize_weights=False)
    assert mixture.element_spec[1]["a"].shape == () and mixture.element_spec[1]["b"].shape == (1,)
    x, y, w = mixture.gather(tf.constant([0, 299, 300, 499, 5], tf.int64))
    np.testing.assert_array_equal(x.numpy(), np.stack([xa[0], xa[299], xb[0], xb[199], xa[5]]))
    np.testing.assert_array_equal(w["a"].numpy(), [1, 1, 0, 0, 1])
    np.testing.assert_array_equal(w["b"].numpy(), [0, 0, 1, 1, 0])
    np.testing.assert_array_equal(y["a"].numpy(), [ya[0], ya[299], 0, 0, ya[5]])
    np.testing.assert_allclose(y["b"].numpy(), [[0], [0], yb[0], yb[199], [0]])
    assert y["a"].dtype == tf.int64 and y["b"].dtype == tf.float32


def test_normalized_weights_are_the_inverse_share_and_keep_source_weights():
    xa, ya = _classification()
    xb, yb = _regression()
    weights_b = np.linspace(0.0, 2.0, 200).astype("float32")
    mixture = mix({"a": (xa, ya), "b": (xb, yb, weights_b)}, weights={"a": 1, "b": 3})
    assert mixture.shares == {"a": 0.25, "b": 0.75}
    last = int(mixture.size_at(0)) - 1
    x, _, w = mixture.gather(tf.constant([0, last], tf.int64))
    np.testing.assert_allclose(w["a"].numpy(), [4.0, 0.0])
    row = int(np.flatnonzero((xb == x.numpy()[1]).all(axis=1))[0])  # which example of b
    np.testing.assert_allclose(w["b"].numpy(), [0.0, weights_b[row] / 0.75], rtol=1e-6)


def test_iid_batches_follow_the_weights():
    mixture = mix({"a": _classification(), "b": _regression()}, weights={"a": 0.3, "b": 0.7})
    batches = _draw(mixture)
    from_a = np.concatenate([w["a"] > 0 for _, _, w in batches])
    n = from_a.size  # 2560 draws: binomial standard deviation ~0.009
    assert abs(from_a.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / n)
    per_batch = [np.mean(w["a"] > 0) for _, _, w in batches]
    assert np.std(per_batch) > 0  # IID: the proportion varies from batch to batch
    # Within a source the draws cover its examples uniformly.
    rows = np.concatenate([x[w["b"] > 0][:, 0] for x, _, w in batches])
    assert len(np.unique(rows)) > 150


def test_default_shares_follow_sizes_and_passes_see_every_example_once():
    mixture = mix({"a": _classification(n=96), "b": _regression(n=32)})
    assert mixture.shares == {"a": 0.75, "b": 0.25} and mixture.num_examples == 128
    batches = _draw(mixture, steps=4, batch_size=32, sampling="passes")
    xs = np.concatenate([x for x, _, _ in batches])
    expected = np.concatenate([_classification(n=96)[0], _regression(n=32)[0]])
    assert sorted(map(tuple, xs)) == sorted(map(tuple, expected))


def test_resume_gives_the_same_mixed_batches():
    mixture = mix({"a": _classification(), "b": _regression()}, weights={"a": 1, "b": 1})
    run = _draw(mixture, steps=6)
    resumed = list(endless(mixture, 64, seed=3, start_step=4).take(2).as_numpy_iterator())
    for original, again in zip(run[4:], resumed):
        for left, right in zip(tf.nest.flatten(original), tf.nest.flatten(again)):
            np.testing.assert_array_equal(left, right)


def test_two_heads_train_each_on_its_own_source_with_its_own_loss():
    keras.utils.set_random_seed(0)
    mixture = mix({"a": _classification(), "b": _regression()}, weights={"a": 0.5, "b": 0.5})
    inputs = keras.Input((6,))
    trunk = keras.layers.Dense(32, activation="relu")(inputs)
    outputs = {"a": keras.layers.Dense(4, name="a")(trunk), "b": keras.layers.Dense(1, name="b")(trunk)}
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(0.01),
        loss={"a": keras.losses.SparseCategoricalCrossentropy(from_logits=True), "b": "mse"},
    )
    history = model.fit(endless(mixture, 64, seed=1), steps_per_epoch=25, epochs=4, verbose=0)
    for head in ("a_loss", "b_loss"):
        curve = history.history[head]
        assert np.all(np.isfinite(curve)), head
        assert curve[-1] < 0.5 * curve[0], (head, curve)
    # Each head learned its own task: the mask kept the other source's labels (zeros) out.
    xa, ya = _classification(seed=5)
    xb, yb = _regression(seed=6)
    accuracy = np.mean(np.argmax(model.predict(xa, verbose=0)["a"], axis=1) == ya)
    mse = np.mean((model.predict(xb, verbose=0)["b"] - yb) ** 2)
    assert accuracy > 0.9 and mse < 0.2 * np.var(yb)


def test_mismatched_inputs_and_missing_labels_are_clear_errors(tmp_path):
    xa, ya = _classification()
    with pytest.raises(DataError, match=r"source 'a' gives 'float32\[6\]' but 'b' gives 'float32\[5\]'"):
        mix({"a": (xa, ya), "b": (xa[:, :5], ya)})
    with pytest.raises(DataError, match=r"but 'b' gives 'float64\[6\]'"):
        mix({"a": (xa, ya), "b": (xa.astype("float64"), ya)})
    with pytest.raises(DataError, match=r"needs labels: .* Source 'b' gives 'float32\[6\]'"):
        mix({"a": (xa, ya), "b": ArraySource(xa)})
    with pytest.raises(DataError, match=r"one share per source \['a', 'b'\]. Received: \['a'\]"):
        mix({"a": (xa, ya), "b": (xa, ya)}, weights={"a": 1.0})
    with pytest.raises(DataError, match=r"positive number. Received: weights\['b'\]=0"):
        mix({"a": (xa, ya), "b": (xa, ya)}, weights={"a": 1.0, "b": 0})
    with pytest.raises(DataError, match=r"non-empty dict"):
        mix([(xa, ya)])
    write_shard(str(tmp_path / "s.npz"), (xa, ya))
    growing = ShardDirectory(str(tmp_path), min_age_seconds=0)
    with pytest.raises(DataError, match=r"fixed size, but source 'b' grows"):
        mix({"a": (xa, ya), "b": growing})
