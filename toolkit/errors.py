"""The exception types users catch.

Every error raised for bad *input* (a recipe key that does not exist, a wrong type, NaN in data, a
label out of range, a missing file, a corrupt checkpoint) is a `ToolkitError`. Its one-line message
names the culprit and the fix. The CLI prints it and exits with status 2, without a traceback; any
other exception is a bug and keeps its traceback.

Example:

>>> import toolkit
>>> try:
...     raise toolkit.errors.DataError("`x` holds NaN at row 3. Clean or drop that row.")
... except toolkit.errors.ToolkitError as error:
...     print(error)
`x` holds NaN at row 3. Clean or drop that row.
"""

__all__ = [
    "ToolkitError",
    "RecipeError",
    "DataError",
    "ModelError",
    "CheckpointError",
    "TrainingDivergedError",
    "TrainingPreempted",
    "RunDirectoryInUse",
    "StrategyError",
]


class ToolkitError(Exception):
    """Base class of every user-facing error of the toolkit."""


class RecipeError(ToolkitError, ValueError):
    """A recipe, a `--set` override or a CLI argument is invalid."""


class DataError(ToolkitError, ValueError):
    """Data cannot be trained on: NaN/Inf, labels out of range, unknown dataset, bad shapes."""


class ModelError(ToolkitError, ValueError):
    """A model cannot be built or does not match its data or checkpoint."""


class CheckpointError(ToolkitError, RuntimeError):
    """A checkpoint cannot be written or no good checkpoint can be read."""


class TrainingDivergedError(ToolkitError, RuntimeError):
    """Training produced non-finite values and could not recover."""


class TrainingPreempted(ToolkitError, RuntimeError):
    """SIGTERM or SIGINT stopped training after a checkpoint was written; rerun to resume.

    Attributes:
        exit_code: `128 + signal number`, the shell's convention (143 for SIGTERM).
    """

    def __init__(self, message: str, exit_code: int = 143):
        super().__init__(message)
        self.exit_code = exit_code


class RunDirectoryInUse(ToolkitError, RuntimeError):
    """Another process holds the run directory's lock; two writers would corrupt the run."""


class StrategyError(ToolkitError, RuntimeError):
    """A `tf.distribute` strategy or precision policy cannot start (no TPU, no `TF_CONFIG`)."""
