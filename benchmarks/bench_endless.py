"""Throughput of `toolkit.data.endless` against the usual tf.data input pipeline (no model).

Compares examples/s of

- usual:   `from_tensor_slices((x, y)).shuffle(n).batch(b, drop_remainder=True).repeat()
            .prefetch(AUTOTUNE)`
- iid:     `endless((x, y), b, sampling="iid")`
- passes:  `endless((x, y), b, sampling="passes")`

on the same in-memory arrays, for a few dataset shapes and batch sizes. Each pipeline is drained
inside TensorFlow (`Dataset.reduce`), as Keras's compiled train step drains it, so Python
iteration overhead is not counted. Every measurement is the best of `--repeats` runs after a
warm-up. Prints one row per case with the ratios endless / usual.

Run:
    python benchmarks/bench_endless.py            # about a minute on 2 CPU cores
    python benchmarks/bench_endless.py --examples 2000000 --repeats 5
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from toolkit.data import endless  # noqa: E402

CASES = (
    # (name, number of examples, feature shape)
    ("mnist1d-like 4000x40", 4000, (40,)),
    ("mnist-like 60000x784", 60000, (784,)),
)
BATCH_SIZES = (32, 256)


def usual(x, y, batch_size, seed):
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    dataset = dataset.shuffle(len(x), seed=seed)  # shuffle before batch: per-example order
    dataset = dataset.batch(batch_size, drop_remainder=True)  # static shapes for the model
    dataset = dataset.repeat()  # after shuffle, so every pass is reshuffled
    return dataset.prefetch(tf.data.AUTOTUNE)


def examples_per_second(dataset, batch_size, num_batches, repeats):
    dataset.take(20).reduce(np.int64(0), lambda count, _: count + 1)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        dataset.take(num_batches).reduce(np.int64(0), lambda count, _: count + 1)
        best = min(best, time.perf_counter() - start)
    return num_batches * batch_size / best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=400_000, help="examples per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per pipeline")
    args = parser.parse_args()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; examples/s, best of "
          f"{args.repeats}, {args.examples} examples each")
    header = f"{'data':<22}{'batch':>6}{'usual':>12}{'iid':>12}{'passes':>12}{'iid/usual':>11}{'passes/usual':>14}"
    print(header)
    rng = np.random.default_rng(0)
    for name, num_examples, shape in CASES:
        x = rng.normal(size=(num_examples,) + shape).astype(np.float32)
        y = rng.integers(0, 10, size=num_examples).astype(np.int64)
        for batch_size in BATCH_SIZES:
            num_batches = max(1, args.examples // batch_size)
            rates = [
                examples_per_second(pipeline, batch_size, num_batches, args.repeats)
                for pipeline in (
                    usual(x, y, batch_size, seed=0),
                    endless((x, y), batch_size, seed=0, sampling="iid"),
                    endless((x, y), batch_size, seed=0, sampling="passes"),
                )
            ]
            print(f"{name:<22}{batch_size:>6}{rates[0]:>12,.0f}{rates[1]:>12,.0f}{rates[2]:>12,.0f}"
                  f"{rates[1] / rates[0]:>10.2f}x{rates[2] / rates[0]:>13.2f}x", flush=True)


if __name__ == "__main__":
    main()
