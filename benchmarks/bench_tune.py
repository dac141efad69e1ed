"""Hyperband on the default task at an equal optimizer-step budget: plain KerasTuner, and more.

Run:  python benchmarks/bench_tune.py [--seed 0] [--workdir DIR] [--quick]
      (the full setting takes 2-3 minutes on the shared 2-core CPU machine; --quick seconds)

The task is the default recipe, `toolkit/recipes/mnist1d_cnn.toml`: MNIST-1D
(`toolkit.data.load("mnist1d")`, 4000 train / 1000 test). The first 3500 training examples are
trained on and the last `validation_examples` (500) are held out as the validation split that
Hyperband ranks trials by (`val_accuracy`, max); the test split is used once, on the best trial.

The model is built as the recipe builds it (`toolkit.models.convnet`: input standardization
adapted on the 3500 training examples, 4 ReLU conv blocks of kernel 5 with max pooling, no
dense layer, a linear head), compiled with Adam and `SparseCategoricalCrossentropy(
from_logits=True)`. Search space: learning rate log-uniform in [1e-4, 1e-2] x conv width
{32, 64}, every block the same width (`filters=[w] * 4`).

An "epoch" is `steps_per_epoch` (300) optimizer steps of batch 64 drawn i.i.d. from the training
examples by `toolkit.data.endless(..., seed=seed)`. Each `fit` call starts that stream at its
first batch again, so a promoted trial re-sees the batches its first round saw.

Contenders (one row each; all on the same space, data and budget):

- `keras_tuner.Hyperband` (`plain_hyperband`): KerasTuner's own Hyperband, `max_epochs=9,
  factor=3, hyperband_iterations=1`. A promoted trial rebuilds its model and loads the weights of
  its parent's best epoch: the fresh optimizer has no variables yet, so Keras warns "Skipping
  variable loading for optimizer" and Adam's moments and step count start from zero. The rows
  count those warnings, and the optimizer steps actually taken (one per `on_train_batch_end`).

- `toolkit tune` (`toolkit_hyperband`): `search_recipe` on the shipped `mnist1d_cnn_tune`
  recipe with the same budgets, factor and oracle seed (so the same hyperparameters are
  sampled); promoted trials continue from their parent's last checkpoint, Adam's state included.

Add another contender by appending a function with the same signature and result keys to
`CONTENDERS`.

Measured (seed 0, shared 2-core CPU, load average 2-6): keras_tuner.Hyperband ran 23 trials
(brackets of 9 -> 3 -> 1, 5 -> 2 and 3 trials), 22,500 optimizer steps (75 epochs of 300), 6
optimizer-state-lost warnings (one per promotion), best val 96.0% / test 95.8% (learning rate
5.3e-3, width 64; the same in both runs), search 183-226 s wall, 206 s CPU.
"""

import argparse
import contextlib
import io
import os
import shutil
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import keras_tuner  # noqa: E402

from toolkit.data import endless, load  # noqa: E402
from toolkit.models import convnet  # noqa: E402

BATCH_SIZE = 64
LEARNING_RATE_RANGE = (1e-4, 1e-2)
WIDTHS = (32, 64)
NUM_BLOCKS = 4
# What Keras warns when weights saved with optimizer state are loaded into an unbuilt optimizer.
OPTIMIZER_STATE_LOST = "Skipping variable loading for optimizer"


def load_task(validation_examples=500):
    """The default recipe's data: train / validation (last rows of train) / test arrays."""
    data = load("mnist1d")
    cut = len(data.x_train) - validation_examples
    return {
        "train": (data.x_train[:cut], data.y_train[:cut]),
        "validation": (data.x_train[cut:], data.y_train[cut:]),
        "test": (data.x_test, data.y_test),
        "num_classes": int(data.num_classes),
    }


def build_model(learning_rate, width, task, seed):
    """The recipe's convnet at one point of the search space, compiled."""
    x_train = task["train"][0]
    model = convnet(x_train.shape[1:], task["num_classes"], filters=[width] * NUM_BLOCKS,
                    kernel_size=5, dense_units=[], input_scaling="standardize",
                    adapt_data=x_train, seed=seed)
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


