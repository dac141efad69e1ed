"""Running a recipe end to end into a run directory.

`run_recipe(recipe, run_dir)` seeds everything, builds the data and the compiled model
(`toolkit.recipe.build`), writes the resolved `recipe.toml`, trains with `toolkit.train.fit` over an
endless pipeline (which logs TensorBoard events into the run directory), evaluates on the test
split and writes `model.keras`, `summary.json` and `report.md` (every file atomically).

Running the same recipe again on the same directory continues it: `fit` resumes from the run
directory's checkpoint, so a larger `train.steps` extends the run. A directory holding a run of a
*different* recipe is refused rather than mixed; `fresh=True` deletes the previous run first.

Example:

>>> import tempfile
>>> from toolkit.recipe import load_recipe
>>> from toolkit.recipe.run import run_recipe, smoke_recipe
>>> recipe = smoke_recipe(load_recipe("digits_mlp"))
>>> result = run_recipe(recipe, tempfile.mkdtemp(), verbose=0)  # doctest: +SKIP
>>> sorted(result.summary["eval"])  # doctest: +SKIP
['accuracy', 'loss']
"""

import dataclasses
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Optional

from toolkit import atomic_write
from toolkit.errors import RecipeError
from toolkit.recipe.dump import write_recipe
from toolkit.recipe.load import load_recipe
from toolkit.recipe.measurements import measurement_callbacks, measurement_summary
from toolkit.recipe.prepare import prepare_recipe
from toolkit.recipe.report import write_report, write_summary
from toolkit.recipe.schema import TABLES, Recipe

__all__ = ["RunResult", "default_run_dir", "final_metrics", "run_recipe", "smoke_recipe"]

