"""One worker of a two-worker cluster: `python multi_worker_script.py OUT.json` (TF_CONFIG set).

`tests/distribute/test_multi_worker.py` starts two of these on 127.0.0.1, each with its own
`TF_CONFIG` task. Each worker records, as JSON:

- `make_strategy`: the `StrategyError` `train.strategy = "multi_worker"` raises;
- `replicas`: the replicas of a `MultiWorkerMirroredStrategy` built from `TF_CONFIG` (both
  workers joined it);
- `check_strategy` and `toolkit_fit`: the errors `toolkit.distribute.check_strategy` and
  `toolkit.fit` raise for a model built under that strategy;
- `keras_fit`: the error plain `Model.fit` raises there (keras-team/keras#20585), the reason for
  the refusal. Once a Keras release trains here, that entry says so, and the refusal can go.
"""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

import toolkit
from toolkit.distribute import check_strategy, make_strategy
from toolkit.errors import StrategyError


def _error(call):
    """`[type name, first line of the message]` of what `call()` raises, or `None`."""
    try:
        call()
    except Exception as error:  # Recorded, not handled: the test asserts the type.
        return [type(error).__name__, str(error).splitlines()[0] if str(error) else ""]
    return None


def _model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main(out):
    result = {"make_strategy": _error(lambda: make_strategy("multi_worker"))}
    # The strategy a user could build themselves: blocks until both workers have joined.
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    result["replicas"] = strategy.num_replicas_in_sync
    result["check_strategy"] = _error(lambda: check_strategy(strategy))
    x = np.random.default_rng(0).normal(size=(128, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    with strategy.scope():
        model = _model()
    result["toolkit_fit"] = _error(
        lambda: toolkit.fit(model, (x, y), steps=4, batch_size=32, verbose=0))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(32)
    result["keras_fit"] = _error(lambda: model.fit(dataset, steps_per_epoch=4, verbose=0))
    with open(out, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main(sys.argv[1])