class StepCounter(keras.callbacks.Callback):
    """Counts optimizer steps (train batches, with `steps_per_execution=1`) across trials."""

    def __init__(self):
        super().__init__()
        self.steps = 0

    def __deepcopy__(self, memo):
        # KerasTuner deep-copies the search callbacks for every trial; one shared count is wanted.
        return self

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


def plain_hyperband(workdir, *, seed=0, steps_per_epoch=300, max_epochs=9, factor=3,
                    validation_examples=500):
    """Runs `keras_tuner.Hyperband` on the default task and evaluates its best model on test.

    Args:
        workdir: Folder for KerasTuner's project (overwritten).
        seed: Seed of the tuner, the model initialization and the training batches.
        steps_per_epoch: Optimizer steps per Hyperband epoch.
        max_epochs: Hyperband's `max_epochs` (epochs of the longest trial).
        factor: Hyperband's reduction factor.
        validation_examples: Last training examples held out for validation.

    Returns:
        A dict: best_val_accuracy, best_test_accuracy, best_hyperparameters, trials,
        optimizer_steps, wall_seconds and cpu_seconds (process CPU time, steadier on a shared
        machine; both of the search alone) and warnings_seen (optimizer-state-lost warnings
        during the search).
    """
    keras.utils.set_random_seed(seed)
    task = load_task(validation_examples)

    def build(hp):
        learning_rate = hp.Float("learning_rate", *LEARNING_RATE_RANGE, sampling="log")
        width = hp.Choice("width", list(WIDTHS))
        return build_model(learning_rate, width, task, seed)

    tuner = keras_tuner.Hyperband(
        build, objective="val_accuracy", max_epochs=max_epochs, factor=factor,
        # KerasTuner takes seed 0 as "pick one at random": +1, as toolkit tune's tune.seed.
        hyperband_iterations=1, seed=seed + 1, directory=workdir, project_name="plain_hyperband",
        overwrite=True)
    counter = StepCounter()
    output = io.StringIO()
    start, start_cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(output):
        # "always": the default filter shows a warning once per code location, not per trial.
        warnings.simplefilter("always")
        tuner.search(endless(task["train"], BATCH_SIZE, seed=seed),
                     steps_per_epoch=steps_per_epoch, validation_data=task["validation"],
                     callbacks=[counter], verbose=0)
    wall_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - start_cpu
    warnings_seen = (sum(OPTIMIZER_STATE_LOST in str(w.message) for w in caught)
                     + output.getvalue().count(OPTIMIZER_STATE_LOST))
    best_trial = tuner.oracle.get_best_trials(1)[0]
    with warnings.catch_warnings():
        # Loading the best checkpoint for evaluation loses optimizer state too; it does not matter.
        warnings.filterwarnings("ignore", message=OPTIMIZER_STATE_LOST)
        best_model = tuner.load_model(best_trial)
    _, test_accuracy = best_model.evaluate(*task["test"], batch_size=256, verbose=0)
    return {
        "best_val_accuracy": float(best_trial.score),
        "best_test_accuracy": float(test_accuracy),
        "best_hyperparameters": {name: best_trial.hyperparameters.values[name]
                                 for name in ("learning_rate", "width")},
        "trials": len(tuner.oracle.trials),
        "optimizer_steps": counter.steps,
        "wall_seconds": wall_seconds,
        "cpu_seconds": cpu_seconds,
        "warnings_seen": warnings_seen,
    }