# --smoke budgets: enough steps for two evaluations and a few log points, on a data sample.
_SMOKE_STEPS, _SMOKE_EVAL_EVERY, _SMOKE_LOG_EVERY = 20, 10, 5
_SMOKE_TRAIN_EXAMPLES, _SMOKE_EVAL_EXAMPLES, _SMOKE_VALIDATION_EXAMPLES = 256, 128, 64
# A continued run may only change its budget and how often it checkpoints.
_RESUMABLE_KEYS = ("train.steps", "train.checkpoint_every_steps")
# Left in a run directory while `--fresh` empties it: a crash then still lets `--fresh` finish.
_TRASH_MARK = ".emptying"


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What `run_recipe` produced.

    Args:
        run_dir: The run directory.
        recipe: The recipe that ran.
        model: The trained `keras.Model`.
        summary: The content of `summary.json`.

    Example:

    >>> RunResult(Path("runs/demo"), Recipe(), None, {"steps": 0}).summary["steps"]
    0
    """

    run_dir: Path
    recipe: Recipe
    model: Any
    summary: dict


def smoke_recipe(recipe: Recipe) -> Recipe:
    """Shrinks every budget of a recipe so it runs in seconds (the CLI's `--smoke`).

    Steps, evaluation and logging intervals and the train and test samples are capped; the
    model and the optimizer are kept, so a smoke run exercises the same code path.

    Args:
        recipe: The recipe to shrink.

    Returns:
        A copy with small budgets.

    Example:

    >>> small = smoke_recipe(Recipe())
    >>> small.train.steps, small.data.max_train_examples
    (20, 256)
    """

    def cap(value: int, limit: int) -> int:
        return min(value, limit) if value else limit

    data = dataclasses.replace(
        recipe.data,
        max_train_examples=cap(recipe.data.max_train_examples, _SMOKE_TRAIN_EXAMPLES),
        max_eval_examples=cap(recipe.data.max_eval_examples, _SMOKE_EVAL_EXAMPLES),
        validation_examples=min(recipe.data.validation_examples, _SMOKE_VALIDATION_EXAMPLES),
    )
    train = dataclasses.replace(
        recipe.train,
        steps=min(recipe.train.steps, _SMOKE_STEPS),
        eval_every_steps=min(recipe.train.eval_every_steps, _SMOKE_EVAL_EVERY),
        log_every_steps=cap(recipe.train.log_every_steps, _SMOKE_LOG_EVERY),
    )
    return dataclasses.replace(recipe, data=data, train=train)


def default_run_dir(recipe: Recipe, smoke: bool = False) -> Path:
    """Returns `runs/<recipe name>/default` (or `.../smoke`), relative to the working directory.

    Args:
        recipe: The recipe.
        smoke: Whether this is a `--smoke` run, kept apart from the real one. Defaults to `False`.

    Returns:
        The path.

    Example:

    >>> default_run_dir(Recipe(name="mnist1d_cnn")).as_posix()
    'runs/mnist1d_cnn/default'
    """
    return Path("runs") / recipe.name / ("smoke" if smoke else "default")


def _differences(old: Recipe, new: Recipe) -> list[str]:
    """Keys whose values differ between two recipes (as `table.key=old->new`)."""
    changes = [] if old.name == new.name else [f"name={old.name!r}->{new.name!r}"]
    for table in TABLES:
        a, b = getattr(old, table), getattr(new, table)
        for field in dataclasses.fields(a):
            key = f"{table}.{field.name}"
            before, after = getattr(a, field.name), getattr(b, field.name)
            if before != after and key not in _RESUMABLE_KEYS:
                changes.append(f"{key}={before!r}->{after!r}")
    return changes


def _prepare_run_dir(run_dir: Path, recipe: Recipe, fresh: bool) -> None:
    """Checks or (with `fresh`) empties the run directory; the caller holds its lock."""
    from toolkit.checkpoint.run_lock import LOCK_FILE

    entries = [path for path in run_dir.iterdir() if path.name != LOCK_FILE]
    if not entries:
        return
    recipe_file = run_dir / "recipe.toml"
    ours = recipe_file.is_file() or any(p.name == _TRASH_MARK for p in entries)
    if not ours:
        raise RecipeError(
            f"Run directory {str(run_dir)!r} is not empty and holds no recipe.toml, so it is "
            f"not a toolkit run; refusing to write into it. Pass an empty or new --run-dir."
        )
    if fresh or not recipe_file.is_file():
        # Move the old run aside (recipe.toml first, so a crash half-way leaves no run that
        # looks resumable), then delete it. The lock file stays: this process holds it.
        trash = run_dir.with_name(f".{run_dir.name}.deleting-{uuid.uuid4().hex[:8]}")
        trash.mkdir()
        (run_dir / _TRASH_MARK).touch()
        for path in sorted(entries, key=lambda p: p.name != "recipe.toml"):
            os.replace(path, trash / path.name)
        shutil.rmtree(trash)
        (run_dir / _TRASH_MARK).unlink(missing_ok=True)
        return
    changes = _differences(load_recipe(recipe_file), recipe)
    if changes:
        raise RecipeError(
            f"Run directory {str(run_dir)!r} holds a run of a different recipe "
            f"({', '.join(changes)}); only {' and '.join(_RESUMABLE_KEYS)} may change to "
            f"continue a run. Add --fresh to start over there, or pass another --run-dir."
        )


def _hparams(recipe: Recipe) -> dict:
    """The run's HParams columns: a short set, not every key (`toolkit.report.hparams`)."""
    from toolkit.report.hparams import recipe_hparams

    return recipe_hparams(recipe)


def final_metrics(summary: Mapping[str, Any]) -> dict:
    """A run's final results as HParams metrics: `test_<metric>` and `validation_<metric>`.

    Args:
        summary: The run's summary (`summary.json`).

    Returns:
        Metric name -> value.

    Example:

    >>> final_metrics({"eval": {"accuracy": 0.9}, "validation": {"accuracy": 0.92}})
    {'test_accuracy': 0.9, 'validation_accuracy': 0.92}
    """
    final = {f"test_{key}": value for key, value in summary["eval"].items()}
    final.update({f"validation_{key}": value
                  for key, value in summary.get("validation", {}).items()})
    return final


def _save_model(model: Any, path: Path) -> None:
    """Saves `model.keras` atomically and durably (`toolkit.atomic_write`; the temp keeps `.keras`)."""
    with atomic_write.temporary_path(path) as temporary:
        model.save(temporary)


def run_recipe(
    recipe: Recipe, run_dir: str | os.PathLike | None = None, *, fresh: bool = False,
    verbose: Any = "auto", wait_seconds: float = 0.0, hparams: Optional[Mapping[str, Any]] = None,
    plots: bool = True,
) -> RunResult:
    """Trains a recipe into a run directory and evaluates it on the test split.

    Args:
        recipe: The recipe (see `toolkit.recipe.load_recipe`).
        run_dir: Directory for `recipe.toml`, TensorBoard events, checkpoints, `model.keras`,
            `report.md` and `summary.json`. Defaults to `None` (`default_run_dir(recipe)`).
        fresh: Delete the directory's previous run first. Defaults to `False` (continue it).
        verbose: Passed to `toolkit.train.fit` (`"auto"` shows a progress bar over the whole
            step budget). Defaults to `"auto"`.
        wait_seconds: How long to wait for another process training in `run_dir` to finish.
            Defaults to `0.0` (raise `RunDirectoryInUse` at once).
        hparams: The hyperparameters TensorBoard's HParams plugin shows for this run (a search
            passes its trial's tuned keys). Defaults to `None` (a short set from the recipe).
        plots: Draw `plots/` (about a second per figure on a small CPU; a search skips them).
            Defaults to `True`.

    Returns:
        A `RunResult`.

    Raises:
        RecipeError: If the directory holds another recipe's run or is not a run directory.
        RunDirectoryInUse: Another process trains in `run_dir` (the run is left untouched).
        DataError: For unknown, malformed or non-finite data, or labels out of range.
        ModelError: For an unknown model name or a model that does not fit the data.

    Example:

    >>> import tempfile
    >>> overrides = ["train.steps=4", "train.deterministic=false"]
    >>> recipe = smoke_recipe(load_recipe("digits_mlp", overrides))
    >>> result = run_recipe(recipe, tempfile.mkdtemp(), verbose=0)
    >>> result.summary["steps"], result.summary["examples_seen"]
    (4, 256)
    """
    import tensorflow as tf

    from toolkit.callbacks.loss_curve_diagnosis import LossCurveDiagnosis
    from toolkit.report import write_run_plots
    from toolkit.report.hparams import write_run_experiment
    from toolkit.checkpoint.run_lock import RunLock
    from toolkit.train import Logging, fit

    started = time.monotonic()
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(recipe)
    if run_dir.exists() and not run_dir.is_dir():
        raise RecipeError(f"Run directory {str(run_dir)!r} is a file. Pass another --run-dir.")
    with RunLock(run_dir, timeout_seconds=wait_seconds):
        _prepare_run_dir(run_dir, recipe, fresh)
        prepared = prepare_recipe(recipe, run_dir)
        inputs, model = prepared.inputs, prepared.model
        write_recipe(recipe, run_dir / "recipe.toml", header="Resolved recipe of this run.")
        if recipe.train.deterministic:
            # Process-wide and irreversible, so only once the inputs are known to be good:
            # bit-identical reruns on CPU (DESIGN: exact resume).
            tf.config.experimental.enable_op_determinism()
        train_data = prepared.train_data()
        logging = Logging(
            every_steps=recipe.train.log_every_steps or None,
            checkpoint_every_steps=recipe.train.checkpoint_every_steps or None,
            hparams=hparams if hparams is not None else _hparams(recipe),
        )
        # The run's own diagnosis (the CLI prints it and the report holds it: no warnings).
        diagnosis = LossCurveDiagnosis(
            os.fspath(run_dir), every_steps=recipe.train.log_every_steps or None, warn=False)
        measurements = measurement_callbacks(recipe, inputs, run_dir)
        history = fit(
            model, train_data, steps=recipe.train.steps, eval_data=inputs.monitored_data,
            eval_every_steps=recipe.train.eval_every_steps, run_dir=run_dir, logging=logging,
            callbacks=[diagnosis, *measurements], verbose=verbose,
        )
        eval_batch = max(recipe.data.batch_size, 256)
        metrics = inputs.evaluate(model, batch_size=eval_batch)
        _save_model(model, run_dir / "model.keras")
        examples = history.examples_seen[-1] if history.steps else 0
        summary = {
            "recipe": recipe.name,
            "dataset": inputs.name,
            "steps": int(model.optimizer.iterations.numpy()),
            "examples_seen": examples,
            "epochs": examples / inputs.dataset_size if inputs.dataset_size else None,
            "wall_seconds": history.wall_seconds[-1] if history.steps else 0.0,
            "command_seconds": time.monotonic() - started,
            "eval": {key: float(value) for key, value in metrics.items()},
            "history": {"steps": list(history.steps), **{
                key: [float(v) for v in values] for key, values in history.history.items()}},
        }
        if inputs.validation_data is not None:
            validation = inputs.evaluate(model, batch_size=eval_batch, split="validation")
            summary["validation"] = {key: float(value) for key, value in validation.items()}
            summary["validation_examples"] = len(inputs.validation_data[1])
        summary["diagnosis"] = [finding.to_dict() for finding in diagnosis.findings]
        summary.update(measurement_summary(measurements))
        if recipe.data.check != "off":
            summary["data_check"] = prepared.data_findings
        if hparams is None:  # A search trial's experiment is the search's, declared by it.
            write_run_experiment(run_dir, recipe, final_metrics(summary), summary["steps"])
        # Before summary and report, which name them; the events are complete once fit returned.
        drawn = write_run_plots(run_dir) if plots else []
        summary["plots"] = [path.relative_to(run_dir).as_posix() for path in drawn]
        write_summary(run_dir, summary)
        write_report(run_dir, recipe, summary, model)
    return RunResult(run_dir=run_dir, recipe=recipe, model=model, summary=summary)
