"""The NaN guard `fit(run_dir=...)` installs: recovery, and a clear stop for hopeless runs."""

import keras
import numpy as np
import pytest

from toolkit.cli import main
from toolkit.errors import TrainingDivergedError
from toolkit.train import Execution, Logging, fit


def make_model(layers):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,))] + layers)
    model.compile(keras.optimizers.Adam(1e-2), "mse", steps_per_execution=1)
    return model


def arrays(n=96):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


class SpikeAt(keras.callbacks.Callback):
    """Sets an absurd learning rate once, when step `step` begins."""

    def __init__(self, step):
        super().__init__()
        self.step, self.done = step, False

    def on_train_batch_begin(self, batch, logs=None):
        if not self.done and int(self.model.optimizer.iterations) == self.step:
            self.done = True
            self.model.optimizer.learning_rate = 1e10


def test_fit_recovers_from_a_non_finite_step_and_reaches_the_budget(tmp_path):
    model = make_model([keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    with pytest.warns(UserWarning, match=r"NanGuard: .* non-finite|NanGuard: .*NaN or Inf") as got:
        history = fit(model, arrays(), steps=40, batch_size=8, eval_every_steps=10,
                      run_dir=tmp_path, callbacks=[SpikeAt(13)], verbose=0,
                      execution=Execution(steps_per_execution=1, jit_compile=False),
                      logging=Logging(checkpoint_every_steps=10))
    message = next(str(w.message) for w in got if "NanGuard" in str(w.message))
    assert "Rolled back to step 10, learning rate 1e+10 -> 0.005 (retry 1/3)" in message
    assert int(model.optimizer.iterations) == 40  # The rolled-back steps were trained again.
    assert all(np.all(np.isfinite(np.asarray(v))) for v in model.variables)
    assert history.steps[-1] == 40 and np.isfinite(history.history["loss"][-1])


def test_hopeless_fit_stops_naming_the_layer(tmp_path):
    # exp(100 t) overflows float32 for t > 0.89: hopeless whatever the learning rate.
    model = make_model([keras.layers.Dense(4, name="hidden"),
                        keras.layers.Lambda(lambda t: keras.ops.exp(100.0 * t), name="exploding"),
                        keras.layers.Dense(1, name="head")])
    with pytest.warns(UserWarning, match="retry 3/3"):
        with pytest.raises(TrainingDivergedError) as caught:
            fit(model, arrays(), steps=40, batch_size=8, eval_every_steps=10, run_dir=tmp_path,
                verbose=0, execution=Execution(steps_per_execution=1, jit_compile=False),
                logging=Logging(checkpoint_every_steps=5))
    message = str(caught.value)
    assert "after 3 rollback(s)" in message
    assert "output of layer `exploding` became non-finite" in message
    assert all(np.all(np.isfinite(np.asarray(v))) for v in model.variables)


def test_hopeless_recipe_is_one_error_line_with_exit_2(capsys, tmp_path):
    argv = ["train", "digits_mlp", "--smoke", "--run-dir", str(tmp_path / "run"),
            "--set", "train.deterministic=false", "--set", "optimizer.learning_rate=1e30"]
    with pytest.warns(UserWarning, match="NanGuard"):
        assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("toolkit:")]
    assert len(lines) == 1 and lines[0].startswith("toolkit: error: Training diverged:"), err
    assert "became non-finite" in lines[0] and "learning rate is too high" in lines[0]
    assert not (tmp_path / "run" / "summary.json").exists()
