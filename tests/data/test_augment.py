import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import augment, endless
from toolkit.errors import DataError

SEED = tf.constant([3, 4], tf.int64)
OTHER_SEED = tf.constant([3, 5], tf.int64)

SIGNAL_AUGMENTATIONS = {
    "shift_circular": augment.random_shift(5),
    "shift_zeros": augment.random_shift(5, mode="zeros"),
    "shift_reflect": augment.random_shift(5, mode="reflect"),
    "scale": augment.random_scale(0.5, 1.5),
    "noise": augment.gaussian_noise(0.1),
}
IMAGE_AUGMENTATIONS = {
    "flip": augment.random_flip(horizontal=True, vertical=True),
    "crop": augment.random_crop(3),
    "crop_reflect": augment.random_crop(3, mode="reflect"),
    "brightness": augment.random_brightness(0.2),
    "composed": augment.compose(
        augment.random_flip(), augment.random_crop(2), augment.random_brightness(0.1)
    ),
}


def _signals(batch=16, length=40, channels=None):
    rng = np.random.default_rng(0)
    shape = (batch, length) if channels is None else (batch, length, channels)
    return tf.constant(rng.normal(size=shape).astype("float32"))


def _images(batch=8, dtype="float32"):
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 1, size=(batch, 12, 10, 3))
    if dtype == "uint8":
        values = values * 255
    return tf.constant(values.astype(dtype))


def _all_cases():
    for name, fn in SIGNAL_AUGMENTATIONS.items():
        yield name, fn, _signals()
        yield name + "_channels", fn, _signals(channels=2)
    for name, fn in IMAGE_AUGMENTATIONS.items():
        yield name, fn, _images()
        # Brightness is in the units of x: pixel levels for uint8 images.
        uint8_fn = augment.random_brightness(30) if name == "brightness" else fn
        yield name + "_uint8", uint8_fn, _images(dtype="uint8")


CASES = list(_all_cases())
IDS = [case[0] for case in CASES]


@pytest.mark.parametrize("name, fn, x", CASES, ids=IDS)
@pytest.mark.parametrize("nesting", ["x", "(x,)", "(x, y)", "(x, y, w)"])
def test_preserves_shape_dtype_and_passes_labels_through(name, fn, x, nesting):
    y = tf.range(x.shape[0])
    w = tf.linspace(0.0, 1.0, x.shape[0])
    batch = {"x": x, "(x,)": (x,), "(x, y)": (x, y), "(x, y, w)": (x, y, w)}[nesting]
    out = fn(batch, SEED)
    if nesting == "x":
        assert isinstance(out, tf.Tensor)
        out_x = out
    else:
        assert isinstance(out, tuple) and len(out) == len(batch)
        out_x = out[0]
        for before, after in zip(batch[1:], out[1:]):
            assert after is before
    assert out_x.shape == x.shape
    assert out_x.dtype == x.dtype


@pytest.mark.parametrize("name, fn, x", CASES, ids=IDS)
def test_deterministic_for_a_seed_and_different_across_seeds(name, fn, x):
    first, again, other = fn(x, SEED), fn(x, SEED), fn(x, OTHER_SEED)
    np.testing.assert_array_equal(first.numpy(), again.numpy())
    assert not np.array_equal(first.numpy(), other.numpy())


def test_examples_of_one_batch_get_different_draws():
    x = tf.ones((64, 10))
    factors = augment.random_scale(0.0, 1.0)(x, SEED)[:, 0].numpy()
    assert len(np.unique(factors)) == 64


def test_circular_shift_is_a_per_example_roll():
    x = _signals(batch=32)
    out = augment.random_shift(5)(x, SEED).numpy()
    shifts = []
    for row, shifted in zip(x.numpy(), out):
        matches = [s for s in range(-5, 6) if np.array_equal(np.roll(row, s), shifted)]
        assert matches, "each example must be a circular shift of itself"
        shifts.append(matches[0])
    assert len(set(shifts)) > 3  # independent shifts per example


def test_zero_padded_shift_fills_with_zeros():
    x = tf.ones((32, 20))
    out = augment.random_shift(4, mode="zeros")(x, SEED).numpy()
    zeros = (out == 0).sum(axis=1)
    assert zeros.max() <= 4 and zeros.max() > 0
    assert set(np.unique(out)) <= {0.0, 1.0}


def test_flip_either_keeps_or_reverses_each_image():
    x = _images(batch=32)
    out = augment.random_flip()(x, SEED).numpy()
    kept = [np.array_equal(a, b) for a, b in zip(x.numpy(), out)]
    flipped = [np.array_equal(a[:, ::-1], b) for a, b in zip(x.numpy(), out)]
    assert all(k or f for k, f in zip(kept, flipped))
    assert 0 < sum(flipped) < 32


