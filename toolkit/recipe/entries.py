"""The entries of a recipe's nested keys: `data.augment`, `data.sources`, `tune.space`.

Plain frozen values (hashable, so recipes stay comparable): `AugmentStep` (one augmentation and
its arguments), `SourceConfig` (one `[data.sources.<head>]` table) and `SearchDimension` (one
`[tune.space]` entry). Their parsers live beside the loader (`augmentations.py`,
`source_tables.py`, `space_tables.py`).

Example:

>>> SourceConfig(head="digit", name="mnist1d")
digit: mnist1d (weight 1.0)
"""

import dataclasses
from typing import Any

__all__ = ["AugmentStep", "SearchDimension", "SourceConfig"]


@dataclasses.dataclass(frozen=True, repr=False)
class AugmentStep:
    """One entry of `data.augment`: a `toolkit.data.augment` function and its arguments.

    In TOML, `augment = [{name = "random_shift", max_shift = 4}]`; the loader checks the name
    and the arguments against the function (`toolkit.recipe.augmentations`).

    Args:
        name: The augmentation, e.g. `"random_shift"` (see `toolkit.data.augment`).
        arguments: Its keyword arguments as sorted `(name, value)` pairs (hashable, so recipes
            stay comparable). Defaults to `()`.

    Example:

    >>> AugmentStep("gaussian_noise", (("stddev", 0.05),))
    gaussian_noise(stddev=0.05)
    """

    name: str
    arguments: tuple = ()

    @property
    def kwargs(self) -> dict:
        """The arguments as a dict."""
        return dict(self.arguments)

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.arguments)})"


@dataclasses.dataclass(frozen=True, repr=False)
class SourceConfig:
    """One `[data.sources.<head>]` table: a dataset that trains the model's head `<head>`.

    Args:
        head: The table's name: the model output it trains and the prefix of its metrics
            (`<head>_loss`).
        name: A built-in dataset, `"tfds:NAME"` or `"package.module:function"`, like `data.name`.
        weight: Relative share of the training examples drawn from this source. Defaults to `1.0`.

    Example:

    >>> SourceConfig(head="digit", name="mnist1d")
    digit: mnist1d (weight 1.0)
    """

    head: str
    name: str
    weight: float = 1.0

    def __repr__(self) -> str:
        return f"{self.head}: {self.name} (weight {self.weight!r})"


@dataclasses.dataclass(frozen=True, repr=False)
class SearchDimension:
    """One entry of `[tune.space]`: a recipe key and the values a search tries for it.

    In TOML, the key is quoted and the value is an inline table:
    `"optimizer.learning_rate" = {min = 1e-4, max = 1e-2, sampling = "log"}` (a float range),
    `"model.kernel_size" = {min = 3, max = 7, step = 2}` (integers when both bounds are),
    `"model.filters" = {choices = [[32, 32], [64, 64]]}` (any values of the key's type) or
    `"train.deterministic" = {choices = [true, false]}` (a boolean). `toolkit.recipe.space_tables`
    parses them; `toolkit.tune` turns them into KerasTuner hyperparameters.

    Args:
        key: The recipe key, `table.key`.
        choices: The values to choose from; empty for a range. Defaults to `()`.
        min_value: Lower bound of a range. Defaults to `None`.
        max_value: Upper bound of a range. Defaults to `None`.
        sampling: `"linear"`, `"log"` or `"reverse_log"`, for a range. Defaults to `"linear"`.
        step: Spacing of an integer range (or of a float grid). Defaults to `None`.

    Example:

    >>> SearchDimension("optimizer.learning_rate", min_value=1e-4, max_value=1e-2,
    ...                 sampling="log")
    optimizer.learning_rate in [0.0001, 0.01] (log)
    """

    key: str
    choices: tuple = ()
    min_value: Any = None
    max_value: Any = None
    sampling: str = "linear"
    step: Any = None

    @property
    def kind(self) -> str:
        """`"bool"`, `"choice"`, `"int"` or `"float"`."""
        if self.choices:
            is_bool = set(self.choices) == {True, False} and all(
                isinstance(c, bool) for c in self.choices)
            return "bool" if is_bool else "choice"
        integers = all(isinstance(v, int) and not isinstance(v, bool)
                       for v in (self.min_value, self.max_value))
        return "int" if integers else "float"

    def __repr__(self) -> str:
        if self.choices:
            return f"{self.key} in {list(self.choices)!r}"
        step = f", step {self.step!r}" if self.step is not None else ""
        return f"{self.key} in [{self.min_value!r}, {self.max_value!r}] ({self.sampling}{step})"
