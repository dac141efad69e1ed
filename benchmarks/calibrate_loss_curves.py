"""Calibration runs of the loss-curve diagnosis: the recipes at their default learning rate,
1000x below and 100x above (and recipes that overfit or are healthy), trained as `toolkit train`
trains them, with the curve `LossCurveDiagnosis` recorded.

    python benchmarks/calibrate_loss_curves.py [--write tests/callbacks/data/loss_curves.json]

Prints one line per run: the findings, test accuracy and the numbers behind them. With
`--write`, stores the curves (steps, losses, evaluation losses) and the expected codes as the
test fixture of `tests/callbacks/test_loss_curve_diagnosis.py`. Takes 5-10 minutes on 2 cores.
"""

import argparse
import json
import sys
import tempfile
import time

import toolkit  # noqa: F401  (quiet TensorFlow start-up)
from toolkit.callbacks import LossCurveDiagnosis
from toolkit.recipe import load_recipe
from toolkit.recipe.prepare import prepare_recipe
from toolkit.train import Logging, fit

# (recipe, label, overrides, codes a correct diagnosis gives)
RUNS = [
    ("mnist1d_cnn", "default", [], ["generalization-gap"]),
    ("mnist1d_cnn", "lr/1000", ["optimizer.learning_rate=5e-6"], ["learning-rate-too-low"]),
    ("mnist1d_cnn", "lr*100", ["optimizer.learning_rate=0.5"],
     ["learning-rate-too-high", "diverged"]),
    ("digits_mlp", "default", [], ["generalization-gap"]),
    ("digits_mlp", "lr/1000", ["optimizer.learning_rate=1e-6"], ["learning-rate-too-low"]),
    ("digits_mlp", "lr*100", ["optimizer.learning_rate=0.1"],
     ["learning-rate-too-high", "diverged"]),
    ("mnist1d_mlp", "default", [], ["overfitting"]),
    ("heavy_tailed_regression", "default", [], ["healthy"]),
    ("mnist1d_cnn_augmented", "default", [], ["healthy"]),
]


def run(name, overrides):
    recipe = load_recipe(name, overrides + ["train.deterministic=false"])
    prepared = prepare_recipe(recipe)
    diagnosis = LossCurveDiagnosis(every_steps=recipe.train.log_every_steps or None, warn=False)
    with tempfile.TemporaryDirectory() as run_dir:
        fit(prepared.model, prepared.train_data(), steps=recipe.train.steps,
            eval_data=prepared.inputs.eval_data, eval_every_steps=recipe.train.eval_every_steps,
            run_dir=run_dir, logging=Logging(every_steps=recipe.train.log_every_steps or None),
            callbacks=[diagnosis], verbose=0)
    metrics = prepared.inputs.evaluate(prepared.model, batch_size=256)
    return diagnosis, metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", metavar="JSON", help="store the curves as the test fixture")
    args = parser.parse_args(argv)
    curves = {}
    for name, label, overrides, expected in RUNS:
        started = time.monotonic()
        diagnosis, metrics = run(name, overrides)
        state = diagnosis.get_state()
        codes = [f.code for f in diagnosis.findings]
        verdict = "ok" if any(code in expected for code in codes) else "WRONG"
        metric = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
        print(f"{name:24s} {label:8s} {verdict:5s} {codes} ({metric}; "
              f"{time.monotonic() - started:.0f} s)")
        for finding in diagnosis.findings:
            print(f"    {finding.line()}")
        curves[f"{name} {label}"] = {
            "steps": state["steps"], "losses": state["losses"],
            "eval_steps": state["eval_steps"], "eval_losses": state["eval_losses"],
            "expected": expected, "found": codes,
        }
        sys.stdout.flush()
    if args.write:
        with open(args.write, "w") as file:
            json.dump(curves, file, indent=1)
            file.write("\n")


if __name__ == "__main__":
    main()
