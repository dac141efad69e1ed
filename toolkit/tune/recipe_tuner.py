"""Searching a recipe's `[tune]` space: `search_recipe` and `RecipeTuner`.

Each trial is `toolkit.recipe.run.run_recipe` on the recipe with the trial's `[tune.space]`
values applied and `train.steps` set to the trial's budget: a full run directory (four-axes
TensorBoard events, checkpoints, diagnosis, `report.md`, `summary.json`, `plots/`). Trials are
ranked on the held-out validation split (`data.validation_examples`); the test split is
evaluated once per trial, at its end, and reported beside, never used to choose.

Example:

>>> import tempfile
>>> from toolkit.recipe import load_recipe
>>> recipe = load_recipe("digits_mlp", ["data.validation_examples=100", "train.steps=20",
...                                     "train.deterministic=false", "tune.tuner=random",
...                                     "tune.max_trials=2"])
>>> result = search_recipe(recipe, tempfile.mkdtemp(), verbose=0)  # doctest: +SKIP
>>> len(result.trials), result.best.values  # doctest: +SKIP
(2, {'optimizer.learning_rate': 0.0042})
"""

import dataclasses
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

from toolkit import atomic_write
from toolkit.errors import RecipeError
from toolkit.recipe.schema import Recipe, TuneConfig
from toolkit.recipe.space_tables import with_values
from toolkit.tune.oracles import hyperband_budgets, make_oracle
from toolkit.tune.space import declare_space, hparam_domains, recipe_values, tuned_values
from toolkit.tune.step_tuner import StepTuner

__all__ = ["RecipeTuner", "SearchResult", "TrialResult", "search_recipe"]

SEARCH_RECIPE = "search.toml"
RESULTS_FILE = "search.json"


@dataclasses.dataclass(frozen=True)
class TrialResult:
    """One finished trial of a search.

    Args:
        trial_id: KerasTuner's trial id.
        run_dir: The trial's run directory.
        values: Its `[tune.space]` values, by recipe key.
        steps: Optimizer steps it trained (its budget).
        validation: Its final validation metrics (`val_<metric>`).
        test: Its test metrics, evaluated once at its end (`test_<metric>`).
        parent: The trial it continued (Hyperband), or `None`.
    """

    trial_id: str
    run_dir: Path
    values: Dict[str, Any]
    steps: int
    validation: Dict[str, float]
    test: Dict[str, float]
    parent: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SearchResult:
    """What `search_recipe` found.

    Args:
        search_dir: The search directory.
        objective: The objective's name, e.g. `"val_accuracy"`.
        direction: `"max"` or `"min"`.
        trials: Every finished trial, best first.
        optimizer_steps: Optimizer steps taken by all trials together (a promoted trial counts
            only the steps it added to its parent's).
        wall_seconds: Time of this call (a resumed search counts from its restart).
        worker: The `KERASTUNER_TUNER_ID` of a worker of a distributed search, whose `trials`
            are those it ran; `None` for the search itself (one process, or the chief).
            Defaults to `None`.
        failed: Ids of the trials that diverged (KerasTuner's FAILED trials). Defaults to
            `[]`.
    """

    search_dir: Path
    objective: str
    direction: str
    trials: List[TrialResult]
    optimizer_steps: int
    wall_seconds: float
    worker: Optional[str] = None
    failed: List[str] = dataclasses.field(default_factory=list)

    @property
    def best(self) -> TrialResult:
        """The best trial by the objective."""
        return self.trials[0]


