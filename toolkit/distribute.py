"""Strategy selection (`tf.distribute`) and precision policy for a run.

`make_strategy(name)` turns the recipe key `train.strategy` into a `tf.distribute.Strategy`;
build and compile the model inside `strategy.scope()` and `toolkit.fit` does the rest in the
same scope (its callbacks, checkpoints and probes read variables in a strategy-safe way). The
batch size a pipeline yields is the **global** batch: Keras splits each batch across the
replicas, so the data position stays a pure function of `(seed, step)` whatever the number of
replicas.

- `"default"`: TensorFlow's default strategy (one device: the first GPU, or the CPU).
- `"mirrored"`: `MirroredStrategy` over the visible GPUs; without GPUs, over the logical CPU
  devices when there are several (`tf.config.set_logical_device_configuration`, as the tests
  do), else the one CPU.
- `"multi_worker"`: refused with a `StrategyError` (after `TF_CONFIG` is checked): Keras's
  `Model.fit` fails under `MultiWorkerMirroredStrategy` with two or more workers
  (keras-team/keras#20585, tensorflow/tensorflow#72388). Use `"mirrored"` on one machine.
- `"tpu"`: `TPUStrategy` on the TPU named by `TPU_NAME` or attached to this TPU VM.
- `"auto"`: a TPU if one is attached, else `mirrored` over several GPUs, else `default`.

A strategy that cannot start is a `StrategyError` naming the fix; `toolkit train` prints it as
one line and exits 2. `check_strategy(strategy)` refuses a strategy built elsewhere that Keras's
`fit` cannot train under (a multi-worker one).

Example:

>>> strategy = make_strategy("default")
>>> strategy.num_replicas_in_sync
1
>>> make_strategy("tpu")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
toolkit.errors.StrategyError: train.strategy = "tpu" needs a TPU, and none is attached ...
"""

import glob
import json
import os

import tensorflow as tf

from toolkit.errors import StrategyError

