"""A tiny training run for the resume tests: `python resume_script.py RUN_DIR OUT.json`.

Env: TOOLKIT_TEST_SIGTERM_AT=<step> sends SIGTERM to itself when that step begins;
TOOLKIT_TEST_BLOCK_IN_SAVE=<n> prints "BLOCKED" and blocks inside the n-th checkpoint write,
before its manifest (so the test kills it there, with no timing window);
TOOLKIT_TEST_WRAP=1 wraps the endless pipeline as users do (`.map(...)`, `.prefetch(2)`,
`.with_options(...)`); the map multiplies by one, so the reference run needs no wrapping;
TOOLKIT_TEST_MIRRORED=1 splits the CPU into two logical devices and trains under a
`MirroredStrategy` over both (the same global batch of 16: 8 examples per replica).
"""

import json
import os
import signal
import sys
import threading

import keras
import numpy as np
import tensorflow as tf

from toolkit.callbacks import LossCurveDiagnosis
from toolkit.data import endless
from toolkit.errors import TrainingPreempted
from toolkit.checkpoint import files as checkpoint_files
from toolkit.train import Execution, Logging, fit


def main(run_dir, out):
    strategy = tf.distribute.get_strategy()
    if os.environ.get("TOOLKIT_TEST_MIRRORED"):
        (cpu,) = tf.config.list_physical_devices("CPU")
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32") + (x[:, 2] > 1).astype("int32")
    with strategy.scope():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dropout(0.1), keras.layers.Dense(3)])
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(True), metrics=["accuracy"])
    diagnosis = LossCurveDiagnosis(run_dir, every_steps=5, warn=False)
    callbacks = [diagnosis]
    sigterm_at = os.environ.get("TOOLKIT_TEST_SIGTERM_AT")
    if sigterm_at:
        def maybe_kill(batch, logs):
            if int(model.optimizer.iterations) == int(sigterm_at):
                signal.raise_signal(signal.SIGTERM)
        callbacks.append(keras.callbacks.LambdaCallback(on_train_batch_begin=maybe_kill))
    block_in_save = int(os.environ.get("TOOLKIT_TEST_BLOCK_IN_SAVE", "0"))
    if block_in_save:
        write_json, manifests = checkpoint_files._write_json, []

        def blocking_write_json(path, value):
            if os.path.basename(path) == checkpoint_files.MANIFEST_FILE:
                manifests.append(path)
                if len(manifests) == block_in_save:
                    # Inside the save: the bundle is written, the manifest and rename are not.
                    print(f"BLOCKED in save {block_in_save} at step {value['step']}", flush=True)
                    threading.Event().wait()  # Until the test's SIGKILL.
            return write_json(path, value)
        checkpoint_files._write_json = blocking_write_json
    data = endless((x, y), 16, seed=1)
    if os.environ.get("TOOLKIT_TEST_WRAP"):
        options = tf.data.Options()
        options.threading.private_threadpool_size = 2
        data = data.map(lambda x, y: (x * 1.0, y)).prefetch(2).with_options(options)
    try:
        history = fit(model, data, steps=120, eval_data=(x[:64], y[:64]), eval_every_steps=30,
                      run_dir=run_dir, callbacks=callbacks, verbose=0,
                      execution=Execution(steps_per_execution=1, jit_compile=False),
                      logging=Logging(checkpoint_every_steps=10))
    except TrainingPreempted as stopped:
        print(stopped, file=sys.stderr)
        return stopped.exit_code
    result = {
        "model": [np.asarray(v).tolist() for v in model.variables],
        "optimizer": [np.asarray(v).tolist() for v in model.optimizer.variables],
        "steps": history.steps, "examples": history.examples_seen, "history": history.history,
        "diagnosis": diagnosis.get_state(),
    }
    with open(out, "w") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
