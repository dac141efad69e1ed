import os

import numpy as np
import pytest

from toolkit.data import builtin, builtin_names, load
from toolkit.errors import DataError


def test_builtin_names_and_unknown_name():
    assert builtin_names() == ("digits", "heavy_tailed", "mnist1d", "mnist1d_position")
    with pytest.raises(DataError, match=r"Unknown dataset 'mnist'. Valid names: digits, heavy_tailed, mnist1d, mnist1d_position"):
        load("mnist")
    with pytest.raises(DataError, match=r"`seed` must be a non-negative integer"):
        load("digits", seed=-1)


def test_digits_is_a_flattened_stratified_seeded_split():
    data = load("digits")
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert (data.num_classes, data.task) == (10, "classification")
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 16.0
    counts = np.bincount(data.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: about 36 per class
    np.testing.assert_array_equal(load("digits").x_train, data.x_train)
    assert not np.array_equal(load("digits", seed=1).y_train, data.y_train)


def test_heavy_tailed_spans_zero_to_1_4e8_with_heavy_tails():
    data = load("heavy_tailed")
    x = np.concatenate([data.x_train, data.x_test])
    assert data.x_train.shape == (4000, 8) and data.x_test.shape == (1000, 8)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.float32
    assert (data.num_classes, data.task) == (None, "regression")
    assert x.min() == 0.0 and x.max() == np.float32(1.4e8)
    assert np.isfinite(x).all() and np.isfinite(data.y_train).all()
    medians = np.median(data.x_train, axis=0)
    assert medians[-1] / medians[0] > 1e5  # features on very different scales
    # Heavy tails: the largest value is hundreds of medians away (more where not clipped).
    assert (data.x_train.max(axis=0) / medians > 100).all()
    assert abs(data.y_train.mean()) < 1e-3 and abs(data.y_train.std() - 1.0) < 1e-3
    np.testing.assert_array_equal(load("heavy_tailed").x_train, data.x_train)
    assert not np.array_equal(load("heavy_tailed", seed=1).x_train, data.x_train)


def test_heavy_tailed_target_depends_on_log_scale_position():
    data = load("heavy_tailed")
    x, y = data.x_train.astype(np.float64), data.y_train
    medians = 10.0 ** np.linspace(0.0, 6.0, 8)
    log_features = np.tanh(np.log(np.maximum(x, 1e-30) / medians))
    raw = (x - x.mean(0)) / x.std(0)

    def r_squared(features):
        design = np.column_stack([features, np.ones(len(y))])
        residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
        return 1 - residual.var() / y.var()

    # A linear fit explains the target on the log-scale view but not on standardized raw x.
    assert r_squared(log_features) > 0.8 > 0.5 > r_squared(raw)


def test_mnist1d_is_generated_locally_cached_atomically_and_reused(tmp_path, monkeypatch):
    import mnist1d.data

    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path))
    numpy_state = np.random.get_state()[1].copy()
    data = load("mnist1d")
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # global RNG untouched
    assert data.x_train.shape == (4000, 40) and data.x_test.shape == (1000, 40)
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) == set(range(10))
    assert (data.num_classes, data.task) == (10, "classification")
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].startswith("mnist1d-") and files[0].endswith(".npz")

    def no_generation(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
    cached = load("mnist1d")
    np.testing.assert_array_equal(cached.x_test, data.x_test)
    np.testing.assert_array_equal(cached.y_train, data.y_train)


def test_mnist1d_regenerates_a_corrupt_cache_file(tmp_path, monkeypatch):
    import mnist1d.data

    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path))
    seeds = []

    def tiny_dataset(args):
        seeds.append(args.seed)
        rng = np.random.default_rng(args.seed)
        return {
            "x": rng.normal(size=(8, 40)),
            "y": np.arange(8) % 10,
            "x_test": rng.normal(size=(2, 40)),
            "y_test": np.arange(2),
        }

    monkeypatch.setattr(mnist1d.data, "make_dataset", tiny_dataset)
    first = load("mnist1d", seed=3)
    assert seeds == [45]  # the paper's generator seed 42, offset by `seed`
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"half-written")
    again = load("mnist1d", seed=3)
    assert seeds == [45, 45]
    np.testing.assert_array_equal(again.x_train, first.x_train)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left
    assert builtin.cache_dir() == tmp_path


def test_mnist1d_position_is_a_seeded_regression_set_shaped_like_mnist1d():
    data = load("mnist1d_position")
    assert data.x_train.shape == (4000, 40) == load("mnist1d").x_train.shape
    assert data.x_test.shape == (1000, 40) and data.y_train.shape == (4000,)
    assert data.x_train.dtype == data.y_train.dtype == np.float32
    assert (data.num_classes, data.task) == (None, "regression")
    assert -1.0 <= data.y_train.min() < -0.5 and 0.5 < data.y_train.max() <= 1.0
    assert abs(float(np.concatenate([data.x_train, data.x_test]).std()) - 1.0) < 1e-3
    np.testing.assert_array_equal(load("mnist1d_position").x_test, data.x_test)
    assert not np.array_equal(load("mnist1d_position", seed=1).y_train, data.y_train)
    # The target is in the signal: the energy-weighted centre correlates with it.
    energy = np.abs(data.x_train) ** 2
    centre = (energy * np.arange(40)).sum(axis=1) / energy.sum(axis=1)
    assert np.corrcoef(centre, data.y_train)[0, 1] > 0.5
