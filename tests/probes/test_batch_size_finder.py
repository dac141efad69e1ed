"""The batch-size finder: exact restore, out-of-memory back-off, memory limit, rules, the CLI."""

import argparse
import json
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from matplotlib.image import imread

from toolkit.commands import find_batch
from toolkit.errors import DataError, ModelError, RecipeError
from toolkit.probes.batch_size_finder import default_batch_sizes, find_batch_size
from toolkit.probes.batch_size_search import BatchSizePoint, BatchSizeSearch, fits_memory
from toolkit.probes.memory import PeakMemory, format_bytes, parse_memory_size

FAST = {"num_windows": 2, "window_seconds": 0.01}
OOM_ABOVE = 16


@keras.saving.register_keras_serializable(package="toolkit_tests")
class FailAbove(keras.layers.Layer):
    """Passes its input through, but fails like an allocation would above `limit` examples.

    A `MemoryError` raised inside `tf.py_function` reaches the caller as TensorFlow's
    `ResourceExhaustedError`, the error a GPU allocator raises, from inside Keras's train step.
    """

    def __init__(self, limit, **kwargs):
        super().__init__(**kwargs)
        self.limit = limit

    def call(self, inputs):
        def check(size):
            if int(size) > self.limit:
                raise MemoryError(f"OOM when allocating a batch of {int(size)} (injected)")
            return size

        size = tf.py_function(check, [tf.shape(inputs)[0]], tf.int32)
        with tf.control_dependencies([size]):
            return tf.identity(inputs)

    def get_config(self):
        return {**super().get_config(), "limit": self.limit}


def _data(num_examples=256):
    x = np.random.default_rng(0).normal(size=(num_examples, 4)).astype("float32")
    return x, (x[:, 0] * x[:, 1] > 0).astype("int32")


def _model(fail_above=None, steps_per_execution=1, seed=0):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((4,))]
    if fail_above is not None:
        layers.append(FailAbove(fail_above))
    layers += [keras.layers.Dense(16, activation="relu"), keras.layers.BatchNormalization(),
               keras.layers.Dense(2)]
    model = keras.Sequential(layers)
    # py_function cannot be XLA-compiled; the recipe models can (and are, from 2,000 steps).
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution, jit_compile=False)
    return model


def _state(model):
    variables = list(model.variables) + list(model.optimizer.variables)
    return [(v.path, np.array(v.numpy(), copy=True)) for v in variables]


def _assert_same_state(before, after):
    assert [path for path, _ in after] == [path for path, _ in before]
    for (path, old), (_, new) in zip(before, after):
        assert np.array_equal(old, new), path


def test_restores_weights_adam_moments_settings_and_history_bit_identical():
    x, y = _data()
    model = _model(steps_per_execution=4)
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0)  # moments non-zero, step 16
    before = _state(model)
    # A long window against tiny steps: the later batch sizes run fewer steps per call.
    search = find_batch_size(model, (x, y), batch_sizes=(8, 128), num_windows=2,
                             window_seconds=0.0001)
    assert [p.status for p in search.points] == ["fits"] * 2
    assert search.points[0].steps_per_execution == 4
    assert search.points[-1].steps_per_execution == 1  # it did change the setting
    _assert_same_state(before, _state(model))
    paths = [path for path, _ in before]
    assert any("momentum" in p for p in paths) and any("moving_variance" in p for p in paths)
    assert int(model.optimizer.iterations) == 16
    assert model.steps_per_execution == 4 and model.history is history
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)  # and it trains on as before
    assert int(model.optimizer.iterations) == 24


