"""Overhead of `toolkit.callbacks.GradientNoiseScale` at its default interval, and the noise
scale it measures, on the `digits_mlp` recipe.

Each repeat prepares the recipe afresh (same seed, same untrained model) and times
`toolkit.fit(model, data, steps=...)` without and with the callback, interleaved so that the
machine's load drifts over both alike; the best of `--repeats` of each is compared. The time
with the callback includes tracing its `tf.function` at the first probe, as a user's run does.
Time to prepare the recipe is not included.

Run:
    python benchmarks/bench_gradient_noise_scale.py               # about 1 min on 2 CPU cores
    python benchmarks/bench_gradient_noise_scale.py --every-steps 100 --repeats 5
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import toolkit  # noqa: E402
from toolkit.callbacks.gradient_noise_scale import (  # noqa: E402
    DEFAULT_EVERY_STEPS, DEFAULT_NUM_BATCHES, GradientNoiseScale)
from toolkit.recipe import load_recipe  # noqa: E402
from toolkit.recipe.prepare import prepare_recipe  # noqa: E402


def _run(recipe, steps: int, noise_args=None):
    prepared = prepare_recipe(recipe)
    callbacks = []
    if noise_args is not None:
        source = prepared.inputs.train.tensors  # (x, y) arrays of the training split
        callbacks = [GradientNoiseScale(tuple(t.numpy() for t in source),
                                        batch_size=recipe.data.batch_size, **noise_args)]
    start = time.perf_counter()
    toolkit.fit(prepared.model, prepared.train_data(), steps=steps, callbacks=callbacks,
                verbose=0)
    return time.perf_counter() - start, (callbacks[0] if callbacks else None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits_mlp")
    parser.add_argument("--steps", type=int, default=None, help="defaults to the recipe's")
    parser.add_argument("--every-steps", type=int, default=DEFAULT_EVERY_STEPS)
    parser.add_argument("--num-batches", type=int, default=DEFAULT_NUM_BATCHES)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    steps = args.steps or recipe.train.steps
    noise_args = {"every_steps": args.every_steps, "num_batches": args.num_batches}
    plain, probed, noise = [], [], None
    for _ in range(args.repeats):
        plain.append(_run(recipe, steps)[0])
        seconds, noise = _run(recipe, steps, noise_args)
        probed.append(seconds)
    base, with_noise = min(plain), min(probed)
    print(f"recipe {args.recipe}: {steps} steps at batch {recipe.data.batch_size}, probe "
          f"{args.num_batches} x {recipe.data.batch_size} examples every {args.every_steps} "
          f"steps ({len(noise.history)} probes)")
    print(f"plain fit        best of {args.repeats}: {base:.2f} s  "
          f"(all: {', '.join(f'{s:.2f}' for s in plain)})")
    print(f"with the probe   best of {args.repeats}: {with_noise:.2f} s  "
          f"(all: {', '.join(f'{s:.2f}' for s in probed)})")
    print(f"overhead: {100 * (with_noise / base - 1):+.1f}% (ratio {with_noise / base:.3f})")
    print("noise scale by step: " + ", ".join(
        f"{h['step']}: {h['simple_noise_scale']:.0f}" if h["simple_noise_scale"] is not None
        else f"{h['step']}: -" for h in noise.history))
    print(noise.summary())


if __name__ == "__main__":
    main()