def test_crop_translates_each_image_within_padding():
    x = _images(batch=16)
    out = augment.random_crop(2)(x, SEED).numpy()
    padded = np.pad(x.numpy(), [(0, 0), (2, 2), (2, 2), (0, 0)])
    for image, crop in zip(padded, out):
        offsets = [
            (dy, dx) for dy in range(5) for dx in range(5)
            if np.array_equal(image[dy:dy + 12, dx:dx + 10], crop)
        ]
        assert offsets
    assert np.array_equal(augment.random_crop(0)(x, SEED).numpy(), x.numpy())


def test_brightness_saturates_uint8_and_shifts_floats_uniformly():
    x = tf.fill((64, 2, 2, 1), tf.constant(250, tf.uint8))
    out = augment.random_brightness(20)(x, SEED).numpy()
    assert out.max() == 255 and out.min() >= 230
    floats = augment.random_brightness(0.3)(tf.zeros((64, 2, 2, 1)), SEED).numpy()
    deltas = floats[:, 0, 0, 0]
    assert np.all(np.abs(deltas) <= 0.3) and np.all(floats == deltas[:, None, None, None])


def test_scale_and_noise_have_the_requested_statistics():
    scaled = augment.random_scale(0.8, 1.2)(tf.ones((2000, 3)), SEED).numpy()
    assert scaled.min() >= 0.8 and scaled.max() <= 1.2
    assert abs(scaled.mean() - 1.0) < 0.01
    noisy = augment.gaussian_noise(0.5)(tf.zeros((200, 100)), SEED).numpy()
    assert abs(noisy.std() - 0.5) < 0.01 and abs(noisy.mean()) < 0.01


def test_compose_gives_each_augmentation_an_independent_sub_seed():
    shift, scale = augment.random_shift(3), augment.random_scale(0.5, 2.0)
    x = _signals()
    composed = augment.compose(shift, scale)(x, SEED)
    seeds = [tf.random.experimental.stateless_fold_in(SEED, i, alg="philox") for i in range(2)]
    expected = scale(shift(x, seeds[0]), seeds[1])
    np.testing.assert_array_equal(composed.numpy(), expected.numpy())
    # Appending an augmentation leaves the earlier draws unchanged.
    longer = augment.compose(shift, scale, augment.gaussian_noise(0.0))(x, SEED)
    np.testing.assert_array_equal(longer.numpy(), composed.numpy())


@pytest.mark.parametrize("sampling", ["iid", "passes"])
def test_endless_resume_reproduces_augmented_batches(sampling):
    x = _signals(batch=50).numpy()
    y = np.arange(50)
    fn = augment.compose(augment.random_shift(4), augment.gaussian_noise(0.1))
    run = list(endless((x, y), 8, seed=7, sampling=sampling, augment=fn).take(6))
    resumed = list(endless((x, y), 8, seed=7, sampling=sampling, augment=fn, start_step=3).take(3))
    for original, again in zip(run[3:], resumed):
        np.testing.assert_array_equal(original[0].numpy(), again[0].numpy())
        np.testing.assert_array_equal(original[1].numpy(), again[1].numpy())
    # Every step is a fresh variant: the same example drawn twice is augmented differently.
    plain = list(endless((x, y), 8, seed=7, sampling=sampling).take(6))
    assert all(not np.array_equal(a[0], b[0]) for a, b in zip(run, plain))


def test_works_with_a_batch_size_schedule():
    x, y = _signals(batch=30).numpy(), np.arange(30)
    dataset = endless((x, y), lambda step: 4 + step, augment=augment.random_shift(2))
    assert [int(batch[0].shape[0]) for batch in dataset.take(3)] == [4, 5, 6]


def test_errors_name_the_culprit():
    with pytest.raises(DataError, match=r"`random_shift` expects x .* of shape \(2, 3, 4, 5\)"):
        augment.random_shift(2)(tf.zeros((2, 3, 4, 5)), SEED)
    with pytest.raises(DataError, match=r"`random_flip` expects x of shape \[batch, height"):
        augment.random_flip()(tf.zeros((2, 3)), SEED)
    with pytest.raises(DataError, match=r"multi-input"):
        augment.gaussian_noise(0.1)(({"a": tf.zeros((2, 3))}, tf.zeros(2)), SEED)
    with pytest.raises(DataError, match=r"non-negative integer `max_shift`. Received: max_shift=-1"):
        augment.random_shift(-1)
    with pytest.raises(DataError, match=r"min_factor <= max_factor. Received: min_factor=2"):
        augment.random_scale(2, 1)
    with pytest.raises(DataError, match=r"Received a str at position 1: 'noise'"):
        augment.compose(augment.random_shift(2), "noise")
    with pytest.raises(DataError, match=r"`mode` must be one of"):
        augment.random_crop(2, mode="wrap")
