"""`"mnist1d_position"`: where is the digit? A regression set shaped like MNIST-1D.

The second dataset of the two-task recipe (S0.1: one model, two datasets, two losses). Each
example is a 40-sample signal like MNIST-1D's: one of its 10 digit templates, stretched to a
random width of 12-20 samples, scaled by a random amplitude, placed at a random offset, on
correlated and iid noise, then standardized over the whole set as MNIST-1D is. The target is the
centre of the digit in the window, from -1 (left edge) to +1 (right edge). Same input shape as
`"mnist1d"`, so one trunk reads both; the digit's identity is not a label here (it varies at
random), its position is.

Generated locally with NumPy (seed `1042 + seed`), 4000 train / 1000 test, in well under a second.

Example:

>>> from toolkit.data import load
>>> data = load("mnist1d_position")
>>> data.x_train.shape, data.task, data.num_classes
((4000, 40), 'regression', None)
>>> bool(-1 <= data.y_train.min() and data.y_train.max() <= 1)
True
"""

import numpy as np

from toolkit.data.builtin import BuiltinData

__all__ = ["mnist1d_position"]

_LENGTH = 40
_WIDTHS = (12, 20)  # stretched template width, samples
_NUM_TRAIN, _NUM_TEST = 4000, 1000


def mnist1d_position(seed: int = 0) -> BuiltinData:
    """Generates the `"mnist1d_position"` regression set (see the module doc).

    Args:
        seed: Generator seed offset; `0` gives the standard set. Defaults to `0`.

    Returns:
        A `BuiltinData` with float32 signals `(N, 40)` and float32 targets `(N,)` in [-1, 1].

    Example:

    >>> mnist1d_position(seed=1).y_test.shape
    (1000,)
    """
    from mnist1d.data import get_templates

    rng = np.random.default_rng(1042 + seed)
    templates = get_templates()["x"]
    num = _NUM_TRAIN + _NUM_TEST
    digits = rng.integers(0, len(templates), num)
    widths = rng.integers(_WIDTHS[0], _WIDTHS[1] + 1, num)
    offsets = np.floor(rng.random(num) * (_LENGTH - widths + 1)).astype(int)
    amplitudes = rng.uniform(0.8, 1.2, num)
    # Correlated background noise: iid normal smoothed by a 5-sample box filter, as MNIST-1D's
    # `corr_noise_like` makes low-frequency clutter the digit must be found in.
    smooth = np.apply_along_axis(np.convolve, 1, rng.standard_normal((num, _LENGTH + 4)),
                                 np.ones(5) / 5, mode="valid")
    x = 0.25 * smooth + 0.02 * rng.standard_normal((num, _LENGTH))
    source = np.linspace(0.0, 1.0, templates.shape[1])
    for i in range(num):
        stretched = np.interp(np.linspace(0.0, 1.0, widths[i]), source, templates[digits[i]])
        x[i, offsets[i]:offsets[i] + widths[i]] += amplitudes[i] * stretched
    x = (x - x.mean()) / x.std()
    centre = offsets + widths / 2.0
    y = 2.0 * centre / _LENGTH - 1.0
    x, y = x.astype(np.float32), y.astype(np.float32)
    return BuiltinData(
        name="mnist1d_position",
        x_train=x[:_NUM_TRAIN],
        y_train=y[:_NUM_TRAIN],
        x_test=x[_NUM_TRAIN:],
        y_test=y[_NUM_TRAIN:],
        num_classes=None,
        task="regression",
        description=(
            "Where is the digit: MNIST-1D's digit templates stretched to 12-20 samples, placed at "
            "random in a 40-sample window on correlated noise; the target is the digit's centre "
            f"from -1 (left) to +1 (right). Seed {1042 + seed}, 4000 train / 1000 test."
        ),
    )
