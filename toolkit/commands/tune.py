"""`toolkit tune [RECIPE] [--set KEY=VALUE]... [--run-dir DIR] [--fresh] [--json]`."""

import argparse
import sys

from toolkit.commands.common import add_recipe_arguments, load_recipe_from_args, print_json

__all__ = ["add"]

DEFAULT_RECIPE = "mnist1d_cnn_tune"


def add(commands) -> None:
    """Adds the `tune` subcommand."""
    tune = commands.add_parser(
        "tune",
        help=f"search a recipe's [tune] space with KerasTuner (default: {DEFAULT_RECIPE})",
        description="Search the [tune.space] of a recipe with KerasTuner's oracles (hyperband, "
        "random, bayesian) on budgets in optimizer steps. Every trial is a full run directory "
        "under the search directory; Hyperband's promoted trials continue from their parent's "
        "last checkpoint. Trials are ranked on the validation split (data.validation_examples); "
        "the test split is evaluated once per trial. Running the same command again resumes "
        "the search.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="[tune] keys: tuner, objective, direction, max_trials, max_steps, min_steps, "
        "factor, hyperband_iterations, seed and the [tune.space] entries; see toolkit train "
        "--help for their help, and docs/tuning.md.",
    )
    add_recipe_arguments(tune)
    tune.add_argument(
        "--run-dir", default=None,
        help="search directory (default: runs/<recipe name>/search)",
    )
    tune.add_argument(
        "--fresh", action="store_true",
        help="delete the search directory's previous search and start over",
    )
    tune.add_argument("--json", action="store_true", help="print the result as JSON")
    tune.set_defaults(handler=_tune)


def _tune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from toolkit.tune import search_recipe

    args.recipe = args.recipe or DEFAULT_RECIPE
    recipe = load_recipe_from_args(args)
    search_dir = Path(args.run_dir or Path("runs") / recipe.name / "search")
    result = search_recipe(recipe, search_dir, fresh=args.fresh, verbose=0 if args.json else 1)
    if args.json:
        print_json({
            "search_dir": str(result.search_dir), "objective": result.objective,
            "direction": result.direction, "optimizer_steps": result.optimizer_steps,
            "wall_seconds": result.wall_seconds, "worker": result.worker,
            "failed_trials": result.failed,
            "trials": [{"trial_id": t.trial_id, "run_dir": str(t.run_dir), "values": t.values,
                        "steps": t.steps, "validation": t.validation, "test": t.test,
                        "parent": t.parent} for t in result.trials],
        })
        return 0
    if result.worker is not None:
        ran = ", ".join(sorted(trial.trial_id for trial in result.trials)) or "none"
        print(f"Worker {result.worker} of the distributed search of {recipe.name!r} is done: "
              f"ran trials {ran} ({result.optimizer_steps} optimizer steps, "
              f"{result.wall_seconds:.1f} s). The chief writes {result.search_dir}/search.json "
              f"and prints the best trial once every worker is done.")
        return 0
    if not result.trials:
        print(f"toolkit: no trial of the search finished: {len(result.failed)} diverged "
              f"({', '.join(result.failed)}). Narrow the search space and rerun.",
              file=sys.stderr)
        return 1
    best = result.best
    print(f"Finished the search of {recipe.name!r}: {len(result.trials)} trials, "
          f"{result.optimizer_steps} optimizer steps, {result.wall_seconds:.1f} s.")
    print(f"Best trial: {best.trial_id} ({best.steps} steps, by {result.objective}, "
          f"{result.direction})")
    for key, value in best.values.items():
        print(f"    {key} = {value}")
    print("Validation metrics: " + ", ".join(f"{k[4:]} {v:.4g}" for k, v in best.validation.items()))
    print("Test metrics: " + ", ".join(f"{k[5:]} {v:.4g}" for k, v in best.test.items()))
    if result.failed:
        print(f"Failed trials (diverged): {', '.join(result.failed)}")
    print(f"Best run directory: {best.run_dir}")
    print(f"Search directory: {result.search_dir} (search.json lists every trial)")
    print(f"TensorBoard: tensorboard --logdir {result.search_dir} (HParams tab)")
    print(f"Compare: toolkit compare {result.search_dir}")
    return 0
