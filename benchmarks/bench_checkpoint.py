"""Cost of resumability: checkpointing during training, saving, and restart-to-first-step time.

Measures, on the same model and data in the same process:

1. Training time of `model.fit` for `--steps` steps with no callbacks, with
   `toolkit.callbacks.Checkpoint` at its default interval (1000 steps), and with the full
   resumable stack (`Checkpoint` + `NanGuard` at its default interval of 100 steps +
   `Preemption`). Runs are interleaved and repeated; the median is reported with the overhead
   relative to no callbacks.
2. One synchronous `Checkpointer.save` and one `restore` of that model, and of a ~120 MB model
   (sync save, time the training loop blocks on an async save, restore).
3. Restart-to-first-step: wall time from launching a fresh Python process to the end of its
   first training step, starting fresh versus resuming from a checkpoint (TensorFlow import,
   model build, restore, tracing, one step).

Run:
    python benchmarks/bench_checkpoint.py                 # a few minutes on 2 CPU cores
    python benchmarks/bench_checkpoint.py --steps 10000 --repeats 5
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from toolkit.callbacks.checkpoint import Checkpoint  # noqa: E402
from toolkit.callbacks.nan_guard import NanGuard  # noqa: E402
from toolkit.data.endless import endless  # noqa: E402
from toolkit.checkpoint.checkpointer import Checkpointer  # noqa: E402
from toolkit.callbacks.preemption import Preemption  # noqa: E402

FIRST_STEP_SCRIPT = """
import os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras, numpy as np
imported = time.time()
from toolkit.checkpoint.restore import restore
from toolkit.data.endless import endless
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
                          keras.layers.Dense(256, activation="relu"), keras.layers.Dense(10)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
start = time.perf_counter()
step = restore(model, sys.argv[1]) if sys.argv[1] != "-" else 0
restore_seconds = time.perf_counter() - start
x = np.random.default_rng(0).normal(size=(4096, 784)).astype("float32")
y = np.random.default_rng(1).integers(0, 10, 4096)
class First(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        print(time.time(), step, imported, restore_seconds, flush=True)
        self.model.stop_training = True
model.fit(endless((x, y), 128, start_step=step), steps_per_epoch=10, verbose=0,
          callbacks=[First()])
"""


def mlp(width=256, depth=2, inputs=784):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((inputs,))]
    layers += [keras.layers.Dense(width, activation="relu") for _ in range(depth)]
    model = keras.Sequential(layers + [keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


HOOKS = ("on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_epoch_end",
         "on_train_end")


def timed(callbacks, spent):
    """Wraps each callback's hooks to add the seconds spent inside them to `spent[0]`."""
    for callback in callbacks:
        for name in HOOKS:
            hook = getattr(callback, name)

            def wrapper(*args, hook=hook, **kwargs):
                start = time.perf_counter()
                try:
                    return hook(*args, **kwargs)
                finally:
                    spent[0] += time.perf_counter() - start

            setattr(callback, name, wrapper)
    return callbacks


def training_overhead(steps, repeats, directory):
    x = np.random.default_rng(0).normal(size=(4096, 784)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, 4096)
    model = mlp()
    data = endless((x, y), 128)
    model.fit(data, steps_per_epoch=20, verbose=0)  # Trace once.
    checkpointer = Checkpointer(directory, model=model)
    stacks = {
        "none": lambda: [],
        "checkpoint": lambda: [Checkpoint(checkpointer)],
        "full_stack": lambda: [
            NanGuard(checkpointer), Checkpoint(checkpointer), Preemption(checkpointer)
        ],
    }
    wall = {name: [] for name in stacks}
    cpu = {name: [] for name in stacks}
    inside = {name: [] for name in stacks}
    for _ in range(repeats):
        for name, make in stacks.items():  # Interleaved: load changes hit every stack alike.
            spent = [0.0]
            callbacks = timed(make(), spent)
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(data, steps_per_epoch=steps, verbose=0, callbacks=callbacks)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
            inside[name].append(spent[0])
    base_wall, base_cpu = statistics.median(wall["none"]), statistics.median(cpu["none"])
    print(f"\n1. model.fit, {steps} steps per run, MLP 784-256-256-10 "
          f"({model.count_params():,} parameters), batch 128, median of {repeats} interleaved:")
    print("   stack        wall s   vs none   CPU s   vs none   inside callbacks")
    for name in stacks:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        share = 100 * statistics.median(s / t for s, t in zip(inside[name], wall[name]))
        print(f"   {name:<11} {w:7.2f} {100 * (w - base_wall) / base_wall:+7.1f}%  {c:7.2f} "
              f"{100 * (c - base_cpu) / base_cpu:+7.1f}%   {share:5.2f}% of wall time")
    saves = sum(len(v) for k, v in wall.items() if k != "none") * steps // 1000
    print(f"   about {saves} checkpoints written (every 1000 steps and at each fit's end)")


def save_and_restore(label, model, directory, repeats=3):
    model.optimizer.build(model.trainable_variables)
    sync = Checkpointer(os.path.join(directory, "sync"), model=model)
    async_ = Checkpointer(os.path.join(directory, "async"), model=model, async_save=True)
    saves, blocks, restores = [], [], []
    for i in range(repeats):
        model.optimizer.iterations.assign(i + 1)
        start = time.perf_counter()
        path = sync.save()
        saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        async_.save()
        blocks.append(time.perf_counter() - start)
        async_.wait()
        start = time.perf_counter()
        sync.restore()
        restores.append(time.perf_counter() - start)
    size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
    print(f"   {label}: {size / 1e6:6.1f} MB  save {min(saves):.3f} s  "
          f"async save blocks {min(blocks):.3f} s  restore {min(restores):.3f} s")


def first_step_seconds(directory, repeats):
    script = os.path.join(directory, "first_step.py")
    with open(script, "w") as file:
        file.write(FIRST_STEP_SCRIPT)
    ckpt = os.path.join(directory, "resume")
    model = mlp()
    model.fit(endless((np.zeros((8, 784), "float32"), np.zeros(8, "int64")), 8),
              steps_per_epoch=3, verbose=0, callbacks=[Checkpoint(ckpt)])
    print(f"\n3. restart to end of first step (new process, median of {repeats}):")
    for label, arg in (("fresh", "-"), ("resumed", ckpt)):
        total, imports, restores = [], [], []
        for _ in range(repeats):
            start = time.time()
            out = subprocess.run([sys.executable, script, arg], capture_output=True, text=True,
                                 check=True).stdout.split()
            assert int(out[1]) == (0 if arg == "-" else 3), out
            total.append(float(out[0]) - start)
            imports.append(float(out[2]) - start)
            restores.append(float(out[3]))
        print(f"   {label:<8} {statistics.median(total):6.2f} s in all: importing TensorFlow and "
              f"Keras {statistics.median(imports):5.2f} s, restore "
              f"{statistics.median(restores):5.3f} s, the rest is build, tracing, one step")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        training_overhead(args.steps, args.repeats, os.path.join(directory, "overhead"))
        print("\n2. one checkpoint (best of 3):")
        save_and_restore("MLP 784-256-256-10", mlp(), os.path.join(directory, "small"))
        save_and_restore("MLP 2048-2048-2048-10", mlp(2048, 2, 2048),
                         os.path.join(directory, "large"))
        first_step_seconds(directory, args.repeats)


if __name__ == "__main__":
    main()
