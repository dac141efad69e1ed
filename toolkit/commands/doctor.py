"""`toolkit doctor [RECIPE] [--set KEY=VALUE]... [--json]`: why a recipe's network would not learn.

Builds the recipe's compiled model and training pipeline exactly as `toolkit train` would
(`toolkit.recipe.prepare.prepare_recipe`), runs `toolkit.probes.doctor` on them and prints the
checklist and the findings (or, with `--json`, the report as JSON). Exit status: 0 when the
model is healthy, 1 when problems were found, 2 for bad input (an unknown recipe or key, data
that cannot be read).
"""

import argparse

from toolkit.commands.common import add_recipe_arguments, load_recipe_from_args, print_json

__all__ = ["add"]

EXIT_HEALTHY = 0
EXIT_PROBLEMS = 1


def add(commands) -> None:
    """Adds the `doctor` subcommand."""
    doctor = commands.add_parser(
        "doctor",
        help="check why a recipe's network would not learn (default: mnist1d_cnn)",
        description="Run the S2.12 checklist on a recipe's model and data: (a) conventions and "
        "data, (b) initialization, (c) overfit a tiny batch, (d) the same without batch "
        "normalization, (e) a few steps at the compiled learning rate. Trains copies only; "
        "takes seconds. Exit status: 0 healthy, 1 problems found, 2 bad input.",
    )
    add_recipe_arguments(doctor)
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from toolkit.probes.doctor import doctor
    from toolkit.recipe.prepare import prepare_recipe

    recipe = load_recipe_from_args(args)
    prepared = prepare_recipe(recipe)
    report = doctor(prepared.model, prepared.train_data())
    if args.json:
        print_json({"recipe": recipe.name, **report.to_dict()})
    else:
        print(f"Recipe {recipe.name!r}:")
        print(report.format())
    return EXIT_HEALTHY if report.healthy else EXIT_PROBLEMS
