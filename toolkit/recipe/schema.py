"""The recipe schema: every key a recipe may hold, its type, default and one-line help.

A recipe is a tree of frozen dataclasses, one per TOML table: `[data]`, `[model]`, `[optimizer]`,
`[train]`, and the reserved `[callbacks]` and `[tune]`. Each field is declared with `setting()`,
which records its help text and, where it applies, its allowed choices and lower bound; the loader
(`toolkit.recipe.load`) and the `toolkit train --help` key list read them from here, so this module
is the single place that defines the recipe language.

TOML has no null, so an integer `0` means "derive it" where the help says so (for example
`model.num_outputs = 0` takes the number of classes from the data).

Example:

>>> from toolkit.recipe.schema import Recipe, TrainConfig
>>> recipe = Recipe(name="quick", train=TrainConfig(steps=200))
>>> recipe.train.steps, recipe.optimizer.name, recipe.data.sampling
(200, 'adam', 'iid')
"""

import dataclasses
from typing import Any, Iterator, NamedTuple

__all__ = [
    "CallbacksConfig",
    "DataConfig",
    "KeyInfo",
    "ModelConfig",
    "OptimizerConfig",
    "Recipe",
    "TABLES",
    "TrainConfig",
    "TuneConfig",
    "iter_keys",
    "setting",
]


def setting(default: Any, help: str, *, choices: tuple = (), minimum: float | None = None):
    """Declares one recipe key: its default, one-line help, allowed choices and lower bound.

    Args:
        default: The value used when a recipe leaves the key out (immutable: tuples for lists).
        help: One line saying what the key does, shown by `toolkit train --help`.
        choices: Allowed values of an enum-like string key; empty for any value. Defaults to `()`.
        minimum: Smallest allowed value of a numeric key (inclusive). Defaults to `None`.

    Returns:
        A `dataclasses.field` carrying the metadata.

    Example:

    >>> import dataclasses
    >>> @dataclasses.dataclass(frozen=True)
    ... class Demo:
    ...     units: int = setting(8, "Width of the layer.", minimum=1)
    >>> dataclasses.fields(Demo)[0].metadata["help"]
    'Width of the layer.'
    """
    metadata = {"help": help, "choices": tuple(choices), "minimum": minimum}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The `[data]` table: which dataset and how batches are drawn from it.

    Args:
        name: A built-in dataset (`toolkit.data.builtin_names()`) or `"package.module:function"`.
        batch_size: Examples per optimizer step.
        sampling: `"iid"` or `"passes"` (see `toolkit.data.endless`).
        seed: Seed given to `toolkit.data.load`: the generator of MNIST-1D and heavy_tailed, the
            split of digits; `0` gives the standard data.
        max_train_examples: Use only the first N training examples; `0` uses all.
        max_eval_examples: Evaluate on only the first N test examples; `0` uses all.

    Example:

    >>> DataConfig(name="digits", batch_size=32).sampling
    'iid'
    """

    name: str = setting(
        "mnist1d",
        'Built-in dataset (mnist1d, digits, heavy_tailed) or "package.module:function" '
        "returning a toolkit.data.BuiltinData or a dict with x_train, y_train, x_test, y_test.",
    )
    batch_size: int = setting(64, "Examples per optimizer step.", minimum=1)
    sampling: str = setting(
        "iid",
        "iid: every batch drawn independently with replacement; passes: reshuffled passes.",
        choices=("iid", "passes"),
    )
    seed: int = setting(
        0, "Seed given to toolkit.data.load (generators, digits split); 0 is the standard data.",
        minimum=0,
    )
    max_train_examples: int = setting(
        0, "Train on only the first N training examples; 0 uses them all.", minimum=0
    )
    max_eval_examples: int = setting(
        0, "Evaluate on only the first N test examples; 0 uses them all.", minimum=0
    )


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The `[model]` table: the architecture and its hyperparameters.

    Keys that the chosen model does not take are ignored with a warning.

    Args:
        name: `"mlp"`, `"convnet"` or `"package.module:function"`.
        num_outputs: Width of the linear head; `0` derives it from the data.
        input_scaling: `"tanh"`, `"standardize"`, `"none"`, or `"auto"` (the model's default).
        hidden_units: Widths of the ReLU layers of `mlp`.
        filters: Filters of each convolution block of `convnet`.
        kernel_size: Convolution window of `convnet`.
        pool: Pooling after each convolution of `convnet`: `"max"` or `"none"`.
        dense_units: Widths of the ReLU layers between the convolutions and the head of `convnet`.

    Example:

    >>> ModelConfig(name="mlp", hidden_units=(64, 64)).hidden_units
    (64, 64)
    """

    name: str = setting(
        "convnet",
        'mlp, convnet, or "package.module:function" called as '
        "function(input_shape, num_outputs, *, adapt_data, seed) -> uncompiled keras.Model.",
    )
    num_outputs: int = setting(
        0, "Width of the linear head; 0 takes the class count (1 for regression).", minimum=0
    )
    input_scaling: str = setting(
        "auto",
        "tanh: standardized tanh(x/C) (S2.8); standardize: mean/std only; none; "
        "auto: the model's default.",
        choices=("auto", "tanh", "standardize", "none"),
    )
    hidden_units: tuple[int, ...] = setting((128, 128), "mlp: widths of the ReLU layers.")
    filters: tuple[int, ...] = setting((32, 32, 32), "convnet: filters per convolution block.")
    kernel_size: int = setting(5, "convnet: convolution window length.", minimum=1)
    pool: str = setting(
        "max", "convnet: pooling after each convolution.", choices=("max", "none")
    )
    dense_units: tuple[int, ...] = setting(
        (128,), "convnet: widths of the ReLU layers before the head."
    )


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The `[optimizer]` table.

    Args:
        name: `"adam"` (S2.1) or `"sgd"`.
        learning_rate: Step size.

    Example:

    >>> OptimizerConfig().learning_rate
    0.001
    """

    name: str = setting("adam", "adam (S2.1) or sgd.", choices=("adam", "sgd"))
    learning_rate: float = setting(1e-3, "Step size of the optimizer.", minimum=0.0)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The `[train]` table: the step budget and its intervals.

    Args:
        steps: Total optimizer steps; a larger budget on the same run directory continues.
        eval_every_steps: Optimizer steps between evaluations on the test split.
        log_every_steps: Optimizer steps between TensorBoard scalar writes; `0` lets
            `toolkit.train.fit` choose (about 100 points per curve).
        seed: Seed of weights and batches.
        deterministic: Enable TensorFlow op determinism (bit-identical reruns on CPU).

    Example:

    >>> TrainConfig(steps=100).eval_every_steps
    500
    """

    steps: int = setting(3000, "Total optimizer steps (the budget).", minimum=1)
    eval_every_steps: int = setting(500, "Optimizer steps between evaluations.", minimum=1)
    log_every_steps: int = setting(
        0, "Optimizer steps between TensorBoard writes; 0 picks about 100 points per curve.",
        minimum=0,
    )
    seed: int = setting(0, "Seed of the weights and of the batch order.", minimum=0)
    deterministic: bool = setting(
        True, "Enable TensorFlow op determinism so reruns are bit-identical on CPU."
    )