class RecipeTuner(StepTuner):
    """A `StepTuner` whose trials run a recipe (see the module doc).

    Args:
        recipe: The recipe; its `[tune]` table is the search.
        oracle: A KerasTuner oracle over the recipe's `[tune.space]`.
        directory: The search directory.
        overwrite: Delete a previous search there first. Defaults to `False`.
        verbose: `1` prints one line per trial start and end. Defaults to `1`.
    """

    def __init__(self, recipe: Recipe, oracle: Any, *, directory: str | os.PathLike,
                 overwrite: bool = False, verbose: int = 1):
        tune = recipe.tune
        max_steps = tune.max_steps or recipe.train.steps
        min_steps = 0
        if tune.tuner == "hyperband":
            min_steps, _ = hyperband_budgets(max_steps, tune.min_steps, tune.factor)
        self.recipe = recipe
        super().__init__(oracle, directory=directory, max_steps=max_steps, min_steps=min_steps,
                         overwrite=overwrite, verbose=verbose)

    def trial_recipe(self, values: Dict[str, Any], steps: int) -> Recipe:
        """The recipe of one trial: the space's values applied, `train.steps` its budget."""
        recipe = with_values(self.recipe, recipe_values(self.recipe.tune.space, values))
        train = dataclasses.replace(recipe.train, steps=steps,
                                    eval_every_steps=min(recipe.train.eval_every_steps, steps))
        return dataclasses.replace(recipe, train=train, tune=TuneConfig())

    def train_trial(self, trial: Any, run_dir: Path, steps: int, *fit_args: Any,
                    **fit_kwargs: Any) -> Dict[str, float]:
        from toolkit.recipe.run import final_metrics, run_recipe
        from toolkit.report.hparams import write_final_metrics

        values = trial.hyperparameters.values
        hparams = tuned_values(self.recipe.tune.space, values)
        # No plots per trial (a second each); `toolkit compare` draws the search's trials.
        result = run_recipe(self.trial_recipe(values, steps), run_dir, verbose=0,
                            hparams=hparams, plots=False)
        summary = result.summary
        write_final_metrics(run_dir, final_metrics(summary), summary["steps"])
        return {f"val_{key}": value for key, value in summary["validation"].items()}



def declare_experiment(search_dir: Path, tune: TuneConfig) -> Path:
    """Declares the search's TensorBoard HParams experiment: tuned keys and final metrics.

    The hyperparameters are the `[tune.space]` keys only (with their domains); the metrics are
    the objective's metric and the loss, on the validation and the test split, as each trial
    writes them at its end (`toolkit.report.hparams.write_final_metrics`).
    """
    from toolkit.report.hparams import FINAL_FAMILY, write_experiment

    metric = tune.objective[len("val_"):]
    names = [metric] + (["loss"] if metric != "loss" else [])
    metrics = [f"{FINAL_FAMILY}/{split}_{name}" for split in ("validation", "test")
               for name in names]
    return write_experiment(search_dir, hparam_domains(tune.space), metrics)


