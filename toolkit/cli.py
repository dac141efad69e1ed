"""The `toolkit` command: `toolkit train|tune|find-lr|find-batch|doctor [RECIPE] [--set K=V]...`.

The command parses arguments and delegates to `toolkit.recipe` and `toolkit.probes` through one
module per subcommand (`toolkit.commands`); it holds no training logic. A user
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
from typing import Sequence

from toolkit.errors import ToolkitError, TrainingPreempted

__all__ = ["main"]

EXIT_USER_ERROR = 2


# One module per subcommand (`toolkit.commands.<name>.add`), in `toolkit --help` order.
_COMMANDS = ("train", "tune", "find_lr", "find_batch", "doctor", "compare")


def _parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="toolkit", description="Train Keras models from recipes, counting optimizer steps."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"toolkit.commands.{name}").add(commands)
    return parser


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
