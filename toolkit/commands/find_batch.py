"""`toolkit find-batch [RECIPE] [--set KEY=VALUE]... [--max-memory SIZE] [--json]`: batch sizes.

Runs `toolkit.probes.find_batch_size` on the very model and training pipeline the recipe would
train (`toolkit.recipe.prepare.prepare_recipe`), with the execution settings `toolkit train` would
pick for the recipe's budget (`steps_per_execution`, XLA; `toolkit.train.Execution`) and its op
determinism. Prints a table of examples/s and peak memory per batch size, the knee, the largest
batch size that fits and the `--set` line to try the knee; writes the PNG. Exit status: 0 when a
batch size fits, 1 when none does, 2 for bad input.

Every output line starts with one of `OUTPUT_PREFIXES` (or is a table row, indented).
"""

import argparse
import time
from pathlib import Path

from toolkit.commands.common import add_recipe_arguments, load_recipe_from_args, print_json
from toolkit.errors import RecipeError

__all__ = ["add"]

EXIT_NOTHING_FITS = 1
OUTPUT_PREFIXES = ("Batch-size finder", "  ", "Knee:", "Largest batch size", "Stopped",
                   "Memory:", "Plot:", "Try:")


def add(commands) -> None:
    """Adds the `find-batch` subcommand."""
    find_batch = commands.add_parser(
        "find-batch",
        help="measure examples/s and memory against the batch size for a recipe",
        description="Train the recipe's model briefly at batch sizes from 8 up to 4096 (powers "
        "of two, at most the dataset size) and measure the steady-state examples/s and peak "
        "memory of each; stop at out-of-memory or --max-memory. Reports the throughput knee "
        "(the smallest batch size within 5% of the best examples/s) and the largest batch size "
        "that fits. The model is left untouched; nothing is saved but the plot.",
    )
    add_recipe_arguments(find_batch)
    find_batch.add_argument(
        "--max-memory", default=None, metavar="SIZE",
        help="memory limit, e.g. 12GiB or 500MB: a batch size whose peak passes 90%% of it does "
             "not fit (default: stop only at out-of-memory)",
    )
    find_batch.add_argument(
        "--batch-sizes", default=None, metavar="N,N,...",
        help="increasing batch sizes to try, e.g. 32,64,128 (default: powers of two from 8)",
    )
    find_batch.add_argument(
        "--out", default=None, metavar="PNG",
        help="where to write the plot (default: runs/<recipe name>/find_batch.png)",
    )
    find_batch.add_argument("--json", action="store_true", help="print the result as JSON")
    find_batch.set_defaults(handler=_find_batch)


def _parse_batch_sizes(text):
    if text is None:
        return None
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(size < 1 for size in sizes) or list(sizes) != sorted(set(sizes)):
        raise RecipeError(f"--batch-sizes must be increasing positive integers separated by "
                          f"commas. Received: {text!r}. Pass e.g. --batch-sizes 32,64,128.")
    return sizes


def _find_batch(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from toolkit.probes.batch_size_finder import default_batch_sizes, find_batch_size
    from toolkit.probes.memory import format_bytes, parse_memory_size
    from toolkit.recipe.prepare import prepare_recipe
    from toolkit.train.fast_defaults import apply_execution_settings
    from toolkit.train.options import Execution

    started = time.monotonic()
    recipe = load_recipe_from_args(args)
    max_memory = None if args.max_memory is None else parse_memory_size(args.max_memory)
    sizes = _parse_batch_sizes(args.batch_sizes)
    prepared = prepare_recipe(recipe)
    if recipe.train.deterministic:
        # As `toolkit train` does: deterministic kernels can be slower (on GPU above all).
        tf.config.experimental.enable_op_determinism()
    spe, jit = Execution().resolve(recipe.train.steps, recipe.train.eval_every_steps)
    apply_execution_settings(prepared.model, spe, jit)
    dataset_size = prepared.inputs.dataset_size
    sizes = sizes or default_batch_sizes(dataset_size)
    search = find_batch_size(prepared.model, lambda size: prepared.train_data(batch_size=size),
                             batch_sizes=sizes, max_memory_bytes=max_memory)
    path = search.plot(args.out or Path("runs") / recipe.name / "find_batch.png")
    seconds = time.monotonic() - started
    command = None
    if search.knee is not None:
        command = " ".join(["toolkit", "train", args.recipe or recipe.name, *sum(
            (["--set", override] for override in args.overrides), []),
            "--set", f"data.batch_size={search.knee}"])
    if args.json:
        print_json({**search.to_dict(), "recipe": recipe.name, "plot": str(path),
                    "recipe_batch_size": recipe.data.batch_size, "dataset_size": dataset_size,
                    "steps_per_execution": spe, "jit_compile": jit, "seconds": seconds,
                    "command": command})
        return 0 if search.largest_fitting is not None else EXIT_NOTHING_FITS
    print(f"Batch-size finder for {recipe.name!r}: batch sizes {sizes[0]} to {sizes[-1]} "
          f"(dataset {dataset_size} examples); steps_per_execution {spe} (fewer where one call "
          f"would last over 0.25 s) and XLA {'on' if jit else 'off'}, as `toolkit train` runs "
          f"its {recipe.train.steps} steps; took {seconds:.0f} s.")
    print(search.table())
    if search.knee is not None:
        print(f"Knee: batch size {search.knee}, the smallest within 5% of the best "
              f"{search.best_examples_per_second:,.0f} examples/s (the recipe uses "
              f"{recipe.data.batch_size}).")
    print(f"Largest batch size that fits: {search.largest_fitting}.")
    print(f"Stopped because {search.stopped_because}.")
    limit = "" if max_memory is None else f"; limit {format_bytes(max_memory)} less 10%"
    print(f"Memory: {search.memory_source}{limit}.")
    print(f"Plot: {path}")
    if command is not None:
        print(f"Try: {command} (scale the learning rate with it, S1.6: `toolkit find-lr` "
              f"with the same --set).")
    return 0 if search.largest_fitting is not None else EXIT_NOTHING_FITS
