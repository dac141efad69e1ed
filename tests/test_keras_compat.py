"""keras_compat: one test per assumption about Keras, TensorBoard and tf.data internals.

Each test pins, on the installed versions and with tiny real models, the behaviour one function
of `toolkit.keras_compat` relies on. A failure after an upgrade names the assumption that broke.
"""

import glob
import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from toolkit import keras_compat


def tiny_model(metrics=("mae",)):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.SGD(0.01), "mse", metrics=list(metrics))
    return model


def two_output_model():
    """Two named outputs, per-output metrics with a duplicated name, and a weighted metric."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,))
    a = keras.layers.Dense(1, name="a")(inputs)
    b = keras.layers.Dense(2, name="b")(inputs)
    model = keras.Model(inputs, {"a": a, "b": b})
    model.compile(
        keras.optimizers.Adam(0.01),
        loss={"a": "mse", "b": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
        metrics={"a": ["mae", "mae"], "b": ["accuracy"]},
        weighted_metrics={"a": ["mse"]},
    )
    return model


def two_output_batch(n=8):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype("float32")
    y = {"a": rng.normal(size=(n, 1)).astype("float32"), "b": rng.integers(0, 2, n)}
    return x, y


def data(n=16):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype("float32"), rng.normal(size=(n, 1)).astype("float32")


# Models and metrics -----------------------------------------------------------------------------


def test_loss_tracker_is_the_mean_fit_logs_as_loss_counting_examples():
    assert keras_compat.loss_tracker(keras.Sequential([keras.layers.Dense(1)])) is None
    model = tiny_model()
    x, y = data(12)
    model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    tracker = keras_compat.loss_tracker(model)
    assert isinstance(tracker, keras.metrics.Mean) and tracker.name == "loss"
    assert tracker in model.metrics
    # Axes measures the batch size from it: `count` sums the examples of each step.
    assert float(tracker.count) == 12.0
    assert float(tracker.result()) == pytest.approx(float(model.get_metrics_result()["loss"]))


def test_mean_metrics_keep_a_weighted_total_and_count():
    # MetricWindows' window means are differences of `total` and `count` (module doc).
    mean = keras.metrics.Mean()
    mean.update_state(2.0, sample_weight=4)
    mae = keras.metrics.MeanAbsoluteError()  # A MeanMetricWrapper, as compiled metrics are.
    mae.update_state([[2.0]], [[0.0]], sample_weight=[4.0])
    for metric in (mean, mae):
        assert isinstance(metric, keras.metrics.Mean)
        assert (float(metric.total), float(metric.count)) == (8.0, 4.0)


def test_compiled_metrics_are_built_at_the_first_step_and_by_build_compiled_metrics():
    model = two_output_model()
    assert not keras_compat.compiled_metrics_built(model)
    keras_compat.build_compiled_metrics(model, two_output_batch())
    assert keras_compat.compiled_metrics_built(model)
    assert int(model.optimizer.iterations) == 0  # No step was taken.
    trained = two_output_model()
    trained.fit(*two_output_batch(), batch_size=8, verbose=0)
    assert keras_compat.compiled_metrics_built(trained)


def test_metric_leaves_follow_the_names_and_order_keras_logs():
    model = two_output_model()
    assert [name for name, _ in keras_compat.metric_leaves(model)] == ["loss"]  # Unbuilt.
    model.fit(*two_output_batch(), batch_size=4, verbose=0)
    leaves = keras_compat.metric_leaves(model)
    logged = model.get_metrics_result()
    assert [name for name, _ in leaves] == list(logged)
    assert "a_mae_1" in logged  # Keras de-duplicates the second `mae` of output `a`.
    for name, metric in leaves:
        assert float(metric.result()) == pytest.approx(float(logged[name]))


def test_metrics_variables_order_is_the_same_for_two_builds_of_one_model():
    built = two_output_model()
    with pytest.raises(ValueError, match="not built yet.*build_compiled_metrics"):
        keras_compat.metrics_variables(built)
    keras_compat.build_compiled_metrics(built, two_output_batch())
    trained = two_output_model()
    trained.fit(*two_output_batch(), batch_size=4, verbose=0)

    def layout(model):
        return [(v.name, tuple(v.shape)) for v in keras_compat.metrics_variables(model)]

    assert layout(built) == layout(trained)
    assert len(layout(built)) == 2 * len(keras_compat.metric_leaves(trained))
    # Values saved from one model assign back by position into the other.
    for source, target in zip(keras_compat.metrics_variables(trained),
                              keras_compat.metrics_variables(built)):
        target.assign(source)
    assert built.get_metrics_result().keys() == trained.get_metrics_result().keys()


def test_changed_execution_settings_need_the_cached_functions_dropped():
    model = tiny_model()
    x, y = data(12)
    model.fit(x, y, batch_size=1, verbose=0, shuffle=False)
    cached = model.train_function
    assert cached is not None
    model.steps_per_execution = 4
    model.jit_compile = False
    assert model.train_function is cached  # Keras keeps the function traced for 1 step.
    keras_compat.reset_compiled_functions(model)
    assert (model.train_function, model.test_function, model.predict_function) == (None,) * 3
    begins = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: begins.append(b))
    model.fit(x, y, batch_size=1, verbose=0, shuffle=False, callbacks=[spy])
    assert int(model.optimizer.iterations) == 24
    assert begins == [0, 4, 8]


# Callbacks --------------------------------------------------------------------------------------


class ReadsBatchEnd(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        self.logs = logs


class ReadsOldBatchEnd(keras.callbacks.Callback):
    def on_batch_end(self, batch, logs=None):
        pass


def test_keras_marks_its_no_op_hooks_is_default():
    assert keras.callbacks.Callback.on_train_batch_end._is_default
    assert not keras_compat.reads_batch_end_logs([keras.callbacks.Callback()])
    assert not keras_compat.reads_batch_end_logs([keras.callbacks.History()])
    assert not keras_compat.reads_batch_end_logs(
        [keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None)]
    )
    assert keras_compat.reads_batch_end_logs(
        [keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: None)]
    )
    assert keras_compat.reads_batch_end_logs([ReadsBatchEnd()])
    assert keras_compat.reads_batch_end_logs([ReadsOldBatchEnd()])
    assert keras_compat.reads_batch_end_logs([keras.callbacks.ProgbarLogger()])


def test_callback_list_converts_batch_end_logs_to_floats_on_the_training_thread():
    # RunCallbacks skips the hook because of this: the conversion is a host sync.
    conversions = []

    class Value:
        def __float__(self):
            conversions.append(1)
            return 1.5

    silent = keras.callbacks.CallbackList([keras.callbacks.Callback()])
    silent.on_train_begin()
    silent.on_train_batch_end(0, {"loss": Value()})
    assert conversions == [1]  # Converted though no callback reads them (TensorFlow backend).
    reader = ReadsBatchEnd()
    callbacks = keras.callbacks.CallbackList([reader])
    callbacks.on_train_begin()
    callbacks.on_train_batch_end(0, {"loss": tf.constant(2.5)})
    assert reader.logs == {"loss": 2.5} and type(reader.logs["loss"]) is float


def test_fit_uses_a_given_callback_list_as_is():
    calls = []

    class Recording(keras.callbacks.CallbackList):
        def on_epoch_end(self, epoch, logs=None):
            calls.append(epoch)
            super().on_epoch_end(epoch, logs)

    model = tiny_model()
    callbacks = Recording([], add_history=True, model=model)
    history = model.fit(*data(8), batch_size=4, epochs=2, verbose=0, callbacks=callbacks)
    assert calls == [0, 1] and history.history["loss"]


def test_on_train_batch_begin_gets_the_first_step_of_each_execution():
    # LogPoints, NanGuard and Checkpoint count steps as `step at epoch begin + batch`.
    model = tiny_model()
    model.compile(keras.optimizers.SGD(0.01), "mse", steps_per_execution=4)
    begins = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_begin=lambda b, logs: begins.append(b))
    model.fit(*data(12), batch_size=1, epochs=2, verbose=0, callbacks=[spy])
    assert begins == [0, 4, 8, 0, 4, 8]


def test_early_stopping_keeps_its_counters_in_named_attributes():
    stopping = keras.callbacks.EarlyStopping(monitor="loss", patience=100)
    assert keras_compat.keras_callback_state(stopping) == {
        "wait": 0, "stopped_epoch": 0, "best": None, "best_epoch": 0,
    }
    model = tiny_model()
    model.fit(*data(8), batch_size=4, epochs=3, verbose=0, callbacks=[stopping])
    state = keras_compat.keras_callback_state(stopping)
    assert set(state) <= set(vars(stopping))
    assert state["best_epoch"] == 2 and isinstance(state["best"], float)
    json.dumps(state)
    fresh = keras.callbacks.EarlyStopping(monitor="loss", patience=100)
    keras_compat.set_keras_callback_state(fresh, state)
    assert keras_compat.keras_callback_state(fresh) == state
    fresh.on_train_begin()  # Why states are set after `on_train_begin`: it resets them.
    assert keras_compat.keras_callback_state(fresh)["best"] is None


def test_reduce_lr_on_plateau_keeps_its_counters_in_named_attributes():
    reduce = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=1, cooldown=2)
    model = tiny_model()
    model.fit(*data(8), batch_size=4, epochs=2, verbose=0, callbacks=[reduce])
    state = keras_compat.keras_callback_state(reduce)
    assert set(state) == {"wait", "cooldown_counter", "best"} <= set(vars(reduce))
    assert isinstance(state["best"], float)
    fresh = keras.callbacks.ReduceLROnPlateau(monitor="loss", patience=1, cooldown=2)
    fresh.on_train_begin()
    keras_compat.set_keras_callback_state(fresh, state)
    assert keras_compat.keras_callback_state(fresh) == state
    assert keras_compat.keras_callback_state(keras.callbacks.History()) is None


# The layer graph ---------------------------------------------------------------------------------


class Composite(keras.layers.Layer):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.inner = keras.layers.Dense(2)

    def call(self, inputs):
        return self.inner(inputs)


def test_sublayers_lists_the_layers_tracked_inside_a_layer():
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    composite = Composite()
    outer = keras.Sequential([keras.Input((3,)), inner, composite])
    found = keras_compat.sublayers(outer)
    assert inner in found and composite in found
    assert keras_compat.sublayers(composite) == [composite.inner]
    assert inner.layers[0] in keras_compat.sublayers(inner)


def test_outbound_operations_are_the_consumers_of_a_layer():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(2, use_bias=False)
    norm = keras.layers.BatchNormalization()
    keras.Model(inputs, norm(dense(inputs)))
    assert keras_compat.outbound_operations(dense) == [norm]
    assert keras_compat.outbound_operations(norm) == []


def test_keras_history_and_node_input_tensors_walk_back_a_functional_graph():
    inputs = keras.Input((3,))
    dense = keras.layers.Dense(4)
    reshape = keras.layers.Reshape((2, 2))
    model = keras.Model(inputs, reshape(dense(inputs)))
    assert keras_compat.keras_history(model.outputs[0]) == (reshape, 0, 0)
    (before,) = keras_compat.node_input_tensors(reshape, 0)
    assert keras_compat.keras_history(before)[0] is dense
    assert keras_compat.keras_history(np.zeros(3)) is None


# TensorBoard event files --------------------------------------------------------------------------


def test_scalar_summary_is_the_record_tf_summary_scalar_writes(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        tf.summary.scalar("loss", 0.5, step=3)
    writer.close()
    (path,) = glob.glob(str(tmp_path / "*tfevents*"))
    events = [tf.compat.v1.Event.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
    (theirs,) = [value for event in events for value in event.summary.value]
    (ours,) = keras_compat.scalar_summary({"loss": 0.5}).value
    assert ours.tag == theirs.tag
    assert ours.metadata.SerializeToString() == theirs.metadata.SerializeToString()
    assert ours.tensor.dtype == theirs.tensor.dtype
    assert not ours.tensor.tensor_shape.dim and not theirs.tensor.tensor_shape.dim
    assert ours.tensor.float_val[0] == float(tf.make_ndarray(theirs.tensor))


def test_open_event_writer_and_make_event_are_read_by_tensorboard(tmp_path):
    writer = keras_compat.open_event_writer(str(tmp_path), filename_suffix=".test")
    summary = keras_compat.scalar_summary({"loss": 0.25, "accuracy": 0.75})
    writer.add_event(keras_compat.make_event(summary, step=7, wall_time=123.0))
    writer.close()
    accumulator = event_accumulator.EventAccumulator(str(tmp_path))
    accumulator.Reload()
    assert sorted(accumulator.Tags()["tensors"]) == ["accuracy", "loss"]
    (event,) = accumulator.Tensors("loss")
    assert (event.step, event.wall_time, float(tf.make_ndarray(event.tensor_proto))) == (
        7, 123.0, 0.25,
    )


def test_text_summary_is_read_by_tensorboard_as_text(tmp_path):
    writer = keras_compat.open_event_writer(str(tmp_path), filename_suffix=".test")
    summary = keras_compat.text_summary("diagnosis", "**healthy** (step 5)")
    writer.add_event(keras_compat.make_event(summary, step=5, wall_time=1.0))
    writer.close()
    accumulator = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    accumulator.Reload()
    (tag,) = accumulator.Tags()["tensors"]
    assert accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "text"
    (event,) = accumulator.Tensors(tag)
    assert tf.make_ndarray(event.tensor_proto).item().decode() == "**healthy** (step 5)"


def test_load_events_reads_scalars_as_tensors_and_drops_a_truncated_record(tmp_path):
    writer = keras_compat.open_event_writer(str(tmp_path), filename_suffix=".test")
    writer.add_event(keras_compat.make_event(keras_compat.scalar_summary({"loss": 0.5}), 3, 1.0))
    writer.close()
    (path,) = glob.glob(str(tmp_path / "*tfevents*"))
    with open(path, "ab") as file:
        file.write(b"\x10\x00\x00")  # a writer killed inside its next record
    events = [e for e in keras_compat.load_events(path) if e.HasField("summary")]
    (event,) = events
    assert event.step == 3 and event.summary.value[0].tensor.float_val[0] == 0.5


# tf.data graphs ----------------------------------------------------------------------------------

_identity = tf.autograph.experimental.do_not_convert(lambda x: x)
_NOT_DETERMINISTIC = tf.data.Options()
_NOT_DETERMINISTIC.deterministic = False

# (transformation, class name, keeps order); toolkit.data.lineage relies on these names.
CHAINS = [
    (lambda d: d.map(_identity), "_MapDataset", True),
    (lambda d: d.map(_identity, num_parallel_calls=2), "_ParallelMapDataset", True),
    (lambda d: d.map(_identity, num_parallel_calls=2, deterministic=False),
     "_ParallelMapDataset", False),
    (lambda d: d.prefetch(1), "_PrefetchDataset", True),
    (lambda d: d.with_options(tf.data.Options()), "_OptionsDataset", True),
    (lambda d: d.with_options(_NOT_DETERMINISTIC), "_OptionsDataset", False),
    (lambda d: d.apply(tf.data.experimental.assert_cardinality(8)),
     "_AssertCardinalityDataset", True),
    (lambda d: d.shuffle(4, seed=0), "_ShuffleDataset", True),
    (lambda d: d.batch(2), "_BatchDataset", True),
    (lambda d: d.batch(2, num_parallel_calls=2), "_ParallelBatchDataset", True),
    (lambda d: d.padded_batch(2), "_PaddedBatchDataset", True),
    (lambda d: d.filter(lambda x: True), "_FilterDataset", True),
    (lambda d: d.skip(1), "_SkipDataset", True),
    (lambda d: d.take(1), "_TakeDataset", True),
    (lambda d: d.cache(), "CacheDataset", True),  # The one without a leading underscore.
    (lambda d: d.repeat(), "_RepeatDataset", True),
    (lambda d: d.shard(2, 0), "_ShardDataset", True),
    (lambda d: d.interleave(lambda x: tf.data.Dataset.range(2)), "_InterleaveDataset", True),
    (lambda d: d.flat_map(lambda x: tf.data.Dataset.range(2)), "_FlatMapDataset", True),
]


@pytest.mark.parametrize("transform, name, keeps_order", CHAINS, ids=[c[1] for c in CHAINS])
def test_dataset_inputs_op_name_and_order_of_one_transformation(transform, name, keeps_order):
    source = tf.data.Dataset.range(8)
    dataset = transform(source)
    assert keras_compat.dataset_op_name(dataset) == name
    assert keras_compat.dataset_op_name(source) == "_RangeDataset"
    (parent,) = keras_compat.dataset_inputs(dataset)
    assert parent is source
    assert keras_compat.dataset_inputs(source) == []
    assert keras_compat.dataset_keeps_order(dataset) is keeps_order


def test_dataset_inputs_of_zip_and_of_a_chain():
    first, second = tf.data.Dataset.range(4), tf.data.Dataset.range(3)
    zipped = tf.data.Dataset.zip((first, second))
    assert keras_compat.dataset_op_name(zipped) == "_ZipDataset"
    inputs = keras_compat.dataset_inputs(zipped)
    assert len(inputs) == 2 and inputs[0] is first and inputs[1] is second
    chain = zipped.map(lambda a, b: a).shuffle(2).batch(2).with_options(tf.data.Options())
    names = []
    node = chain.prefetch(1)
    while keras_compat.dataset_inputs(node):
        names.append(keras_compat.dataset_op_name(node))
        node = keras_compat.dataset_inputs(node)[0]
    assert names == [
        "_PrefetchDataset", "_OptionsDataset", "_BatchDataset", "_ShuffleDataset", "_MapDataset",
        "_ZipDataset",
    ]


def test_deterministic_options_below_a_parallel_map_decide_its_order():
    source = tf.data.Dataset.range(8).with_options(_NOT_DETERMINISTIC)
    assert not keras_compat.dataset_keeps_order(source.map(_identity, num_parallel_calls=2))
    assert keras_compat.dataset_keeps_order(
        source.map(_identity, num_parallel_calls=2, deterministic=True)
    )


def test_keras_tuner_failed_trial_tracebacks_switch_off_and_back():
    from keras_tuner.src import config

    before = config.DEBUG
    with keras_compat.keras_tuner_tracebacks_off():
        assert config.DEBUG is False
    assert config.DEBUG == before