def test_out_of_memory_stops_the_sweep_and_leaves_the_process_usable():
    x, y = _data()
    model = _model(fail_above=OOM_ABOVE)
    model.fit(x, y, batch_size=OOM_ABOVE, epochs=1, verbose=0)  # non-zero Adam moments
    before = _state(model)
    uid = keras.backend.get_uid("batch_finder_probe")
    search = find_batch_size(model, (x, y), batch_sizes=(8, 16, 32, 64), **FAST)
    assert [p.status for p in search.points] == ["fits", "fits", "out_of_memory"]  # not 64
    assert search.points[-1].examples_per_second is None
    assert search.largest_fitting == 16 and search.knee in (8, 16)
    assert "batch size 32 ran out of memory" in search.stopped_because
    # The caller's model is exactly as it was and still trains; Keras's global state was not
    # cleared (clear_session would restart the name counters).
    _assert_same_state(before, _state(model))
    assert keras.backend.get_uid("batch_finder_probe") == uid + 1
    loss = model.fit(x, y, batch_size=16, epochs=1, verbose=0).history["loss"][-1]
    assert np.isfinite(loss)


def test_model_fn_builds_one_fresh_model_per_batch_size_until_out_of_memory():
    x, y = _data()
    built = []

    def model_fn():
        built.append(_model(fail_above=OOM_ABOVE, seed=len(built)))
        return built[-1]

    search = find_batch_size(model_fn, (x, y), batch_sizes=(16, 32, 64), **FAST)
    assert [p.status for p in search.points] == ["fits", "out_of_memory"]
    assert len(built) == 2 and search.largest_fitting == search.knee == 16
    assert int(built[0].optimizer.iterations) > 0  # the fresh model is the one trained


def test_memory_limit_ends_the_sweep_and_nothing_fitting_warns():
    x, y = _data()
    model = _model()
    with pytest.warns(UserWarning, match="No batch size fits: batch size 8 peaked at .* over 90% "
                                         "of max memory 1 B"):
        search = find_batch_size(model, (x, y), batch_sizes=(8, 16), max_memory_bytes=1, **FAST)
    assert [p.status for p in search.points] == ["over_max_memory"]
    assert search.largest_fitting is None and search.knee is None
    assert search.points[0].peak_memory_bytes > 100 * 2**20  # a TensorFlow process's RSS
    roomy = find_batch_size(model, (x, y), batch_sizes=(8,), max_memory_bytes=2**50, **FAST)
    assert roomy.largest_fitting == 8 and roomy.max_memory_bytes == 2**50


def test_knee_is_the_smallest_within_5_percent_of_the_best_fitting():
    def point(size, speed, status="fits"):
        return BatchSizePoint(size, status, speed, (speed,) if speed else (), 2**20, 1)

    points = [point(8, 100.0), point(16, 940.0), point(32, 960.0), point(64, 1000.0),
              point(128, 5000.0, "over_max_memory")]
    search = BatchSizeSearch.from_points(points, "process", 10**9, "limit")
    assert (search.knee, search.largest_fitting, search.best_examples_per_second) == (
        32, 64, 1000.0)  # 940 < 0.95 * 1000; the faster 128 does not fit
    table = search.table()
    assert "knee" in table.splitlines()[3] and "over max memory" in table.splitlines()[5]
    assert json.loads(json.dumps(search.to_dict()))["points"][1]["batch_size"] == 16
    assert fits_memory(90, 100) and not fits_memory(91, 100)


def test_plot_is_a_png_with_both_panels(tmp_path):
    points = [BatchSizePoint(8, "fits", 100.0, (100.0,), 2**29, 1),
              BatchSizePoint(16, "fits", 180.0, (180.0,), 2**29 + 2**20, 1),
              BatchSizePoint(32, "out_of_memory", None, (), 2**30, 1)]
    search = BatchSizeSearch.from_points(points, "process", 2**31, "oom")
    path = search.plot(tmp_path / "plots" / "find_batch.png")
    image = imread(path)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side


def test_default_batch_sizes_stop_at_the_dataset_size():
    assert default_batch_sizes() == tuple(2**k for k in range(3, 13))
    assert default_batch_sizes(4000)[-1] == 2048 and default_batch_sizes(5) == (5,)


