"""StepTuner: KerasTuner trials as toolkit run directories with budgets in optimizer steps.

Every trial trains in its own run directory, `<search_dir>/runs/trial_<id>/` (TensorBoard events
on the four axes, checkpoints, diagnosis), next to KerasTuner's own files (`oracle.json`,
`tuner0.json`, `trial_<id>/trial.json`), so `keras_tuner` itself can reload the search.

**Hyperband continues trials.** KerasTuner's `Hyperband` rebuilds a promoted trial's model,
loads its parent's weights into a freshly compiled model (Keras 3 then skips the optimizer's
variables: Adam's moments and step count restart at zero) and retrains from the parent's *best*
epoch. Here a promoted trial starts as a copy of its parent's run directory, so `toolkit.fit`
restores the parent's *last* checkpoint (weights, Adam's state, the clock, the data position)
and continues: its first optimizer step follows its parent's last one, and its curves continue
on all four axes.

**A diverging trial fails, the search goes on.** `toolkit.errors.TrainingDivergedError` (the
NaN guard could not recover) marks the trial FAILED in KerasTuner (no score, never promoted);
any other toolkit error (a preemption, a user mistake) stops the search, resumable.

**A killed search resumes.** Rerunning the same search on the same directory reloads the oracle
(with `toolkit.tune.oracles.SearchResume`'s repairs), reruns the interrupted trial under its id,
which resumes from its own checkpoint, and goes on; finished trials are not run again.

Subclasses say how one trial trains (`train_trial`): `RecipeTuner` runs a recipe,
`ModelTuner` a user's `build(hp)` function or `keras_tuner.HyperModel`.
"""

import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import keras_tuner

from toolkit import keras_compat
from toolkit.errors import ToolkitError, TrainingDivergedError

__all__ = ["StepTuner", "TRIALS_DIRECTORY"]

TRIALS_DIRECTORY = "runs"


class StepTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A KerasTuner tuner whose trials are toolkit runs with step budgets (see the module doc).

    Args:
        oracle: A KerasTuner oracle (`toolkit.tune.make_oracle` gives ones that survive kills).
        directory: The search directory; rerunning a search on it resumes the search.
        max_steps: Optimizer steps of a full trial.
        min_steps: Hyperband: optimizer steps per KerasTuner "epoch" (the shortest budget).
            Defaults to `0` (not Hyperband).
        hypermodel: A `keras_tuner.HyperModel` or `build(hp)` function, for subclasses that
            build models. Defaults to `None`.
        overwrite: Delete the search directory's previous search first. Defaults to `False`.
        verbose: `1` prints one line per trial start and end, `0` nothing. Defaults to `1`.

    Attributes:
        trials_run: The trials this tuner ran, in order (a worker of a distributed search runs
            some of the search's trials).
    """

    def __init__(self, oracle: Any, *, directory: str | os.PathLike, max_steps: int,
                 min_steps: int = 0, hypermodel: Any = None, overwrite: bool = False,
                 verbose: int = 1):
        self.search_dir = Path(directory).absolute()
        self.max_steps, self.min_steps, self.verbose = int(max_steps), int(min_steps), verbose
        self._stop: Optional[BaseException] = None
        self.trials_run: List[Any] = []
        if overwrite and self.search_dir.exists():
            shutil.rmtree(self.search_dir)
        self.search_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(oracle, hypermodel=hypermodel, directory=str(self.search_dir.parent),
                         project_name=self.search_dir.name, overwrite=False)

    def trial_dir(self, trial_id: str) -> Path:
        """The run directory of a trial: `<search_dir>/runs/trial_<id>`."""
        return self.search_dir / TRIALS_DIRECTORY / f"trial_{trial_id}"

    def trial_steps(self, values: Dict[str, Any]) -> int:
        """A trial's budget: Hyperband's `tuner/epochs * min_steps` (at most `max_steps`)."""
        if "tuner/epochs" in values and self.min_steps:
            return min(self.max_steps, int(values["tuner/epochs"]) * self.min_steps)
        return self.max_steps

    def search(self, *fit_args: Any, **fit_kwargs: Any) -> None:
        """Runs the search to its end (KerasTuner's loop); re-raises a stop or a user mistake.

        A `toolkit.errors.TrainingPreempted` (SIGTERM) or another `toolkit.errors.ToolkitError`
        in a trial stops the search with the trial left running in `oracle.json`: rerunning the
        search resumes it. KerasTuner would otherwise record it as a failed trial and go on.
        """
        self._stop = None
        self.oracle.verbose = 0  # One line per trial from this tuner instead of KerasTuner's tables.
        try:
            with keras_compat.keras_tuner_tracebacks_off():  # One line per failed trial instead.
                super().search(*fit_args, **fit_kwargs)
        except keras_tuner.errors.FatalError:
            if self._stop is not None:
                raise self._stop from None
            raise
        except RuntimeError as error:  # KerasTuner's "Number of consecutive failures exceeded"
            if "consecutive failures" not in str(error):
                raise
            raise TrainingDivergedError(
                f"{self.oracle.max_consecutive_failed_trials} trials in a row diverged, so the "
                f"search stopped (the last: {' '.join(str(error).split()[-40:])}). Narrow the "
                f"search space, e.g. lower the learning rate's upper bound, and rerun to resume."
            ) from None

    def on_search_begin(self) -> None:
        super().on_search_begin()
        self.save()  # tuner0.json marks the directory as a search to reload, from the start.

    def save(self) -> None:
        import json

        from toolkit import atomic_write

        if not self._is_worker():
            self.oracle.save()
        atomic_write.write_text(self._get_tuner_fname(), json.dumps(self.get_state()))

    def run_trial(self, trial: Any, *fit_args: Any, **fit_kwargs: Any) -> Dict[str, float]:
        """Trains one trial to its budget in its run directory; returns its metrics."""
        values = trial.hyperparameters.values
        run_dir, steps = self.trial_dir(trial.trial_id), self.trial_steps(values)
        parent = values.get("tuner/trial_id")
        if parent is not None:
            self._copy_parent(parent, run_dir)
        self._say_begin(trial, steps, parent)
        started = time.monotonic()
        try:
            metrics = self.train_trial(trial, run_dir, steps, *fit_args, **fit_kwargs)
        except TrainingDivergedError as diverged:  # An outcome of these values, not a mistake.
            if self.verbose:
                print(f"    failed: {' '.join(str(diverged).split())}", flush=True)
            raise keras_tuner.errors.FailedTrialError(str(diverged)) from diverged
        except ToolkitError as stop:  # Preempted, or a user mistake: stop, keep it resumable.
            self._stop = stop
            raise keras_tuner.errors.FatalError(str(stop)) from stop
        self._say_end(trial, metrics, time.monotonic() - started)
        self.trials_run.append(trial)
        return metrics

    def train_trial(self, trial: Any, run_dir: Path, steps: int, *fit_args: Any,
                    **fit_kwargs: Any) -> Dict[str, float]:
        """Trains `trial` in `run_dir` until `steps` optimizer steps; returns its metrics.

        Subclasses implement it; `run_dir` holds the parent's last checkpoint for a promoted
        Hyperband trial, or the trial's own when the search was interrupted during it.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement `train_trial`.")

    def _copy_parent(self, parent: str, run_dir: Path) -> None:
        """Starts a promoted trial as a copy of its parent's run directory (once)."""
        from toolkit.checkpoint.run_lock import LOCK_FILE

        if run_dir.exists():  # Copied already: the search was interrupted in this trial.
            return
        source = self.trial_dir(parent)
        staging = run_dir.with_name(f".{run_dir.name}.copying")
        shutil.rmtree(staging, ignore_errors=True)
        # Atomic for a kill: the trial directory appears whole or not at all.
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(LOCK_FILE, "*.tmp*"))
        os.replace(staging, run_dir)

    def _say_begin(self, trial: Any, steps: int, parent: Optional[str]) -> None:
        if not self.verbose:
            return
        values = trial.hyperparameters.values
        tuned = ", ".join(f"{key}={_short(value)}" for key, value in values.items()
                          if not key.startswith("tuner/"))
        where = ""
        if "tuner/bracket" in values:
            where = f" (bracket {values['tuner/bracket']}, round {values['tuner/round']})"
        continued = f", continues trial {parent}" if parent is not None else ""
        print(f"Trial {trial.trial_id}{where}: {steps} steps{continued}; {tuned}", flush=True)

    def _say_end(self, trial: Any, metrics: Dict[str, float], seconds: float) -> None:
        if not self.verbose:
            return
        shown = ", ".join(f"{key} {value:.4g}" for key, value in metrics.items())
        print(f"    {shown} ({seconds:.1f} s)", flush=True)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
