"""Arguments shared by the subcommands that act on a recipe (`train`, `find-lr`, `doctor`, ...)."""

import argparse
import json
import sys
from typing import Any

__all__ = ["add_recipe_arguments", "load_recipe_from_args", "print_json"]


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds `RECIPE` (optional, default `mnist1d_cnn`) and the repeatable `--set KEY=VALUE`."""
    parser.add_argument(
        "recipe", nargs="?", default=None,
        help="a recipe .toml file or a shipped recipe's name (default: mnist1d_cnn)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set optimizer.learning_rate=3e-3 (repeatable)",
    )


def load_recipe_from_args(args: argparse.Namespace) -> Any:
    """The recipe named by `args.recipe` with `args.overrides` applied (`RecipeError` if bad)."""
    from toolkit.recipe.load import load_recipe

    return load_recipe(args.recipe, args.overrides)


def print_json(value: Any) -> None:
    """Prints `value` as indented JSON on stdout (for `--json`)."""
    json.dump(value, sys.stdout, indent=2, allow_nan=True)
    sys.stdout.write("\n")
