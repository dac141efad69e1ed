"""Cost of `toolkit.probes.sharpness` and the sharpness curve of a run, on the `digits_mlp` recipe.

Measures, on one fixed batch of `--batch-size` training examples:
- the first call (it traces the Hessian-vector product's `tf.function`) and the median of
  `--repeats` further calls reusing it (as `toolkit.callbacks.Sharpness` does), with the number
  of Hessian-vector products each needed;
- the training time per step of the same recipe (`toolkit.fit` without callbacks), to express a
  probe in training steps;
- the curve λ(step) next to 2/η over the recipe's budget (`Sharpness(every_steps=...)` in
  `toolkit.fit`), and the time of that run with the probes.

Run:
    python benchmarks/bench_sharpness.py                    # about 1 min on 2 CPU cores
    python benchmarks/bench_sharpness.py --every-steps 100 --batch-size 512
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import toolkit  # noqa: E402
from toolkit.callbacks.sharpness import Sharpness  # noqa: E402
from toolkit.probes.sharpness import HessianVectorProduct, sharpness  # noqa: E402
from toolkit.recipe import load_recipe  # noqa: E402
from toolkit.recipe.prepare import prepare_recipe  # noqa: E402


def _probe_batch(prepared, batch_size: int):
    x, y = next(iter(prepared.train_data(batch_size=batch_size, seed=12345)))[:2]
    return x.numpy(), y.numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="digits_mlp")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--every-steps", type=int, default=250)
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    steps = recipe.train.steps

    prepared = prepare_recipe(recipe)
    batch = _probe_batch(prepared, args.batch_size)
    model = prepared.model
    print(f"{args.recipe}: {model.count_params():,} parameters, probe batch {args.batch_size}")
    start = time.perf_counter()
    product = HessianVectorProduct(model)
    first = sharpness(model, batch, hessian_vector_product=product)
    first_seconds = time.perf_counter() - start
    seconds, iterations = [], []
    for seed in range(args.repeats):
        start = time.perf_counter()
        result = sharpness(model, batch, seed=seed, hessian_vector_product=product)
        seconds.append(time.perf_counter() - start)
        iterations.append(result.iterations)
    median = statistics.median(seconds)
    print(f"first call (tracing included): {first_seconds:.2f} s, {first.iterations} products, "
          f"lambda = {first.eigenvalue:.4g}")
    print(f"later calls: median {median:.3f} s over {args.repeats} seeds, "
          f"{min(iterations)}-{max(iterations)} products, "
          f"{1000 * median / statistics.median(iterations):.1f} ms per product")

    plain = prepare_recipe(recipe)
    start = time.perf_counter()
    toolkit.fit(plain.model, plain.train_data(), steps=steps, verbose=0)
    step_seconds = (time.perf_counter() - start) / steps
    print(f"training: {1000 * step_seconds:.2f} ms per step (batch {recipe.data.batch_size}); "
          f"one probe = {median / step_seconds:.0f} training steps")

    probed = prepare_recipe(recipe)
    callback = Sharpness(_probe_batch(probed, args.batch_size), every_steps=args.every_steps)
    start = time.perf_counter()
    toolkit.fit(probed.model, probed.train_data(), steps=steps, callbacks=[callback], verbose=0)
    with_probes = time.perf_counter() - start
    print(f"run of {steps} steps with a probe every {args.every_steps}: {with_probes:.1f} s "
          f"vs {step_seconds * steps:.1f} s without")
    print("step   lambda_max   2/eta   lambda*eta/2")
    for step, eigenvalue, threshold in callback.history:
        print(f"{step:5d} {eigenvalue:11.4g} {threshold:7.4g} {eigenvalue / threshold:10.3g}")


if __name__ == "__main__":
    main()
