"""One device against two replicas: `python equivalence_script.py OUT.json RUN_ROOT`.

Splits the CPU into two logical devices, then trains the same model (no dropout: replicas draw
their own dropout masks) from the same weights on the same global batches under the default
strategy and under `MirroredStrategy` over both (`toolkit.distribute.make_strategy`), and runs `toolkit train` with
`train.strategy` = `default` and `mirrored`. Writes the training-loss curves and the
recipe runs' test metrics.
"""

import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

import toolkit
from toolkit.cli import main as toolkit_main
from toolkit.distribute import make_strategy


def curve(strategy, run_dir):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 6)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32") + (x[:, 2] > 1).astype("int32")
    with strategy.scope():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(32, activation="relu"),
                                  keras.layers.Dense(3)])
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = toolkit.fit(model, toolkit.data.endless((x, y), 32, seed=1), steps=100,
                          eval_every_steps=10, run_dir=run_dir, verbose=0)
    return history.history["loss"]


def main(out, root):
    # Before TensorFlow initializes its devices (importing it does not).
    (cpu,) = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.experimental.enable_op_determinism()
    # The strategy `train.strategy = "mirrored"` uses: one per device set and process.
    mirrored = make_strategy("mirrored")
    result = {
        "replicas": mirrored.num_replicas_in_sync,
        "default": curve(tf.distribute.get_strategy(), os.path.join(root, "fit-default")),
        "mirrored": curve(mirrored, os.path.join(root, "fit-mirrored")),
    }
    for name in ("default", "mirrored"):
        run_dir = os.path.join(root, f"recipe-{name}")
        code = toolkit_main(["train", "digits_mlp", "--smoke", "--run-dir", run_dir,
                             "--set", f"train.strategy={name}"])
        with open(os.path.join(run_dir, "summary.json")) as file:
            summary = json.load(file)
        result[f"recipe-{name}"] = {"code": code, "eval": summary["eval"],
                                    "loss": summary["history"]["loss"]}
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