__all__ = ["STRATEGIES", "PRECISIONS", "check_strategy", "make_strategy", "set_precision"]

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
_MIRRORED = {}
# Keras 3 (3.15.1 with TF 2.21 measured, two workers on loopback) cannot `fit` under
# MultiWorkerMirroredStrategy: `_maybe_symbolic_build` passes the (x, y) batch to
# `strategy.reduce`, which takes no nest across workers ("Attempt to convert a value
# (PerReplica...)"), and `reduce_per_replica` then reduces the scalar metrics along axis 0
# ("Invalid reduction dimension 0 for input with 0 dimensions"). With both fixed, training runs.
_MULTI_WORKER_REFUSED = (
    'train.strategy = "multi_worker" is not supported: Keras {version} `Model.fit` fails under '
    "MultiWorkerMirroredStrategy with two or more workers (it reduces the input batch and the "
    "metrics across workers wrongly: keras-team/keras#20585, tensorflow/tensorflow#72388). Train "
    'on one machine with train.strategy = "mirrored" (every GPU of it) instead.'
)


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the `tf.distribute.Strategy` a run trains under.

    Args:
        name: One of `STRATEGIES` (see the module doc). Defaults to `"auto"`.

    Returns:
        The strategy. Build and compile the model inside its `scope()`.

    Raises:
        StrategyError: For an unknown name, a TPU that is not there, a multi-worker run without
            a valid `TF_CONFIG`, and for `"multi_worker"` itself (Keras cannot `fit` under it).
    """
    if name not in STRATEGIES:
        raise StrategyError(
            f"Unknown train.strategy {name!r}. Expected one of {', '.join(STRATEGIES)}. Use "
            f'"auto" to let the toolkit choose.'
        )
    if name == "auto":
        if _tpu_attached():
            return _tpu_strategy()
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = _mirrored_devices()
        key = tuple(devices or ())
        # One strategy per device set and process: two MirroredStrategy objects over the same
        # devices number their collective all-reduces alike, and their runs then abort with
        # "Shape mismatch in the collective instance".
        if key not in _MIRRORED:
            _MIRRORED[key] = tf.distribute.MirroredStrategy(devices)
        return _MIRRORED[key]
    if name == "multi_worker":
        # TF_CONFIG first: its mistakes stay worth fixing once Keras trains multi-worker. The
        # refusal comes before the strategy is built, which would open TF_CONFIG's port.
        _check_tf_config()
        raise StrategyError(_multi_worker_refused())
    return _tpu_strategy()


def check_strategy(strategy: tf.distribute.Strategy) -> None:
    """Refuses a strategy that Keras's `Model.fit` cannot train under.

    `toolkit.fit` trains through Keras's own `fit`, which fails under a
    `MultiWorkerMirroredStrategy` spanning two or more workers (keras-team/keras#20585,
    tensorflow/tensorflow#72388). One worker, `MirroredStrategy`, the default strategy and TPUs
    pass.

    Args:
        strategy: The strategy the model was built under (`model.distribute_strategy`).

    Raises:
        StrategyError: For a multi-worker `MultiWorkerMirroredStrategy`, naming the alternative.

    Example:

    >>> check_strategy(tf.distribute.get_strategy())
    >>> check_strategy(make_strategy("default"))
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        cluster = strategy.cluster_resolver.cluster_spec()
        tasks = sum(cluster.num_tasks(job) for job in ("chief", "worker") if job in cluster.jobs)
        if tasks > 1:
            raise StrategyError(_multi_worker_refused())


def _multi_worker_refused() -> str:
    import keras

    return _MULTI_WORKER_REFUSED.format(version=keras.version())


def set_precision(policy: str = "float32") -> None:
    """Sets Keras's global dtype policy (`train.precision`) before a model is built.

    Args:
        policy: One of `PRECISIONS`. `mixed_float16` computes in float16 with float32 weights
            and wraps optimizers in a `LossScaleOptimizer` at compile time; `mixed_bfloat16`
            needs no loss scaling. Defaults to `"float32"`.

    Raises:
        StrategyError: For an unknown policy.

    Example:

    >>> set_precision("float32")
    >>> import keras
    >>> keras.config.dtype_policy().name
    'float32'
    """
    import keras

    if policy not in PRECISIONS:
        raise StrategyError(
            f"Unknown train.precision {policy!r}. Expected one of {', '.join(PRECISIONS)}."
        )
    keras.config.set_dtype_policy(policy)


def _mirrored_devices():
    gpus = tf.config.list_logical_devices("GPU")
    if gpus:
        return [device.name for device in gpus]
    cpus = tf.config.list_logical_devices("CPU")
    return [device.name for device in cpus] if len(cpus) > 1 else None


def _tpu_attached() -> bool:
    # Never ask the GCE metadata server on an ordinary machine: it may hang without network.
    return bool(os.environ.get("TPU_NAME")) or bool(glob.glob("/dev/accel*")) or bool(
        glob.glob("/dev/vfio/[0-9]*"))


def _tpu_strategy() -> tf.distribute.Strategy:
    if not _tpu_attached():
        raise StrategyError(
            'train.strategy = "tpu" needs a TPU, and none is attached (no TPU_NAME, no '
            '/dev/accel*). Run on a TPU VM or set TPU_NAME, or use train.strategy = "auto".'
        )
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "local"))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        message = " ".join(str(error).split())
        raise StrategyError(
            f'train.strategy = "tpu" could not start the TPU ({message}). Check TPU_NAME, or '
            f'use train.strategy = "auto".'
        ) from None
    return tf.distribute.TPUStrategy(resolver)


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    fix = ('Set TF_CONFIG on every worker, e.g. {"cluster": {"worker": ["host1:12345", '
           '"host2:12345"]}, "task": {"type": "worker", "index": 0}} (docs/distribute.md).')
    if not raw:
        raise StrategyError(f'train.strategy = "multi_worker" needs TF_CONFIG. {fix}')
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise StrategyError(f"TF_CONFIG is not valid ({error!r}). {fix}") from None
    if task.get("type") not in ("worker", "chief") or not 0 <= index < len(workers) + 1:
        raise StrategyError(f"TF_CONFIG's task {task!r} is not one of its cluster's. {fix}")
