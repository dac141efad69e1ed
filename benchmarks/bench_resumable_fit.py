"""Cost of checkpointing inside `toolkit.train.fit` at its default interval.

Same model, data and budget, in one process, runs interleaved and repeated (medians):

- `no run_dir`: `fit` without a run directory (no logging, no checkpoints);
- `run_dir, final checkpoint only`: `fit(run_dir=...)` with `checkpoint_every_steps=steps`
  (TensorBoard logging, NaN guard and preemption handling, one checkpoint at the end);
- `run_dir, default checkpoints`: `fit(run_dir=...)` with its default checkpoint interval.

The cost of checkpointing is the third against the second; the cost of the whole resumable run
directory is the third against the first.

Run:
    python benchmarks/bench_resumable_fit.py                   # about 2 minutes on 2 CPU cores
    python benchmarks/bench_resumable_fit.py --steps 8000 --repeats 5
"""

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from toolkit.data import endless, load  # noqa: E402
from toolkit.models import mlp  # noqa: E402
from toolkit.train import Logging, fit  # noqa: E402

EVAL_EVERY_STEPS = 500


def _model(data):
    model = mlp((40,), data.num_classes, hidden_units=(128, 128), input_scaling="standardize",
                adapt_data=data.x_train, seed=0)
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def _time_fit(data, steps, run_dir, checkpoint_every_steps):
    model = _model(data)
    train = endless((data.x_train, data.y_train), batch_size=32, seed=0)
    kwargs = {} if run_dir is None else {"run_dir": run_dir}
    if checkpoint_every_steps is not None:
        kwargs["logging"] = Logging(checkpoint_every_steps=checkpoint_every_steps)
    start = time.perf_counter()
    fit(model, train, steps=steps, eval_data=(data.x_test, data.y_test),
        eval_every_steps=EVAL_EVERY_STEPS, verbose=0, **kwargs)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = load("mnist1d")
    every = Logging().resolve_checkpoint_every(args.steps, EVAL_EVERY_STEPS)
    variants = {
        "no run_dir": lambda d: _time_fit(data, args.steps, None, None),
        "run_dir, final checkpoint only": lambda d: _time_fit(data, args.steps, d, args.steps),
        f"run_dir, default checkpoints (every {every})": lambda d: _time_fit(
            data, args.steps, d, None),
    }
    _time_fit(data, 200, None, None)  # Warm up TensorFlow's one-off costs.
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            with tempfile.TemporaryDirectory() as run_dir:
                times[name].append(run(run_dir))
    medians = {name: statistics.median(values) for name, values in times.items()}
    names = list(variants)
    print(f"{args.steps} steps, MLP 40-128-128-10, batch 32, eval every {EVAL_EVERY_STEPS}; "
          f"median of {args.repeats}")
    for name in names:
        print(f"  {name:45s} {medians[name]:7.2f} s  ({args.steps / medians[name]:6.0f} steps/s)")
    base, final_only, default = (medians[name] for name in names)
    print(f"checkpointing at the default interval: {100 * (default / final_only - 1):+.1f}% "
          f"vs a final checkpoint only")
    print(f"whole resumable run directory:         {100 * (default / base - 1):+.1f}% "
          f"vs no run_dir")


if __name__ == "__main__":
    main()
