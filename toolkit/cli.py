"""The `toolkit` command: `toolkit train [RECIPE] [--set KEY=VALUE]... [--run-dir DIR]`.

The command parses arguments and delegates to `toolkit.recipe`; it holds no training logic. A user
mistake (any `toolkit.errors.ToolkitError`) prints one line to stderr and exits with status 2, with
no traceback; any other exception is a bug and keeps its traceback. TensorFlow's C++ log lines are
silenced when `toolkit` is imported (`toolkit.quiet_import`); `TOOLKIT_DEBUG=1` shows them.

Example:

>>> from toolkit.cli import main
>>> main(["train", "no_such_recipe"])  # prints "toolkit: error: Cannot find ..." to stderr
2
"""

import argparse
import sys
import warnings
import textwrap
from typing import Sequence

from toolkit.errors import ToolkitError, TrainingPreempted

__all__ = ["main"]

EXIT_USER_ERROR = 2


def _keys_epilog() -> str:
    """Lists every recipe key with its default and help, straight from the schema."""
    from toolkit.recipe.dump import format_value
    from toolkit.recipe.keys import iter_keys

    lines = ["recipe keys (--set KEY=VALUE; VALUE is TOML, a bare word is a string):"]
    for info in iter_keys():
        lines.append(f"  {info.key} = {format_value(info.default)}")
        lines += textwrap.wrap(info.help, width=90, initial_indent=" " * 6,
                               subsequent_indent=" " * 6)
    lines.append("  [callbacks], [tune]: reserved tables, no keys yet.")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolkit", description="Train Keras models from recipes, counting optimizer steps."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train a recipe (default: mnist1d_cnn)",
        description="Train a recipe and write its run directory (recipe.toml, TensorBoard "
        "events, model.keras, report.md, summary.json). Running the same command again on the "
        "same run directory continues the run.",
        epilog=_keys_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument(
        "recipe", nargs="?", default=None,
        help="a recipe .toml file or a shipped recipe's name (default: mnist1d_cnn)",
    )
    train.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a recipe key, e.g. --set optimizer.learning_rate=3e-3 (repeatable)",
    )
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
    return parser


def _train(args: argparse.Namespace) -> int:
    from toolkit.recipe.load import load_recipe
    from toolkit.recipe.run import default_run_dir, run_recipe, smoke_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.smoke:
        recipe = smoke_recipe(recipe)
    run_dir = args.run_dir or default_run_dir(recipe, smoke=args.smoke)
    result = run_recipe(recipe, run_dir, fresh=args.fresh, wait_seconds=args.wait)
    summary = result.summary
    metrics = ", ".join(f"{key} {value:.4g}" for key, value in summary["eval"].items())
    print(f"Finished {recipe.name!r} at step {summary['steps']} "
          f"({summary['examples_seen']} examples, {summary['wall_seconds']:.1f} s).")
    print(f"Test metrics: {metrics}")
    print(f"Run directory: {result.run_dir}")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir}")
    return 0


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one `toolkit: warning:` line, without the source line Python would quote."""
    text = " ".join(str(message).split())
    print(f"toolkit: warning: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the `toolkit` command line and returns its exit status.

    Args:
        argv: Arguments without the program name. Defaults to `None` (`sys.argv[1:]`).

    Returns:
        `0` on success, `2` for a user mistake (printed as one line on stderr) or bad arguments.

    Example:

    >>> main(["train", "--set", "train.steps=abc"])  # prints the error line to stderr
    2
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse's usage errors (2) and --help (0)
        return int(exit_.code or 0)
    if argv is not None:  # Called from Python: leave warnings to the caller's handling.
        return _run(args)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except TrainingPreempted as stopped:  # A clean stop with a checkpoint, not a mistake.
        print(f"toolkit: {stopped}", file=sys.stderr)
        return stopped.exit_code
    except ToolkitError as error:
        message = " ".join(str(error).split())
        print(f"toolkit: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
