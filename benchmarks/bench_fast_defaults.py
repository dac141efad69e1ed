"""toolkit.fit's default execution settings against the fastest plain-Keras setting we can find.

Run:  python benchmarks/bench_fast_defaults.py [--steps 1000 4000 20000] [--models mlp convnet]
          [--repeats 2] [--typical-max-steps 4000] [--full-grid] [--quick]

Recorded in docs/benchmarks.md ("Fast defaults against the fastest Keras setting") with
`--typical-max-steps 4000`: 42 minutes on the shared 2-core CPU machine; `--quick` takes about
a minute.

For each model and step budget, every contender trains a fresh model (new object, same seed,
same initial weights) on batches of 64 from `toolkit.data.endless`, and is timed from before
its `fit` call to after it returns: tracing and XLA compilation included, what a user waits for.

- toolkit:  `toolkit.fit(model, endless((x, y), 64, seed=0), steps=N, run_dir=tmp, verbose=0)`
            with its defaults: execution settings chosen by `toolkit.train.fast_defaults`,
            TensorBoard on four axes, checkpoints, `NanGuard`, `Preemption`.
- keras spe=S xla=J:  plain `model.fit(endless(...).take(N), steps_per_epoch=N, epochs=1,
            verbose=0)` compiled with `steps_per_execution=S, jit_compile=J`, no callbacks, for
            S in {1, 16, 64, 256} x J in {False, True}. The data is cut at N batches so that
            every setting trains exactly N steps (on an endless dataset Keras runs whole
            executions: 1000 steps at S=256 would train 1024).
- toolkit xla=on/off:  the same with the other XLA choice (`execution=Execution(jit_compile=
            ...)`), all else equal: what a different default would give.
- typical:  Keras's defaults (`steps_per_execution=1`, no XLA on CPU) with
            `TensorBoard(update_freq="batch")` and `BackupAndRestore`: what a user writes.

Models:

- mlp:      784-256-256-10 (ReLU, plain `keras.layers.Dense`), 60,000 x 784 random float32.
- convnet:  `toolkit.models.convnet((40,), 10)` with its defaults (three 1-D conv blocks of 32
            filters, kernel 5, max pooling, a 128-unit dense block, standardized input adapted
            on the data), on MNIST-1D-sized random data, 4000 x 40.
Both: 10 classes, Adam 1e-3, sparse cross-entropy from logits, accuracy metric.

Contenders run interleaved within each repeat (alternating order), best of `--repeats`. A
contender more than 1.5x slower than the fastest one in the first repeat, by wall time and by
process CPU time, is not repeated (its one time is shown with `*`). Budgets above 4000 steps run
only the 3-4 fastest Keras settings of the previous budget (the three fastest, plus the fastest
of the other XLA setting if they share one); pass `--full-grid` to run all. The typical-user
line runs up to `--typical-max-steps`.

Per model it also measures the XLA trade-off at steps_per_execution=64: the first call (64
steps, tracing + compilation) and steady-state steps/s (a further 2048-step call on the same
model) without and with XLA, and the break-even budget = extra compile seconds / seconds saved
per step.

`/proc/loadavg` is printed at start and end: on a shared machine, compare only ratios.
"""

import argparse
import gc
import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import toolkit  # noqa: E402
from toolkit.data import endless  # noqa: E402
from toolkit.train.options import Execution  # noqa: E402

# Plain `Model.fit` warns that its default `shuffle=True` does nothing for a dataset.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")

BATCH = 64
GRID = [(spe, jit) for spe in (1, 16, 64, 256) for jit in (False, True)]
QUICK_GRID = [(16, False)]
PRUNE_FACTOR = 1.5
RESTRICT_ABOVE_STEPS = 4000
FIRST_STEPS, STEADY_STEPS = 64, 2048
MODEL_TITLES = {
    "mlp": "MLP 784-256-256-10 on 60,000 x 784 random examples",
    "convnet": "toolkit.models.convnet((40,), 10) on 4,000 x 40 random examples",
}


def make_data(name):
    rng = np.random.default_rng(0)
    shape = (60_000, 784) if name == "mlp" else (4_000, 40)
    return rng.normal(size=shape).astype("float32"), rng.integers(0, 10, shape[0])


def make_model(name, data, steps_per_execution=1, jit_compile=False):
    """A fresh, compiled model; the same initial weights every time."""
    keras.backend.clear_session()
    gc.collect()
    keras.utils.set_random_seed(0)
    if name == "mlp":
        model = keras.Sequential([
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(10),
        ])
    else:
        model = toolkit.models.convnet((40,), 10, adapt_data=data[0], seed=0)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model


