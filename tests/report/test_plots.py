"""write_run_plots and plot_runs: PNGs that open as images, on the four axes of S0.3."""

import os

import keras
import matplotlib
import numpy as np
import pytest
from matplotlib import image

from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.errors import DataError
from toolkit.report import plot_runs, write_run_plots
from toolkit.report.figures import DPI, PANEL_INCHES
from toolkit.train import fit
from toolkit.train.options import Logging


def fit_run(run_dir, steps=20, learning_rate=0.05, evaluate=True):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 4)).astype("float32"), rng.integers(0, 3, 64)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    fit(model, (x, y), steps=steps, batch_size=8, eval_data=(x, y) if evaluate else None,
        eval_every_steps=10, run_dir=str(run_dir), logging=Logging(every_steps=5), verbose=0)
    return run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return fit_run(tmp_path_factory.mktemp("run"))


def assert_image(path, panels=(1, 1)):
    pixels = image.imread(path)
    rows, cols = panels
    height, width = round(PANEL_INCHES[1] * rows * DPI), round(PANEL_INCHES[0] * cols * DPI)
    assert pixels.shape == (height, width, 4)
    # Not blank: lines and text in several colors on the white background.
    rgb = pixels[..., :3].reshape(-1, 3)
    assert (rgb < 0.9).any(axis=1).mean() > 0.01
    assert len(np.unique(np.round(rgb, 2), axis=0)) > 20


def test_run_plots_open_as_images(run_dir):
    backend = matplotlib.rcParams["backend"]
    paths = write_run_plots(run_dir)
    assert [p.name for p in paths] == ["loss.png", "metrics.png", "learning_rate.png"]
    assert all(p.parent == run_dir / "plots" for p in paths)
    assert_image(paths[0], panels=(2, 2))
    assert_image(paths[1], panels=(1, 4))  # one metric (accuracy) on the four axes
    assert_image(paths[2])
    assert sorted(os.listdir(run_dir / "plots")) == sorted(p.name for p in paths)  # no temp
    assert matplotlib.rcParams["backend"] == backend  # the user's backend is left alone


def test_a_run_without_evaluation_plots_training_metrics(tmp_path):
    paths = write_run_plots(fit_run(tmp_path, steps=10, evaluate=False))
    assert [p.name for p in paths] == ["loss.png", "metrics.png", "learning_rate.png"]
    assert_image(paths[1], panels=(1, 4))


def test_a_diverged_run_still_plots(tmp_path):
    writer = ScalarWriter(str(tmp_path / "train"))
    for step, loss in ((10, 2.0), (20, 50.0), (30, float("nan")), (40, float("inf"))):
        writer.write({"loss": loss}, step)
    writer.close()
    paths = write_run_plots(tmp_path)
    assert [p.name for p in paths] == ["loss.png"]
    assert_image(paths[0], panels=(2, 2))


def test_plot_runs_overlays_runs(run_dir, tmp_path):
    other = fit_run(tmp_path / "other" / "run", steps=10, learning_rate=0.001)
    path = plot_runs([run_dir, other], tmp_path / "compare" / "loss.png")
    assert path == tmp_path / "compare" / "loss.png"
    assert_image(path, panels=(2, 2))
    with pytest.warns(UserWarning, match="logged no 'accuracy'"):
        empty = tmp_path / "no_accuracy"
        writer = ScalarWriter(str(empty / "train"))
        writer.write({"loss": 1.0}, 1)
        writer.close()
        plot_runs([run_dir, empty], tmp_path / "accuracy.png", tag="accuracy")
    with pytest.raises(DataError, match="No run logged 'f1'.*Pass one of them as `tag`"):
        plot_runs([run_dir], tmp_path / "f1.png", tag="f1")
    with pytest.raises(DataError, match="got no run directory"):
        plot_runs([], tmp_path / "none.png")


def test_an_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="holds no TensorBoard scalar events"):
        write_run_plots(tmp_path)
    assert not (tmp_path / "plots").exists()
