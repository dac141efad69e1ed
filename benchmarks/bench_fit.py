"""toolkit.train.fit against plain Keras `model.fit`: same model, same data, same step count.

Run:  python benchmarks/bench_fit.py [--steps 4000] [--repeats 3] [--defaults] [--fast-only]

Configurations (each trains a fresh copy of the same MLP 40-128-128-10, Adam, batch 32, on
MNIST-1D-sized data, 4000 x 40 features, 10 classes, from the same endless pipeline):

- plain:          `model.fit(dataset, steps_per_epoch=steps, verbose=0)`, Keras defaults
                  (`steps_per_execution=1`, no XLA on CPU), no logging at all.
- plain_fast:     the same with the execution settings `toolkit.fit` chooses for this budget.
- toolkit:        `toolkit.train.fit(..., run_dir=...)` with its defaults: fast execution
                  settings, TensorBoard on four axes (`Axes`) and the progress bar.
- toolkit_plain:  `toolkit.train.fit` with Keras's execution settings and the same logging,
                  to isolate the cost of the logging and of the fit machinery.
- toolkit_bare:   `toolkit.train.fit` with its defaults but no logging (no run_dir, verbose=0).
- plain_fast and toolkit_plain are compared in steady state only.

Two tables: end to end on a fresh model (tracing and compilation included: what a user waits
for), and steady state (the same step count after a warm-up call on the same model) to isolate
per-step overheads. Each configuration runs `--repeats` times in interleaved order; medians of
wall time and of process CPU time are reported (CPU time is steadier on a shared machine).

`--defaults` also measures what `toolkit.train.fast_defaults` is based on: first-call time and
steady-state steps/s for steps_per_execution in {1, 64} x XLA off/on.
"""

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from toolkit.data import endless  # noqa: E402
from toolkit.train import Execution, Logging, fit  # noqa: E402
from toolkit.train.fast_defaults import (  # noqa: E402
    choose_jit_compile,
    choose_steps_per_execution,
)

BATCH = 32


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(4000, 40)).astype("float32"), rng.integers(0, 10, 4000)