def test_memory_sizes_and_meter():
    assert parse_memory_size("12GiB") == 12 * 2**30 and parse_memory_size("500 MB") == 5 * 10**8
    assert parse_memory_size("1048576") == 2**20 and parse_memory_size("0.5k") == 512
    for bad in ("lots", "-1G", "0", "12 parsecs"):
        with pytest.raises(RecipeError, match=f"Cannot read the memory size {bad!r}"):
            parse_memory_size(bad)
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(700 * 2**20) == "700 MiB"
    meter = PeakMemory.detect()
    meter.reset()
    low = meter.peak_bytes()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    assert meter.peak_bytes() >= low + (60 * 2**20 if meter.resettable else 0)
    del block


def test_bad_arguments_are_refused_with_the_fix():
    x, y = _data()
    model = _model()
    with pytest.raises(RecipeError, match=r"increasing positive integers.*\(64, 8\)"):
        find_batch_size(model, (x, y), batch_sizes=(64, 8))
    with pytest.raises(RecipeError, match="`num_windows` must be a positive integer"):
        find_batch_size(model, (x, y), num_windows=0)
    with pytest.raises(RecipeError, match="`max_memory_bytes` must be a positive"):
        find_batch_size(model, (x, y), max_memory_bytes=-5)
    with pytest.raises(DataError, match="re-batch.*function batch_size -> dataset"):
        find_batch_size(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(8))
    with pytest.raises(DataError, match="ended after warm-up"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras's own "ran out of data" note
        find_batch_size(model, lambda size: iter([(x[:size], y[:size])] * 3), batch_sizes=(8,),
                        **FAST)
    uncompiled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="needs a compiled keras.Model"):
        find_batch_size(uncompiled, (x, y))
    with pytest.raises(ModelError, match="`model_fn`.*must return a compiled keras.Model"):
        find_batch_size(lambda: uncompiled, (x, y), batch_sizes=(8,), **FAST)
    with pytest.raises(ModelError, match="or a function returning one. Received: str"):
        find_batch_size("model.keras", (x, y))


def _cli(*argv):
    parser = argparse.ArgumentParser(prog="toolkit")
    find_batch.add(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["find-batch", *argv])
    return args.handler(args)


# A tiny digits_mlp: 64 examples, a budget under 500 steps (1 step per call), no op determinism
# (process-wide and irreversible: it would outlive this test).
SMALL = ["digits_mlp", "--set", "data.max_train_examples=64", "--set", "train.steps=20",
         "--set", "train.deterministic=false"]


def test_cli_prints_the_table_knee_and_plot(tmp_path, capsys):
    out = tmp_path / "find_batch.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the data check's constant-pixel note
        assert _cli(*SMALL, "--batch-sizes", "8,16", "--out", str(out)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Batch-size finder for 'digits_mlp': batch sizes 8 to 16")
    assert all(line.startswith(find_batch.OUTPUT_PREFIXES) for line in lines), lines
    assert lines[1].split() == ["batch", "steps/call", "examples/s", "spread", "peak", "memory"]
    assert [line.split()[0] for line in lines[2:4]] == ["8", "16"]
    assert "Largest batch size that fits: 16." in lines
    assert imread(out).shape[0] > 100
    knee = next(line for line in lines if line.startswith("Knee:")).split()[3].rstrip(",")
    assert f"Try: toolkit train {' '.join(SMALL)} --set data.batch_size={knee}" in "\n".join(lines)


def test_cli_json_and_user_mistakes(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _cli(*SMALL, "--batch-sizes", "32", "--json", "--max-memory", "1TiB",
                    "--out", str(tmp_path / "b.png")) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recipe"] == "digits_mlp" and result["largest_fitting"] == 32
    assert result["max_memory_bytes"] == 2**40 and result["steps_per_execution"] == 1
    assert result["points"][0]["status"] == "fits"
    with pytest.raises(RecipeError, match="Cannot read the memory size '12 apples'"):
        _cli(*SMALL, "--max-memory", "12 apples")
    with pytest.raises(RecipeError, match="--batch-sizes must be increasing.*'64,a'"):
        _cli(*SMALL, "--batch-sizes", "64,a")
