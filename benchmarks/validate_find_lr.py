"""Validates the learning-rate range test's rule on the shipped recipes (not a test: minutes).

Two bars (issue 8):

(a) stability: over 5 seeds (`--set train.seed=N`: weights and batch order), the suggestion varies
    by less than 3x (max / min);
(b) usefulness: training the recipe at its suggested learning rate reaches at least its accuracy
    at the recipe's own learning rate minus 0.5 points, same seed, both runs made here.

Usage (from the repository root; ~4 minutes on the shared 2-core CPU machine):

    .venv/bin/python benchmarks/validate_find_lr.py
    .venv/bin/python benchmarks/validate_find_lr.py --recipes digits_mlp --train-seeds 0
"""

import argparse
import json
import tempfile
import time
import warnings

import numpy as np

from toolkit.probes.lr_range import MINIMUM_DIVISOR, find_learning_rate
from toolkit.recipe import load_recipe
from toolkit.recipe.prepare import prepare_recipe
from toolkit.recipe.run import run_recipe

MAX_SEED_RATIO = 3.0  # bar (a)
MAX_ACCURACY_DROP_POINTS = 0.5  # bar (b)


def sweep(name: str, seed: int) -> dict:
    """One range test of recipe `name` at `seed`: suggestion, minimum and seconds."""
    recipe = load_recipe(name, [f"train.seed={seed}"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the data check's findings, printed by `toolkit train`
        prepared = prepare_recipe(recipe)
    started = time.monotonic()
    search = find_learning_rate(prepared.model, prepared.train_data(), seed=seed)
    seconds = time.monotonic() - started
    lowest = int(np.argmin(search.smoothed_losses))
    return {"seed": seed, "suggestion": search.suggestion, "seconds": seconds,
            "at_minimum": search.learning_rates[lowest], "steps": len(search.losses)}


def accuracy(name: str, seed: int, learning_rate: float | None) -> float:
    """Test accuracy (%) of recipe `name` trained at `seed` and `learning_rate` (None: its own)."""
    overrides = [f"train.seed={seed}"]
    if learning_rate is not None:
        overrides.append(f"optimizer.learning_rate={learning_rate!r}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_recipe(load_recipe(name, overrides), tempfile.mkdtemp(), verbose=0)
    return 100 * result.summary["eval"]["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["digits_mlp", "mnist1d_cnn"])
    parser.add_argument("--seeds", type=int, default=5, help="sweep seeds 0..N-1")
    parser.add_argument("--train-seeds", type=int, nargs="*", default=[0, 1, 2],
                        help="seeds of the bar (b) training pairs")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    results = {}
    for name in args.recipes:  # every sweep first: `run_recipe` turns on op determinism
        results[name] = {"sweeps": [sweep(name, seed) for seed in range(args.seeds)]}
    for name in args.recipes:
        sweeps = results[name]["sweeps"]
        default_rate = load_recipe(name).optimizer.learning_rate
        pairs = []
        for seed in args.train_seeds:
            suggestion = sweeps[seed]["suggestion"]
            pairs.append({"seed": seed, "suggestion": suggestion,
                          "default": accuracy(name, seed, None),
                          "at_suggestion": accuracy(name, seed, float(f"{suggestion:.2g}"))})
        results[name].update(pairs=pairs, default_learning_rate=default_rate)

    print(f"\nRule: smoothed minimum / {MINIMUM_DIVISOR:g}\n")
    print("| recipe | recipe lr | suggestions (seeds 0-4) | max / min | sweep s |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        values = [s["suggestion"] for s in result["sweeps"]]
        ratio = max(values) / min(values)
        seconds = np.mean([s["seconds"] for s in result["sweeps"]])
        print(f"| {name} | {result['default_learning_rate']:g} | "
              f"{', '.join(f'{v:.2g}' for v in values)} | {ratio:.2f} "
              f"({'pass' if ratio < MAX_SEED_RATIO else 'FAIL'}) | {seconds:.1f} |")
    print("\n| recipe | seed | suggestion | accuracy at recipe lr | at suggestion | change |")
    print("|---|---|---|---|---|---|")
    for name, result in results.items():
        for pair in result["pairs"]:
            change = pair["at_suggestion"] - pair["default"]
            verdict = "pass" if change >= -MAX_ACCURACY_DROP_POINTS else "FAIL"
            print(f"| {name} | {pair['seed']} | {pair['suggestion']:.2g} | "
                  f"{pair['default']:.1f}% | {pair['at_suggestion']:.1f}% | "
                  f"{change:+.1f} ({verdict}) |")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)


if __name__ == "__main__":
    main()