@dataclasses.dataclass(frozen=True)
class CallbacksConfig:
    """The `[callbacks]` table, reserved: it takes no keys yet.

    Checkpointing and the NaN guard (issue 3) will add their keys here; until then any key in it
    is reported as unknown.

    Example:

    >>> CallbacksConfig()
    CallbacksConfig()
    """


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """The `[tune]` table, reserved: it takes no keys yet.

    `toolkit tune` will read its search space from here; until then any key in it is reported as
    unknown.

    Example:

    >>> TuneConfig()
    TuneConfig()
    """


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A complete, validated training recipe.

    Build one with `toolkit.recipe.load_recipe(path)`, or directly in Python.

    Args:
        name: Name of the recipe (the file stem by default); names the default run directory.
        data: The `[data]` table.
        model: The `[model]` table.
        optimizer: The `[optimizer]` table.
        train: The `[train]` table.
        callbacks: The reserved `[callbacks]` table.
        tune: The reserved `[tune]` table.

    Example:

    >>> Recipe(name="default").model.name
    'convnet'
    """

    name: str = "recipe"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    train: TrainConfig = TrainConfig()
    callbacks: CallbacksConfig = CallbacksConfig()
    tune: TuneConfig = TuneConfig()


# Table name -> dataclass, in the order they are written to `recipe.toml`.
TABLES: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "train": TrainConfig,
    "callbacks": CallbacksConfig,
    "tune": TuneConfig,
}


class KeyInfo(NamedTuple):
    """One recipe key as the schema declares it (see `iter_keys`)."""

    key: str
    type: Any
    default: Any
    help: str
    choices: tuple
    minimum: float | None


def iter_keys() -> Iterator[KeyInfo]:
    """Yields every recipe key, as `"table.key"`, with its type, default and help.

    Returns:
        An iterator of `KeyInfo`, table by table in `TABLES` order.

    Example:

    >>> [info.key for info in iter_keys()][:3]
    ['data.name', 'data.batch_size', 'data.sampling']
    """
    for table, cls in TABLES.items():
        for field in dataclasses.fields(cls):
            yield KeyInfo(
                key=f"{table}.{field.name}",
                type=field.type,
                default=field.default,
                help=field.metadata["help"],
                choices=field.metadata["choices"],
                minimum=field.metadata["minimum"],
            )
