"""Learning-rate and batch-size schedules from recipes: values, saving, and exact resume."""

import keras
import numpy as np
import pytest

from toolkit.errors import RecipeError
from toolkit.recipe import load_recipe
from toolkit.recipe.prepare import prepare_recipe
from toolkit.train import fit
from toolkit.train.schedules import BatchSizeSchedule, FinalAnneal, learning_rate

SCHEDULED = ["train.steps=60", "train.eval_every_steps=20", "train.checkpoint_every_steps=10",
             "data.max_train_examples=400", "data.batch_size=16",
             "data.batch_growth_steps=[20, 40]", "data.batch_growth_factor=2",
             'optimizer.schedule="step"', "optimizer.decay_steps=[30]",
             "optimizer.final_anneal_fraction=0.25"]


class Crash(keras.callbacks.Callback):
    def __init__(self, at_step):
        super().__init__()
        self.at_step = at_step

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) == self.at_step:
            raise RuntimeError("crash")


def _train(run_dir, callbacks=()):
    prepared = prepare_recipe(load_recipe("digits_mlp", SCHEDULED))
    model = prepared.model
    history = fit(model, prepared.train_data(), steps=60, eval_data=prepared.inputs.eval_data,
                  eval_every_steps=20, run_dir=str(run_dir), callbacks=list(callbacks),
                  verbose=0)
    return model, history


def test_schedules_resume_exactly_after_a_crash(tmp_path):
    model, history = _train(tmp_path / "straight")
    # 20 steps of 16, 20 of 32, 20 of 64: examples seen are the exact sum.
    assert history.examples_seen[-1] == 20 * 16 + 20 * 32 + 20 * 64
    with pytest.raises(RuntimeError, match="crash"):
        _train(tmp_path / "crashed", [Crash(at_step=35)])
    resumed, resumed_history = _train(tmp_path / "crashed")
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed_history.examples_seen[-1] == history.examples_seen[-1]
    # 1e-3 (digits_mlp), x0.1 at step 30, annealed to x0.1 at the end.
    assert float(resumed.optimizer.learning_rate) == pytest.approx(1e-5, rel=1e-5)


def test_the_learning_rate_follows_each_schedule():
    step = learning_rate(1.0, "step", steps=100, decay_steps=(10, 20), decay_factor=0.5)
    assert [float(step(s)) for s in (0, 9, 10, 20, 99)] == [1.0, 1.0, 0.5, 0.25, 0.25]
    exponential = learning_rate(1.0, "exponential", steps=100, decay_rate=0.9995)
    assert float(exponential(1000)) == pytest.approx(0.9995 ** 1000, rel=1e-4)  # float32
    cosine = learning_rate(1.0, "cosine", steps=100, decay_factor=0.1)
    assert float(cosine(0)) == pytest.approx(1.0) and float(cosine(100)) == pytest.approx(0.1)
    assert learning_rate(0.3, "constant", steps=100) == 0.3
    annealed = learning_rate(1.0, "constant", steps=100, final_anneal_fraction=0.1)
    assert [round(float(annealed(s)), 4) for s in (0, 90, 95, 100)] == [1.0, 1.0, 0.55, 0.1]


def test_a_scheduled_model_saves_and_loads(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    schedule = FinalAnneal(learning_rate(1e-3, "cosine", steps=50), total_steps=50,
                           anneal_steps=5)
    model.compile(keras.optimizers.Adam(schedule), "mse")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    again = loaded.optimizer._learning_rate
    assert isinstance(again, FinalAnneal) and again.get_config() == schedule.get_config()
    assert float(again(48)) == pytest.approx(float(schedule(48)))


def test_batch_size_schedule():
    schedule = BatchSizeSchedule(8, (5, 10), factor=4)
    assert [schedule(s) for s in (0, 4, 5, 9, 10)] == [8, 8, 32, 32, 128]


@pytest.mark.parametrize("overrides, message", [
    (['optimizer.schedule="step"'], "needs `optimizer.decay_steps`"),
    (["optimizer.decay_steps=[10]"], 'only read by optimizer.schedule = "step"'),
    (['optimizer.schedule="step"', "optimizer.decay_steps=[20, 10]"], "increasing steps"),
    (["data.batch_growth_steps=[10]", "data.batch_growth_factor=1"], "grows nothing"),
    (["optimizer.final_anneal_fraction=1.0"], "must be below 1"),
])
def test_schedule_keys_that_disagree_are_named(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe("digits_mlp", overrides)