def timed_fit(model, steps, train):
    """`(wall, cpu)` seconds `train()` takes; checks that it trained exactly `steps` steps.

    Process CPU time is the steadier second view on a shared machine: it leaves out the time
    other jobs hold the cores.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    train()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    trained = int(model.optimizer.iterations)
    if trained != steps:
        raise RuntimeError(f"{model.name} trained {trained} steps, expected {steps}.")
    return wall, cpu


def run_toolkit(name, data, steps, execution=None):
    model = make_model(name, data)
    with tempfile.TemporaryDirectory() as run_dir:
        return timed_fit(model, steps, lambda: toolkit.fit(
            model, endless(data, BATCH, seed=0), steps=steps, run_dir=run_dir,
            execution=execution, verbose=0))


def run_keras(name, data, steps, spe, jit):
    model = make_model(name, data, spe, jit)
    return timed_fit(model, steps, lambda: model.fit(
        endless(data, BATCH, seed=0).take(steps), steps_per_epoch=steps, epochs=1, verbose=0))


def run_typical(name, data, steps):
    model = make_model(name, data)
    with tempfile.TemporaryDirectory() as work_dir:
        callbacks = [
            keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"), update_freq="batch"),
            keras.callbacks.BackupAndRestore(os.path.join(work_dir, "backup")),
        ]
        return timed_fit(model, steps, lambda: model.fit(
            endless(data, BATCH, seed=0).take(steps), steps_per_epoch=steps, epochs=1,
            callbacks=callbacks, verbose=0))


def keras_label(spe, jit):
    return f"keras spe={spe} xla={'on' if jit else 'off'}"


def measure_budget(name, data, steps, settings, repeats, typical):
    """Best-of-repeats seconds per contender (interleaved; slow ones run once)."""
    contenders = {"toolkit": lambda: run_toolkit(name, data, steps)}
    # toolkit with the other XLA choice: what a different default would give, all else equal.
    _, jit = Execution().resolve(steps, None)
    contenders[f"toolkit xla={'off' if jit else 'on'}"] = lambda: run_toolkit(
        name, data, steps, Execution(jit_compile=not jit))
    for spe, jit in settings:
        contenders[keras_label(spe, jit)] = (
            lambda spe=spe, jit=jit: run_keras(name, data, steps, spe, jit))
    if typical:
        contenders["typical"] = lambda: run_typical(name, data, steps)
    times = {label: [] for label in contenders}
    order = list(contenders)
    for repeat in range(repeats):
        if repeat == 1:
            # Slow by both clocks: a load spike alone (wall only) does not prune a contender.
            fastest = [min(times[label][0][k] for label in order) for k in (0, 1)]
            order = [label for label in order if label == "toolkit" or any(
                times[label][0][k] <= PRUNE_FACTOR * fastest[k] for k in (0, 1))]
        for label in order if repeat % 2 == 0 else reversed(order):
            times[label].append(contenders[label]())
    return times


def best(runs):
    """Best wall and best CPU seconds of `(wall, cpu)` runs."""
    return min(wall for wall, _ in runs), min(cpu for _, cpu in runs)


def print_grid(steps, times, spe, jit):
    bests = {label: best(runs) for label, runs in times.items()}
    toolkit_wall, toolkit_cpu = bests["toolkit"]
    print(f"\n{steps} steps (toolkit chose steps_per_execution={spe}, jit_compile={jit}); "
          f"best of runs, tracing and compilation included:")
    for label in sorted(bests, key=bests.get):
        wall, cpu = bests[label]
        runs = ", ".join(f"{w:.2f}" for w, _ in times[label])
        mark = "*" if len(times[label]) == 1 and len(times["toolkit"]) > 1 else " "
        print(f"  {label:22s} wall {wall:7.2f}{mark}s ({wall / toolkit_wall:.3f}x toolkit)  "
              f"cpu {cpu:7.2f} s ({cpu / toolkit_cpu:.3f}x)  wall runs: {runs}")


def choose_settings(previous, count=3):
    """The `count` fastest Keras settings of `previous`, plus the fastest of the other XLA
    setting when they all share one."""
    ranked = sorted((best(runs)[0], setting) for setting, runs in previous.items())
    chosen = [setting for _, setting in ranked[:count]]
    if len({jit for _, jit in chosen}) == 1:
        other = [setting for _, setting in ranked if setting[1] != chosen[0][1]]
        chosen += other[:1]
    return chosen


def measure_xla(name, data, repeats, first_steps, steady_steps):
    """First-call seconds and steady steps/s at spe=64, XLA off/on, interleaved, best of."""
    first = {False: [], True: []}
    rate = {False: [], True: []}
    for _ in range(repeats):
        for jit in (False, True):
            model = make_model(name, data, 64, jit)
            dataset = endless(data, BATCH, seed=0)
            start = time.perf_counter()
            model.fit(dataset.take(first_steps), steps_per_epoch=first_steps, verbose=0)
            first[jit].append(time.perf_counter() - start)
            start = time.perf_counter()
            model.fit(dataset.take(steady_steps), steps_per_epoch=steady_steps, verbose=0)
            rate[jit].append(steady_steps / (time.perf_counter() - start))
    first = {jit: min(ts) for jit, ts in first.items()}
    rate = {jit: max(rs) for jit, rs in rate.items()}
    # Compile overhead: the first call less its steps at the steady rate.
    overhead = {jit: first[jit] - first_steps / rate[jit] for jit in first}
    extra = overhead[True] - overhead[False]
    saved = 1 / rate[False] - 1 / rate[True]
    print(f"\nXLA trade-off at steps_per_execution=64 (first call of {first_steps} steps, then "
          f"{steady_steps} steps on the same model; best of {repeats}):")
    for jit in (False, True):
        print(f"  xla={'on ' if jit else 'off'}: first call ({first_steps} steps) "
              f"{first[jit]:6.2f} s, steady {rate[jit]:6.0f} steps/s "
              f"({1000 / rate[jit]:.2f} ms/step), compile overhead {overhead[jit]:5.2f} s")
    if saved > 0:
        print(f"  => XLA costs {extra:+.2f} s of compilation and saves {1000 * saved:.3f} "
              f"ms/step ({100 * (rate[True] / rate[False] - 1):+.0f}% steps/s): break-even "
              f"at {extra / saved:,.0f} steps")
    else:
        print(f"  => XLA costs {extra:+.2f} s of compilation and is "
              f"{100 * (1 - rate[True] / rate[False]):.0f}% slower per step: it never pays off")
    return extra, saved


def loadavg():
    try:
        with open("/proc/loadavg") as file:
            return " ".join(file.read().split()[:3])
    except OSError:
        return "unknown"


def benchmark_model(name, args):
    data = make_data(name)
    # Untimed warm-up: the process's first graph pays one-time TensorFlow setup.
    run_keras(name, data, 8, 1, False)
    print(f"\n=== {MODEL_TITLES[name]}, batch {BATCH}, Adam; load average "
          f"{loadavg()} ===")
    xla = measure_xla(name, data, args.xla_repeats, args.first_steps, args.steady_steps)
    rows, previous = [], None
    for steps in args.steps:
        settings = args.grid
        if previous is not None and steps > RESTRICT_ABOVE_STEPS and not args.full_grid:
            settings = choose_settings(previous)
        typical = args.typical_max_steps is None or steps <= args.typical_max_steps
        times = measure_budget(name, data, steps, settings, args.repeats, typical)
        spe, jit = Execution().resolve(steps, None)
        print_grid(steps, times, spe, jit)
        previous = {setting: times[keras_label(*setting)] for setting in settings}
        fastest = min(previous, key=lambda setting: best(previous[setting])[0])
        fastest_cpu = min(best(runs)[1] for runs in previous.values())
        rows.append((steps, best(times["toolkit"]), spe, jit, fastest,
                     best(previous[fastest])[0], fastest_cpu,
                     best(times["typical"])[0] if typical else None))
    print(f"\n{MODEL_TITLES[name]}: wall s, best of {args.repeats}, compile included; "
          f"load average now {loadavg()}")
    print("  budget | toolkit s (spe, xla) | fastest Keras s (spe, xla) | toolkit/fastest "
          "| cpu toolkit/fastest | typical-user s")
    for steps, (tk, tk_cpu), spe, jit, (kspe, kjit), ks, ks_cpu, typ in rows:
        typical = f"{typ:6.2f} ({typ / tk:.2f}x)" if typ is not None else "not run"
        print(f"  {steps:6d} | {tk:6.2f} ({spe:3d}, {'on ' if jit else 'off'})     | "
              f"{ks:6.2f} ({kspe:3d}, {'on ' if kjit else 'off'})           | {tk / ks:15.3f} "
              f"| {tk_cpu / ks_cpu:19.3f} | {typical}")
    return rows, xla


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 4000, 20000])
    parser.add_argument("--models", nargs="+", choices=sorted(MODEL_TITLES),
                        default=["mlp", "convnet"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--full-grid", action="store_true",
                        help="run every Keras setting at every budget")
    parser.add_argument("--typical-max-steps", type=int, default=None,
                        help="largest budget to run the typical-user line at (default: all)")
    parser.add_argument("--xla-repeats", type=int, default=3,
                        help="repeats of the XLA trade-off measurement")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in about a minute: 100 steps, 1 Keras setting, 1 repeat")
    args = parser.parse_args()
    args.grid, args.first_steps, args.steady_steps = GRID, FIRST_STEPS, STEADY_STEPS
    if args.quick:
        args.steps, args.repeats, args.xla_repeats, args.grid = [100], 1, 1, QUICK_GRID
        args.first_steps, args.steady_steps = 16, 64
    print(f"bench_fast_defaults: steps {args.steps}, models {args.models}, repeats "
          f"{args.repeats}; Keras {keras.__version__}; {os.cpu_count()} CPUs; load average "
          f"{loadavg()}")
    for name in args.models:
        benchmark_model(name, args)
    print(f"\nload average at the end: {loadavg()}")


if __name__ == "__main__":
    main()
