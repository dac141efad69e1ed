"""Mixed precision through `fit`: the loss-scale optimizer's state resumes exactly."""

import keras
import numpy as np
import pytest

import toolkit
from toolkit.distribute import set_precision
from toolkit.errors import StrategyError


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    set_precision("mixed_float16")
    yield
    keras.config.set_dtype_policy(previous)


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, dtype="float32")])
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _state(model):
    return [np.array(v) for v in model.variables + model.optimizer.variables]


def test_loss_scale_optimizer_state_resumes_exactly(mixed_float16, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
    data = toolkit.data.endless((x, y), 32, seed=0)
    whole = _model()
    assert type(whole.optimizer).__name__ == "LossScaleOptimizer"
    toolkit.fit(whole, data, steps=40, eval_every_steps=20, run_dir=str(tmp_path / "a"),
                verbose=0)
    first = _model()
    toolkit.fit(first, data, steps=20, eval_every_steps=20, run_dir=str(tmp_path / "b"),
                verbose=0)
    resumed = _model()  # a new process would build it fresh
    toolkit.fit(resumed, data, steps=40, eval_every_steps=20, run_dir=str(tmp_path / "b"),
                verbose=0)
    names = [v.path for v in resumed.optimizer.variables]
    assert any("scale" in name for name in names), names  # the loss scale is checkpointed
    for expected, got in zip(_state(whole), _state(resumed)):
        np.testing.assert_array_equal(expected, got)


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(StrategyError, match="Unknown train.precision 'fp16'. Expected one of"):
        set_precision("fp16")


def test_steps_skipped_by_loss_scaling_are_not_failures(mixed_float16, tmp_path, recwarn):
    # Inputs x300 overflow float16 gradients at the initial loss scale (2**15): the loss-scale
    # optimizer skips those steps and halves its scale; NanGuard must not call that divergence.
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(256, 6)) * 300).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(2, dtype="float32")])
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    toolkit.fit(model, toolkit.data.endless((x, y), 32, seed=0), steps=60, eval_every_steps=30,
                run_dir=str(tmp_path / "run"), verbose=0)
    scale = [float(np.array(v)) for v in model.optimizer.variables if "dynamic_scale" in v.path]
    assert scale and scale[0] < 2.0 ** 15  # steps were skipped
    assert int(np.array(model.optimizer.iterations)) == 60  # the budget counts applied steps
    assert not [w for w in recwarn if "NanGuard" in str(w.message)]
