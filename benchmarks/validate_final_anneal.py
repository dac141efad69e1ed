"""Does S2.9's final anneal help the shipped recipes? Test accuracy with and without, over seeds.

Run:  python benchmarks/validate_final_anneal.py [--recipes mnist1d_cnn digits_mlp]
      [--seeds 0 1 2 3] [--fraction 0.1] [--factor 0.1]

For each recipe and seed it trains the recipe as shipped (Adam at a constant learning rate) and
with `optimizer.final_anneal_fraction` (the learning rate ramped down linearly to
`final_anneal_factor` times itself over that fraction of the budget's end), everything else
equal, and prints the test accuracy of both, their difference and its mean over seeds. The
toolkit turns the anneal on by default only if it measurably helps (see docs/batch_size.md).
"""

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from toolkit.recipe import load_recipe  # noqa: E402
from toolkit.recipe.run import run_recipe  # noqa: E402


def accuracy(recipe_name, seed, overrides, root):
    recipe = load_recipe(recipe_name, [f"train.seed={seed}", *overrides])
    run_dir = tempfile.mkdtemp(dir=root)
    return run_recipe(recipe, run_dir, verbose=0, plots=False).summary["eval"]["accuracy"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["mnist1d_cnn", "digits_mlp"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--factor", type=float, default=0.1)
    args = parser.parse_args()
    anneal = [f"optimizer.final_anneal_fraction={args.fraction}",
              f"optimizer.final_anneal_factor={args.factor}"]
    print(f"final anneal: last {args.fraction:.0%} of the budget, down to x{args.factor}")
    print("| recipe | seed | test accuracy, constant | with final anneal | difference (points) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as root:
        for name in args.recipes:
            differences = []
            for seed in args.seeds:
                plain = accuracy(name, seed, [], root)
                annealed = accuracy(name, seed, anneal, root)
                differences.append(100 * (annealed - plain))
                print(f"| {name} | {seed} | {100 * plain:.1f}% | {100 * annealed:.1f}% | "
                      f"{differences[-1]:+.1f} |", flush=True)
            spread = statistics.stdev(differences) if len(differences) > 1 else 0.0
            print(f"| {name} | mean | | | {statistics.mean(differences):+.2f} "
                  f"(sd {spread:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