def make_model(steps_per_execution=1, jit_compile=False):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((40,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


class Timer:
    """Wall and process CPU seconds (CPU time is steadier on a shared machine)."""

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def run_plain(data, steps, spe=1, jit=False, warmup=0):
    model = make_model(spe, jit)
    if warmup:
        model.fit(endless(data, BATCH).take(warmup), steps_per_epoch=warmup, verbose=0)
    with Timer() as timer:
        model.fit(endless(data, BATCH, start_step=warmup), steps_per_epoch=steps, verbose=0)
    return timer


def run_toolkit(data, steps, logging=True, warmup=0, **settings):
    model = make_model()
    settings = {"execution": Execution(**settings)} if settings else {}
    with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
        kwargs = dict(run_dir=run_dir if logging else None, verbose=1 if logging else 0)
        if warmup:
            fit(model, endless(data, BATCH), steps=warmup, **kwargs, **settings)
        with Timer() as timer:
            fit(model, endless(data, BATCH, start_step=warmup), steps=warmup + steps, **kwargs,
                **settings)
        return timer


def report(title, configs, steps, repeats):
    times = {name: [] for name in configs}
    for _ in range(repeats):
        for name, run in configs.items():
            times[name].append(run())
    wall = {name: statistics.median(t.wall for t in ts) for name, ts in times.items()}
    cpu = {name: statistics.median(t.cpu for t in ts) for name, ts in times.items()}
    print(title)
    for name in configs:
        print(f"  {name:14s} wall {wall[name]:6.2f} s ({steps / wall[name]:5.0f} steps/s)   "
              f"cpu {cpu[name]:6.2f} s   (wall runs: "
              f"{', '.join(f'{t.wall:.2f}' for t in times[name])})")
    return wall, cpu


def compare(steps, repeats, fast_only=False):
    data = make_data()
    spe, jit = choose_steps_per_execution(steps), choose_jit_compile(steps)
    print(f"{steps} steps, batch {BATCH}; toolkit's fast defaults for this budget: "
          f"steps_per_execution={spe}, jit_compile={jit}")
    if fast_only:
        return compare_fast(data, steps, repeats, spe, jit)
    wall, cpu = report("End to end, fresh model (tracing and compilation included):", {
        "plain": lambda: run_plain(data, steps),
        "toolkit": lambda: run_toolkit(data, steps),
    }, steps, repeats)
    print(f"  => toolkit.fit (fast defaults + logging) vs plain Keras defaults: "
          f"{wall['plain'] / wall['toolkit']:.2f}x throughput "
          f"(cpu {cpu['plain'] / cpu['toolkit']:.2f}x)")
    same = dict(steps_per_execution=spe, jit_compile=jit)
    keras_settings = dict(steps_per_execution=1, jit_compile=False)
    warm = 256
    wall, cpu = report(f"Steady state (after a {warm}-step warm-up call on the same model):", {
        "plain": lambda: run_plain(data, steps, warmup=warm),
        "toolkit_plain": lambda: run_toolkit(data, steps, warmup=warm, **keras_settings),
        "plain_fast": lambda: run_plain(data, steps, spe, jit, warmup=warm),
        "toolkit": lambda: run_toolkit(data, steps, warmup=warm, **same),
        "toolkit_bare": lambda: run_toolkit(data, steps, logging=False, warmup=warm, **same),
    }, steps, repeats)
    for a, b, what in [("toolkit", "plain_fast", "fit + logging, fast settings"),
                       ("toolkit", "toolkit_bare", "logging alone, fast settings"),
                       ("toolkit_plain", "plain", "fit + logging, Keras settings")]:
        print(f"  => {what:30s} ({a} vs {b}): wall {100 * (wall[a] / wall[b] - 1):+5.1f}%  "
              f"cpu {100 * (cpu[a] / cpu[b] - 1):+5.1f}%")


def compare_fast(data, steps, repeats, spe, jit):
    same = dict(steps_per_execution=spe, jit_compile=jit)
    wall, cpu = report("Steady state, fast settings only (after a 256-step warm-up call):", {
        "plain_fast": lambda: run_plain(data, steps, spe, jit, warmup=256),
        "toolkit": lambda: run_toolkit(data, steps, warmup=256, **same),
        "toolkit_bare": lambda: run_toolkit(data, steps, logging=False, warmup=256, **same),
    }, steps, repeats)
    for a, b in [("toolkit", "plain_fast"), ("toolkit", "toolkit_bare"),
                 ("toolkit_bare", "plain_fast")]:
        print(f"  => {a} vs {b}: wall {100 * (wall[a] / wall[b] - 1):+5.1f}%  "
              f"cpu {100 * (cpu[a] / cpu[b] - 1):+5.1f}%")


_HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_test_begin",
          "on_test_end", "on_epoch_end", "on_train_end")


def timed(cls):
    """A subclass of callback class `cls` that adds the seconds spent in its hooks to `spent`."""

    def wrap(name):
        def hook(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return getattr(cls, name)(self, *args, **kwargs)
            finally:
                timed.spent += time.perf_counter() - start
        return hook

    return type(f"Timed{cls.__name__}", (cls,), {name: wrap(name) for name in _HOOKS})


timed.spent = 0.0


def measure_logging_share(steps, repeats):
    """Seconds inside the logging callbacks' hooks / seconds of the whole `fit` call."""
    from toolkit.callbacks import Axes, Progress

    data = make_data()
    spe = choose_steps_per_execution(steps)
    every = Logging().resolve_every_steps(steps, spe)
    shares = []
    for _ in range(repeats):
        model = make_model()
        fit(model, endless(data, BATCH), steps=256, verbose=0,
            execution=Execution(steps_per_execution=spe))
        with tempfile.TemporaryDirectory() as run_dir, contextlib.redirect_stdout(io.StringIO()):
            callbacks = [timed(Axes)(run_dir, every_steps=every),
                         timed(Progress)(256 + steps, every_steps=every)]
            timed.spent = 0.0
            with Timer() as timer:
                fit(model, endless(data, BATCH, start_step=256), steps=256 + steps,
                    callbacks=callbacks, execution=Execution(steps_per_execution=spe))
        shares.append(timed.spent / timer.wall)
    print(f"Time inside Axes + Progress hooks ({steps} steps, steps_per_execution={spe}, a "
          f"point every {every} steps): {100 * statistics.median(shares):.2f}% of the fit call "
          f"(runs: {', '.join(f'{100 * x:.2f}%' for x in shares)})")


def measure_defaults(repeats):
    data = make_data()
    dataset = endless(data, BATCH)
    print("first call (64 steps, tracing + compile) and steady state (1280-step calls):")
    for spe, jit in [(1, False), (64, False), (1, True), (64, True)]:
        firsts, steadies = [], []
        for _ in range(repeats):
            model = make_model(spe, jit)
            start = time.perf_counter()
            model.fit(dataset.take(64), steps_per_epoch=64, verbose=0)
            firsts.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.fit(dataset.take(1280), steps_per_epoch=1280, verbose=0)
            steadies.append(1280 / (time.perf_counter() - start))
        print(f"  steps_per_execution={spe:2d} jit_compile={jit!s:5s}: first call "
              f"{statistics.median(firsts):5.2f} s, steady {statistics.median(steadies):6.0f} "
              f"steps/s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fast-only", action="store_true",
                        help="only the steady-state comparison at the fast settings")
    parser.add_argument("--defaults", action="store_true",
                        help="also measure the basis of the fast-default thresholds")
    args = parser.parse_args()
    if args.defaults:
        measure_defaults(args.repeats)
    measure_logging_share(args.steps, args.repeats)
    compare(args.steps, args.repeats, fast_only=args.fast_only)


if __name__ == "__main__":
    main()
