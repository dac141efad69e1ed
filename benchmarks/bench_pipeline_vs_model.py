"""Is the endless pipeline ever the bottleneck? Its throughput against a small model's appetite.

On MNIST-1D (4000 signals of length 40), measures examples/s of

- pipelines alone (drained inside TensorFlow with `Dataset.reduce`, no model):
  `endless` IID, `endless` + 1-D augmentation (shift, scale, noise), `mix` of two sources (two
  heads), a `ShardDirectory` of 8 `.npz` shards (gathered through `tf.numpy_function`);
- the model alone: the small 1-D conv net of the augmentation experiment (3 x Conv1D(32) + Dense),
  trained by `model.fit` on one batch repeated in memory (no input pipeline cost);
- the two together: `model.fit` on `endless` + augmentation.

The pipeline is not the bottleneck when its rate is well above the model's and "together" is
close to "model alone". Every measurement is the best of `--repeats` after a warm-up.

Run:
    python benchmarks/bench_pipeline_vs_model.py              # about a minute on 2 CPU cores
    python benchmarks/bench_pipeline_vs_model.py --batch-size 32 --steps 400
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from toolkit.data import ShardDirectory, augment, endless, load, mix, write_shard  # noqa: E402


def conv_net(length, num_classes, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((length,))
    x = keras.layers.Reshape((length, 1))(inputs)
    for _ in range(3):
        x = keras.layers.Conv1D(32, 5, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling1D()(x)  # keeps the net small and shift-tolerant
    x = keras.layers.Dense(128, activation="relu")(x)
    model = keras.Model(inputs, keras.layers.Dense(num_classes)(x))
    model.compile(keras.optimizers.Adam(1e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def signal_augmentation():
    return augment.compose(
        augment.random_shift(4), augment.random_scale(0.9, 1.1), augment.gaussian_noise(0.05)
    )


def pipeline_rate(dataset, batch_size, steps, repeats):
    dataset.take(20).reduce(np.int64(0), lambda count, _: count + 1)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dataset.take(steps).reduce(np.int64(0), lambda count, _: count + 1)
        best = min(best, time.perf_counter() - start)
    return steps * batch_size / best


def fit_rate(model, dataset, batch_size, steps, repeats):
    model.fit(dataset, steps_per_epoch=20, epochs=1, verbose=0)  # warm-up: tracing
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
        best = min(best, time.perf_counter() - start)
    return steps * batch_size / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200, help="batches per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    b, steps, repeats = args.batch_size, args.steps, args.repeats
    data = load("mnist1d")
    x, y = data.x_train, data.y_train
    rows = {}
    rows["endless IID"] = pipeline_rate(endless((x, y), b), b, steps * 5, repeats)
    rows["endless + augment"] = pipeline_rate(
        endless((x, y), b, augment=signal_augmentation()), b, steps * 5, repeats)
    regression = (x, x.mean(axis=1, keepdims=True))
    rows["mix (2 heads)"] = pipeline_rate(
        endless(mix({"a": (x, y), "b": regression}), b), b, steps * 5, repeats)
    with tempfile.TemporaryDirectory() as directory:
        for i, part in enumerate(np.array_split(np.arange(len(x)), 8)):
            write_shard(os.path.join(directory, f"part{i}.npz"), (x[part], y[part]))
        shards = ShardDirectory(directory, rescan_every_steps=100, min_age_seconds=0)
        rows["ShardDirectory (8 npz)"] = pipeline_rate(endless(shards, b), b, steps * 5, repeats)
    model = conv_net(x.shape[1], data.num_classes)
    one_batch = tf.data.Dataset.from_tensors((x[:b], y[:b])).repeat()
    model_rate = fit_rate(model, one_batch, b, steps, repeats)
    together = fit_rate(model, endless((x, y), b, augment=signal_augmentation()), b, steps, repeats)
    print(f"batch size {b}, {os.cpu_count()} CPU cores, examples/s (best of {repeats})\n")
    print("| pipeline | examples/s | x model's rate |")
    print("|---|---:|---:|")
    for name, rate in rows.items():
        print(f"| {name} | {rate:,.0f} | {rate / model_rate:.1f}x |")
    print(f"| model alone (one batch in memory) | {model_rate:,.0f} | 1.0x |")
    print(f"| model.fit on endless + augment | {together:,.0f} | {together / model_rate:.2f}x |")


if __name__ == "__main__":
    main()
