"""`toolkit find-lr [RECIPE] [--set KEY=VALUE]... [--out PNG] [--json]`: the LR range test.

Runs `toolkit.probes.find_learning_rate` on the very model and training pipeline the recipe would
train (`toolkit.recipe.prepare.prepare_recipe`), prints the suggestion, the rule that chose it and
the `--set` line to train with it, and writes the loss-vs-learning-rate PNG. Exit status: 0 with a
suggestion, 1 when the curve gave none (the message says why), 2 for bad input.
"""

import argparse
from pathlib import Path

from toolkit.commands.common import add_recipe_arguments, load_recipe_from_args, print_json

__all__ = ["add"]

EXIT_NO_SUGGESTION = 1


def add(commands) -> None:
    """Adds the `find-lr` subcommand."""
    find_lr = commands.add_parser(
        "find-lr",
        help="suggest a learning rate for a recipe (LR range test)",
        description="Train the recipe's model for a short exponential sweep of the learning rate "
        "(1e-7 to 10 over 100 steps, stopping on divergence), suggest a learning rate from the "
        "smoothed loss curve and plot it. The model is left untouched; nothing is trained.",
    )
    add_recipe_arguments(find_lr)
    find_lr.add_argument(
        "--out", default=None, metavar="PNG",
        help="where to write the plot (default: runs/<recipe name>/find_lr.png)",
    )
    find_lr.add_argument("--json", action="store_true", help="print the result as JSON")
    find_lr.set_defaults(handler=_find_lr)


def _find_lr(args: argparse.Namespace) -> int:
    from toolkit.probes.lr_range import find_learning_rate
    from toolkit.recipe.prepare import prepare_recipe

    recipe = load_recipe_from_args(args)
    prepared = prepare_recipe(recipe)
    search = find_learning_rate(prepared.model, prepared.train_data(), seed=recipe.train.seed)
    path = search.plot(args.out or Path("runs") / recipe.name / "find_lr.png")
    suggestion = None if search.suggestion is None else f"{search.suggestion:.2g}"
    command = ["toolkit", "train", args.recipe or recipe.name, *sum(
        (["--set", override] for override in args.overrides), [])]
    if suggestion is not None:
        command += ["--set", f"optimizer.learning_rate={suggestion}"]
    if args.json:
        print_json({**search.to_dict(), "recipe": recipe.name, "plot": str(path),
                    "recipe_learning_rate": recipe.optimizer.learning_rate,
                    "command": " ".join(command) if suggestion is not None else None})
    else:
        print(f"Learning-rate range test of {recipe.name!r}: {len(search.losses)} steps; "
              f"stopped because {search.stopped_because}.")
        if suggestion is not None:
            print(f"Suggested learning rate: {suggestion} (the recipe has "
                  f"{recipe.optimizer.learning_rate:g}).")
        print(f"Rule: {search.rule}")
        print(f"Plot: {path}")
        if suggestion is not None:
            print(f"Train with it: {' '.join(command)}")
    return 0 if suggestion is not None else EXIT_NO_SUGGESTION
