"""`toolkit train [RECIPE] [--set KEY=VALUE]... [--run-dir DIR] [--smoke] [--fresh] [--wait S]`."""

import argparse
import textwrap
from pathlib import Path

from toolkit.commands.common import add_recipe_arguments, load_recipe_from_args

__all__ = ["add"]


def _keys_epilog() -> str:
    """Lists every recipe key with its default and help, straight from the schema."""
    from toolkit.recipe.dump import format_value
    from toolkit.recipe.keys import iter_keys

    lines = ["recipe keys (--set KEY=VALUE; VALUE is TOML, a bare word is a string):"]
    for info in iter_keys():
        lines.append(f"  {info.key} = {format_value(info.default)}")
        lines += textwrap.wrap(info.help, width=90, initial_indent=" " * 6,
                               subsequent_indent=" " * 6)
    lines.append("  [tune] keys are read by toolkit tune only (docs/tuning.md).")
    return "\n".join(lines)


def add(commands) -> None:
    """Adds the `train` subcommand."""
    train = commands.add_parser(
        "train",
        help="train a recipe (default: mnist1d_cnn)",
        description="Train a recipe and write its run directory (recipe.toml, TensorBoard "
        "events, model.keras, report.md, summary.json). Running the same command again on the "
        "same run directory continues the run.",
        epilog=_keys_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_arguments(train)
    train.add_argument(
        "--run-dir", default=None,
        help="run directory (default: runs/<recipe name>/default, or .../smoke with --smoke)",
    )
    train.add_argument(
        "--smoke", action="store_true",
        help="shrink every budget (steps, evaluation, data) to check a recipe in seconds",
    )
    train.add_argument(
        "--fresh", action="store_true",
        help="delete the run directory's previous run and start from step 0",
    )
    train.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS",
        help="if another process trains in the run directory, wait up to SECONDS for it to "
        "finish (default: stop at once with exit status 2)",
    )
    train.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from toolkit.recipe.run import default_run_dir, run_recipe, smoke_recipe

    recipe = load_recipe_from_args(args)
    if args.smoke:
        recipe = smoke_recipe(recipe)
    run_dir = args.run_dir or default_run_dir(recipe, smoke=args.smoke)
    result = run_recipe(recipe, run_dir, fresh=args.fresh, wait_seconds=args.wait)
    summary = result.summary
    metrics = ", ".join(f"{key} {value:.4g}" for key, value in summary["eval"].items())
    print(f"Finished {recipe.name!r} at step {summary['steps']} "
          f"({summary['examples_seen']} examples, {summary['wall_seconds']:.1f} s).")
    if summary.get("validation"):
        held_out = ", ".join(f"{key} {value:.4g}" for key, value in summary["validation"].items())
        print(f"Validation metrics: {held_out}")
    print(f"Test metrics: {metrics}")
    for finding in summary.get("diagnosis", []):
        print(f"Diagnosis: {finding['code']} (step {finding['step']}): {finding['message']}")
        print(f"    {finding['action']}")
    if summary.get("gradient_noise"):
        print(f"Batch size: {summary['gradient_noise']['summary']}")
    if summary.get("sharpness"):
        sharp = summary["sharpness"]
        print(f"Sharpness: top Hessian eigenvalue {sharp['eigenvalue']:.4g} at step "
              f"{sharp['step']}, 2/learning rate = {sharp['threshold']:.4g}")
    print(f"Run directory: {result.run_dir}")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir}")
    if summary.get("plots"):
        names = ", ".join(Path(path).name for path in summary["plots"])
        print(f"Plots: {result.run_dir / 'plots'} ({names})")
    return 0