def search_recipe(recipe: Recipe, search_dir: str | os.PathLike, *, fresh: bool = False,
                  verbose: int = 1) -> SearchResult:
    """Runs (or resumes) the search of a recipe's `[tune]` table.

    A distributed search (KerasTuner's environment variables `KERASTUNER_TUNER_ID`,
    `KERASTUNER_ORACLE_IP`, `KERASTUNER_ORACLE_PORT`) runs this on a chief, which serves the
    oracle, holds `search_dir` and returns every trial once the workers are done, and on each
    worker, which runs trials and returns those it ran (see `SearchResult.worker`).

    Args:
        recipe: The recipe; `[tune]` holds the search, `data.validation_examples` the split it
            selects on.
        search_dir: The search directory. Rerunning on it resumes the search.
        fresh: Delete the previous search there first. Defaults to `False`.
        verbose: `1` prints one line per trial start and end. Defaults to `1`.

    Returns:
        A `SearchResult`.

    Raises:
        RecipeError: For a recipe without a validation split or search space, a bad
            objective, a search directory that holds another recipe's search, or a distributed
            search with missing environment variables, a worker given `fresh` or another recipe
            than its chief's.
        RunDirectoryInUse: Another process runs a search in `search_dir`.
        TrainingPreempted: SIGTERM stopped a trial after a checkpoint; rerun to resume.
    """
    from toolkit.checkpoint.run_lock import RunLock
    from toolkit.recipe.dump import write_recipe
    from toolkit.recipe.load import load_recipe

    if not recipe.data.validation_examples:
        raise RecipeError(
            "A search selects on a validation split held out from the training data, and the "
            "recipe has none. Set data.validation_examples (e.g. 500): the test split is then "
            "evaluated once per trial and reported apart."
        )
    started = time.monotonic()
    search_dir = Path(search_dir)
    worker = _distributed_worker()
    if worker is not None:
        return _work_for_chief(recipe, search_dir, worker, fresh=fresh, verbose=verbose,
                               started=started)
    with RunLock(search_dir):
        recorded = search_dir / SEARCH_RECIPE
        if fresh:
            _empty(search_dir)
        elif recorded.is_file() and not _same_search(load_recipe(recorded), recipe):
            raise RecipeError(
                f"{str(search_dir)!r} holds the search of a different recipe (see "
                f"{recorded}); only tune.max_trials may change to extend a search. Add --fresh "
                f"to start over there, or pass another --run-dir."
            )
        elif not recorded.is_file() and _has_files(search_dir):
            raise RecipeError(
                f"{str(search_dir)!r} is not empty and holds no {SEARCH_RECIPE}, so it is not a "
                f"toolkit search; refusing to write into it. Pass an empty or new --run-dir."
            )
        write_recipe(recipe, recorded, header="The recipe of this search (toolkit tune).")
        hyperparameters = declare_space(recipe.tune.space)
        oracle = make_oracle(recipe.tune, hyperparameters, max_steps=recipe.train.steps)
        tuner = RecipeTuner(recipe, oracle, directory=search_dir, verbose=verbose)
        # Here, not in a tuner hook: a distributed search's chief runs none, its workers all.
        declare_experiment(search_dir, recipe.tune)
        with warnings.catch_warnings():
            # The same data-check warning would otherwise repeat for every trial.
            warnings.filterwarnings("once", category=UserWarning)
            tuner.search()
        result = collect_results(tuner, time.monotonic() - started)
        write_results(result)
    return result


