"""read_run: a run directory's scalars, read back on the four axes of S0.3."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import summary_pb2

from toolkit import keras_compat
from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.errors import DataError
from toolkit.report import RunScalars, read_run
from toolkit.train import fit
from toolkit.train.options import Logging

BATCH, EXAMPLES, EVERY = 8, 64, 5


def make_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile(keras.optimizers.Adam(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def train(model, run_dir, steps):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(EXAMPLES, 4)).astype("float32"), rng.integers(0, 3, EXAMPLES)
    return fit(model, (x, y), steps=steps, batch_size=BATCH, eval_data=(x, y),
               eval_every_steps=10, run_dir=str(run_dir), logging=Logging(every_steps=EVERY),
               verbose=0)


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """One run trained to step 20, then continued to 40 by a second `fit` (a resume)."""
    run_dir = tmp_path_factory.mktemp("run")
    first = train(make_model(), run_dir, 20)
    first_run = read_run(run_dir)
    history = train(make_model(), run_dir, 40)
    return run_dir, first, first_run, history


def tensorboard_scalars(directory):
    """{tag: (steps, values)} as TensorBoard's own EventAccumulator reads them."""
    accumulator = event_accumulator.EventAccumulator(
        str(directory), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return {
        tag: ([e.step for e in accumulator.Tensors(tag)],
              [float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)])
        for tag in accumulator.Tags()["tensors"]
    }


def test_evaluation_points_match_the_history(resumed_run):
    run_dir, first, first_run, history = resumed_run
    assert first_run.series("loss", "validation").steps.tolist() == first.steps == [10, 20]
    validation = read_run(run_dir).series("loss", "validation")
    assert validation.steps.tolist() == history.steps == [10, 20, 30, 40]
    np.testing.assert_allclose(validation.values, history.history["val_loss"], rtol=1e-6)
    accuracy = read_run(run_dir).series("accuracy", "validation")
    np.testing.assert_allclose(accuracy.values, history.history["val_accuracy"], rtol=1e-6)


def test_every_tag_matches_tensorboards_reader(resumed_run):
    run = read_run(resumed_run[0])
    for split in ("train", "validation"):
        expected = tensorboard_scalars(resumed_run[0] / split)
        assert run.tags(split) == sorted(t for t in expected if not t.startswith("by_examples/"))
        for tag in run.tags(split):
            series = run.series(tag, split)
            assert series.steps.tolist() == expected[tag][0]
            np.testing.assert_allclose(series.values, expected[tag][1], rtol=1e-6)


def test_resume_continues_without_duplicate_steps(resumed_run):
    run_dir, _, first_run, _ = resumed_run
    assert len(os.listdir(run_dir / "train")) == 2  # one event file per `fit` call
    loss = read_run(run_dir).series("loss")
    assert loss.steps.tolist() == list(range(EVERY, 41, EVERY))
    # The first run's points are kept as they were; the resumed run appends after them.
    np.testing.assert_array_equal(loss.values[:4], first_run.series("loss").values)
    assert np.all(np.diff(loss.wall_seconds) > 0)
    assert np.all(np.diff(loss.timestamps) >= 0)


def test_derived_axes_of_a_fit_run(resumed_run):
    run = read_run(resumed_run[0])
    assert isinstance(run, RunScalars) and run.wall_source == "steps_per_second"
    assert run.dataset_size == EXAMPLES
    for split in ("train", "validation"):
        series = run.series("loss", split)
        np.testing.assert_array_equal(series.examples, series.steps * BATCH)
        np.testing.assert_allclose(series.epochs, series.steps * BATCH / EXAMPLES)
        assert series.axis("epochs") is series.epochs
    # Wall time is the windows' steps over their steps/s, summed.
    train = run.series("loss")
    rate = run.series("steps_per_second")
    np.testing.assert_allclose(train.wall_seconds, np.cumsum(EVERY / rate.values))
    # An evaluation point sits on the training clock at its step.
    validation = run.series("loss", "validation")
    np.testing.assert_allclose(validation.wall_seconds, train.wall_seconds[1::2])


def test_a_rerun_without_trimming_keeps_the_later_points(tmp_path):
    # Two writers over the same steps (e.g. a plain model.fit rerun): the later file wins,
    # and its restart at step 20 drops the earlier run's points from 20 on.
    first = ScalarWriter(str(tmp_path / "train"))
    for step in (10, 20, 30, 40):
        first.write({"loss": 1.0}, step)
    first.close()
    second = ScalarWriter(str(tmp_path / "train"))
    for step in (20, 30):
        second.write({"loss": 2.0}, step)
    second.close()
    loss = read_run(tmp_path).series("loss")
    assert loss.steps.tolist() == [10, 20, 30]
    assert loss.values.tolist() == [1.0, 2.0, 2.0]


def test_tf_summary_and_legacy_simple_value_scalars(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path / "train"))
    with writer.as_default():
        for step in (1, 2, 3):
            tf.summary.scalar("loss", 1.0 / step, step=step)
            tf.summary.histogram("weights", tf.ones(3), step=step)  # not a scalar: skipped
    writer.close()
    legacy = keras_compat.open_event_writer(str(tmp_path / "validation"), ".legacy")
    for step in (2, 4):
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
            tag="loss", simple_value=0.25 * step)])
        legacy.add_event(keras_compat.make_event(summary, step, wall_time=1000.0 + step))
    legacy.close()
    run = read_run(tmp_path)
    assert run.tags("train") == ["loss"]
    np.testing.assert_allclose(run.series("loss").values, [1.0, 0.5, 1 / 3], rtol=1e-6)
    assert run.series("loss", "validation").values.tolist() == [0.5, 1.0]
    # No steps/s, no examples: wall time falls back to event times; other axes are unknown.
    assert run.wall_source == "event_time"
    assert run.series("loss").examples is None and run.series("loss").epochs is None
    assert run.dataset_size is None


@pytest.mark.parametrize("make", ["missing", "empty", "hparams only"])
def test_a_directory_without_scalars_is_a_clear_error(tmp_path, make):
    run_dir = tmp_path / "run"
    if make != "missing":
        (run_dir / "checkpoints").mkdir(parents=True)
    if make == "hparams only":
        ScalarWriter(str(run_dir)).close()  # an event file with no scalar
    message = "does not exist" if make == "missing" else "holds no TensorBoard scalar events"
    with pytest.raises(DataError, match=message):
        read_run(run_dir)


def test_a_missing_tag_names_the_tags_there(resumed_run):
    run = read_run(resumed_run[0])
    with pytest.raises(KeyError, match=r"logged no 'val_loss' in split 'train'.*'accuracy'"):
        run.series("val_loss")
    with pytest.raises(ValueError, match="Unknown axis 'time'"):
        run.series("loss").axis("time")