def toolkit_hyperband(workdir, *, seed=0, steps_per_epoch=300, max_epochs=9, factor=3,
                      validation_examples=500, overrides=()):
    """Runs `toolkit tune` on the shipped `mnist1d_cnn_tune` recipe with the same setting.

    The same space (learning rate x width, `model.filters = [w] * 4`), budgets (min_steps =
    `steps_per_epoch`, max_steps = `max_epochs` of them), factor and oracle seed, so KerasTuner's
    oracle samples the same hyperparameters. Differences: promoted trials continue from their
    parent's last checkpoint (Adam's state, data position); the validation split is
    `validation_examples` training examples drawn by a seeded permutation rather than the last
    ones; every trial is a full run directory (events, checkpoints, report).

    Args:
        workdir: The search directory (overwritten).
        seed: `train.seed` (weights, batches); the oracle's seed is `seed + 1`.
        steps_per_epoch: Steps of the shortest trials (`tune.min_steps`).
        max_epochs: `tune.max_steps` in units of `steps_per_epoch`.
        factor: Hyperband's reduction factor.
        validation_examples: `data.validation_examples`.
        overrides: More `--set` overrides of the recipe. Defaults to `()`.

    Returns:
        The keys of `plain_hyperband`'s result.
    """
    from toolkit.recipe import load_recipe
    from toolkit.tune import search_recipe

    recipe = load_recipe("mnist1d_cnn_tune", [
        f"train.seed={seed}", f"tune.seed={seed + 1}", f"tune.min_steps={steps_per_epoch}",
        f"tune.max_steps={steps_per_epoch * max_epochs}", f"tune.factor={factor}",
        f"train.steps={steps_per_epoch * max_epochs}", f"train.eval_every_steps={steps_per_epoch}",
        f"data.validation_examples={validation_examples}", *overrides])
    start, start_cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = search_recipe(recipe, workdir, fresh=True, verbose=0)
    best = result.best
    return {
        "best_val_accuracy": best.validation["val_accuracy"],
        "best_test_accuracy": best.test["test_accuracy"],
        "best_hyperparameters": {"learning_rate": best.values["optimizer.learning_rate"],
                                 "width": best.values["model.filters"]},
        "trials": len(result.trials),
        "optimizer_steps": result.optimizer_steps,
        "wall_seconds": time.perf_counter() - start,
        "cpu_seconds": time.process_time() - start_cpu,
        "warnings_seen": sum(OPTIMIZER_STATE_LOST in str(w.message) for w in caught),
    }


# name -> function(workdir, *, seed, steps_per_epoch, max_epochs, factor, validation_examples)
# returning the keys of `plain_hyperband`'s result.
CONTENDERS = {"keras_tuner.Hyperband": plain_hyperband, "toolkit tune": toolkit_hyperband}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None,
                        help="folder for the tuners' files (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=sorted(CONTENDERS), default=None,
                        help="run one contender")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="recipe overrides for the toolkit contender")
    parser.add_argument("--quick", action="store_true",
                        help="smoke setting: max_epochs=3, steps_per_epoch=20")
    args = parser.parse_args()
    setting = dict(seed=args.seed, steps_per_epoch=300, max_epochs=9, factor=3,
                   validation_examples=500)
    if args.quick:
        setting.update(steps_per_epoch=20, max_epochs=3)
    workdir = args.workdir or tempfile.mkdtemp(prefix="bench_tune_")
    print(f"MNIST-1D, convnet [w]*4, lr log-uniform {LEARNING_RATE_RANGE} x width {WIDTHS}, "
          f"batch {BATCH_SIZE}; {setting}")
    print("| contender | trials | optimizer steps | wall s | cpu s | best val acc | test acc | "
          "best hyperparameters | optimizer-state-lost warnings |")
    print("|---|---|---|---|---|---|---|---|---|")
    try:
        for name, run in CONTENDERS.items():
            if args.only not in (None, name):
                continue
            extra = {"overrides": args.overrides} if name == "toolkit tune" else {}
            result = run(os.path.join(workdir, name), **setting, **extra)
            best = ", ".join(f"{key}={value:.3g}" if isinstance(value, float)
                             else f"{key}={value}"
                             for key, value in result["best_hyperparameters"].items())
            print(f"| {name} | {result['trials']} | {result['optimizer_steps']:,} | "
                  f"{result['wall_seconds']:.0f} | {result['cpu_seconds']:.0f} | "
                  f"{100 * result['best_val_accuracy']:.1f}% | "
                  f"{100 * result['best_test_accuracy']:.1f}% | {best} | "
                  f"{result['warnings_seen']} |", flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