def _distributed_worker() -> Optional[str]:
    """This process's `KERASTUNER_TUNER_ID` if it is a worker of a distributed search, else None.

    KerasTuner's rule: with `KERASTUNER_ORACLE_IP` set, the process whose `KERASTUNER_TUNER_ID`
    holds "chief" serves the oracle, and every other one asks it for trials.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [name for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
               if not os.environ.get(name)]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise RecipeError(
            f"KERASTUNER_ORACLE_IP is set, so this is a distributed search, but "
            f"{' and '.join(missing)} {verb} not. Give the chief and every worker the same "
            f"KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT, and KERASTUNER_TUNER_ID=chief to "
            f"the chief, tuner0, tuner1, ... to the workers; or unset KERASTUNER_ORACLE_IP."
        )
    tuner_id = os.environ["KERASTUNER_TUNER_ID"]
    return None if "chief" in tuner_id else tuner_id


def _work_for_chief(recipe: Recipe, search_dir: Path, worker: str, *, fresh: bool,
                    verbose: int, started: float) -> SearchResult:
    """Runs a distributed search's trials that its chief gives this worker, until it says stop.

    The worker takes no lock and writes no search file (`search.toml`, `search.json`): the chief
    holds the search directory, and each trial's run directory has its own lock.
    """
    from toolkit.recipe.load import load_recipe

    if fresh:
        raise RecipeError(
            f"--fresh deletes the search, which only the chief of a distributed search may do; "
            f"this process is its worker {worker!r} (KERASTUNER_TUNER_ID). Pass --fresh to the "
            f"chief only."
        )
    oracle = make_oracle(recipe.tune, declare_space(recipe.tune.space),
                         max_steps=recipe.train.steps)
    tuner = RecipeTuner(recipe, oracle, directory=search_dir, verbose=verbose)
    # Wait for the chief's oracle (KerasTuner waits up to an hour): it serves only once it has
    # recorded the recipe, and the worker writes nothing before (the chief refuses a search
    # directory with files and no search.toml).
    tuner.oracle.get_space()
    recorded = search_dir / SEARCH_RECIPE
    if not recorded.is_file():
        raise RecipeError(
            f"Worker {worker!r} finds no {recorded}, which its chief has written: the chief and "
            f"its workers must share the search directory (--run-dir on a shared file system)."
        )
    if load_recipe(recorded) != recipe:
        raise RecipeError(
            f"Worker {worker!r} was given another recipe than its chief (see {recorded}). Start "
            f"every worker with the chief's recipe and --set options."
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("once", category=UserWarning)
        tuner.search()
    return collect_results(tuner, time.monotonic() - started)


def _same_search(recorded: Recipe, recipe: Recipe) -> bool:
    """Whether `recipe` continues `recorded`'s search: equal but for `tune.max_trials`, which a
    rerun may raise to add trials (KerasTuner reads it afresh; it is not in `oracle.json`)."""
    def without_cap(r: Recipe) -> Recipe:
        return dataclasses.replace(r, tune=dataclasses.replace(r.tune, max_trials=0))

    return without_cap(recorded) == without_cap(recipe)


def _has_files(folder: Path) -> bool:
    from toolkit.checkpoint.run_lock import LOCK_FILE

    return folder.is_dir() and any(p.name != LOCK_FILE for p in folder.iterdir())


def _empty(folder: Path) -> None:
    import shutil

    from toolkit.checkpoint.run_lock import LOCK_FILE

    for path in folder.iterdir():
        if path.name == LOCK_FILE:
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def collect_results(tuner: StepTuner, wall_seconds: float) -> SearchResult:
    """The finished trials of a search, best first, read from their run directories.

    A worker of a distributed search returns the trials it ran: its oracle is the chief's, over
    gRPC, and the chief exits once every worker has been told to stop.
    """
    oracle = tuner.oracle
    objective = oracle.objective
    worker = tuner._is_worker()
    trials = []
    steps = 0
    for trial in tuner.trials_run if worker else oracle.get_best_trials(len(oracle.trials)):
        if trial.status != "COMPLETED":
            continue
        values = trial.hyperparameters.values
        run_dir = tuner.trial_dir(trial.trial_id)
        summary = json.loads((run_dir / "summary.json").read_text())
        space = getattr(getattr(tuner, "recipe", None), "tune", None)
        shown = (tuned_values(space.space, values) if space is not None else
                 {k: v for k, v in values.items() if not k.startswith("tuner/")})
        parent = values.get("tuner/trial_id")
        trials.append(TrialResult(
            trial_id=trial.trial_id, run_dir=run_dir, values=shown, steps=summary["steps"],
            validation={f"val_{k}": v for k, v in summary.get("validation", {}).items()},
            test={f"test_{k}": v for k, v in summary["eval"].items()}, parent=parent,
        ))
    by_id = {t.trial_id: t for t in trials}
    for trial in trials:
        parent = by_id.get(trial.parent) if trial.parent is not None else None
        steps += trial.steps - (parent.steps if parent is not None else 0)
    if worker:
        trials.sort(key=lambda t: t.validation[objective.name],
                    reverse=objective.direction == "max")
    failed = [] if worker else sorted(
        trial_id for trial_id, trial in oracle.trials.items() if trial.status == "FAILED")
    return SearchResult(search_dir=tuner.search_dir, objective=objective.name,
                        direction=objective.direction, trials=trials, optimizer_steps=steps,
                        wall_seconds=wall_seconds, worker=tuner.tuner_id if worker else None,
                        failed=failed)


def write_results(result: SearchResult) -> Path:
    """Writes `search.json` (every trial, best first) into the search directory."""
    rows = [{**dataclasses.asdict(trial), "run_dir": str(trial.run_dir)}
            for trial in result.trials]
    document = {"objective": result.objective, "direction": result.direction,
                "optimizer_steps": result.optimizer_steps,
                "wall_seconds": result.wall_seconds, "trials": rows,
                "failed_trials": result.failed}
    return atomic_write.write_text(result.search_dir / RESULTS_FILE,
                                   json.dumps(document, indent=2, default=str))
