"""The recipe schema: every key a recipe may hold, its type, default and one-line help.

A recipe is a tree of frozen dataclasses, one per TOML table: `[data]`, `[model]`, `[optimizer]`,
`[train]`, `[callbacks]` and `[tune]` (the search of `toolkit tune`). Each field is
declared with `setting()`, which records its help text and, where it applies, its allowed choices
and lower bound; the loader (`toolkit.recipe.load`) and the `toolkit train --help` key list read
them from here, so this module is the single place that defines the recipe language.

TOML has no null, so an integer `0` or an empty string means "derive it" or "off" where the help
says so (for example `model.num_outputs = 0` takes the number of classes from the data). Three
keys hold nested values: `data.augment`, a list of `AugmentStep` tables, `data.sources`, one
`SourceConfig` per `[data.sources.<head>]` table, and `tune.space`, one `SearchDimension` per
`[tune.space]` entry.

Example:

>>> from toolkit.recipe.schema import Recipe, TrainConfig
>>> recipe = Recipe(name="quick", train=TrainConfig(steps=200))
>>> recipe.train.steps, recipe.optimizer.name, recipe.data.sampling
(200, 'adam', 'iid')
"""

import dataclasses
from typing import Any

__all__ = [
    "AugmentStep",
    "CallbacksConfig",
    "DataConfig",
    "ModelConfig",
    "OptimizerConfig",
    "Recipe",
    "SearchDimension",
    "SourceConfig",
    "TABLES",
    "TrainConfig",
    "TuneConfig",
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


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """The `[data]` table: which dataset and how batches are drawn from it.

    Args:
        name: A built-in dataset (`toolkit.data.builtin_names()`) or `"package.module:function"`.
        batch_size: Examples per optimizer step (from step 0, with a batch-size schedule).
        batch_growth_steps: Steps where the batch grows (`toolkit.train.BatchSizeSchedule`).
        batch_growth_factor: The growth at each of them.
        sampling: `"iid"` or `"passes"` (see `toolkit.data.endless`).
        seed: Seed given to `toolkit.data.load`: the generator of MNIST-1D and heavy_tailed, the
            split of digits; `0` gives the standard data.
        max_train_examples: Use only the first N training examples; `0` uses all.
        max_eval_examples: Evaluate on only the first N test examples; `0` uses all.
        validation_examples: Hold out N training examples, drawn by a permutation seeded with
            `seed`, and evaluate on them during training instead of on the test split (which is
            then evaluated once, at the end); `0` evaluates on the test split.
        split, eval_split, data_dir, in_memory, download: Where a TFDS dataset
            (`name = "tfds:mnist"`) is read from; see `toolkit.data.tfds_source`.
        augment: `AugmentStep`s applied in order to every training batch (endless random
            augmentation, S0.4).
        shards_dir: A growing directory of shards to train on (`toolkit.data.ShardDirectory`);
            `name` still gives the test split, the task and the class count.
        rescan_every_steps: Steps between rescans of `shards_dir`.
        check: What `toolkit.data.check` findings do: `"error"`, `"warn"` or `"off"`.
        sources: `SourceConfig`s of a multi-head model, one dataset and one loss per head (S0.1).

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
    batch_growth_steps: tuple[int, ...] = setting(
        (), "Batch-size schedule (S1.6, instead of learning-rate decay): the steps where the "
        "batch grows by batch_growth_factor; examples seen stay the exact sum.",
    )
    batch_growth_factor: int = setting(
        2, "Batch-size schedule: growth at each of batch_growth_steps.", minimum=1
    )
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
    validation_examples: int = setting(
        0,
        "Hold out N training examples (seeded by data.seed) to evaluate on during training; "
        "the test split is then evaluated once, at the end. 0: evaluate on the test split. "
        "Searches (toolkit tune) select on this split.",
        minimum=0,
    )
    split: str = setting("train", 'TFDS (name = "tfds:NAME"): training split, e.g. "train[:90%]".')
    eval_split: str = setting(
        "test", 'TFDS: evaluation split, decoded into memory (slice a large one: "test[:10000]").'
    )
    data_dir: str = setting("", "TFDS: directory of the prepared data; empty for TFDS's default.")
    in_memory: bool | str = setting(
        "auto",
        "TFDS: true decodes the training split into memory, false reads it by random access "
        "(ArrayRecord format), auto picks memory below 1 GiB.",
        choices=("auto", True, False),
    )
    download: bool = setting(
        False, "TFDS: download and prepare a missing dataset (off: never touch the network)."
    )
    augment: tuple[AugmentStep, ...] = setting(
        (),
        'Endless random augmentation applied in order, e.g. [{name = "random_shift", '
        'max_shift = 4}, {name = "gaussian_noise", stddev = 0.05}]; names: random_shift, '
        "random_scale, gaussian_noise (1-D signals), random_flip, random_crop, "
        "random_brightness (images); arguments as in toolkit.data.augment.",
    )
    shards_dir: str = setting(
        "",
        "Train on a growing directory of .npz/.tfrecord/.csv shards instead of the train split "
        "of data.name (which still gives the test split and classes); empty: off.",
    )
    rescan_every_steps: int = setting(
        1000, "shards_dir: optimizer steps between rescans for new shards.", minimum=1
    )
    check: str = setting(
        "error",
        "toolkit.data.check on the data before training, once: error stops at the first error "
        "(NaN/Inf, empty data, negative weights), warn warns once per fault and trains on the "
        "data as it is, off skips it; findings go to report.md. Labels outside the head always "
        "stop the run.",
        choices=("error", "warn", "off"),
    )
    sources: tuple[SourceConfig, ...] = setting(
        (),
        "[data.sources.<head>] tables (keys: name, weight), one dataset and one loss per model "
        "head, mixed IID by weight; replaces data.name.",
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
        learning_rate: Step size (at step 0, with a schedule).
        schedule: `"constant"`, `"step"`, `"exponential"` or `"cosine"`
            (`toolkit.train.schedules.learning_rate`).
        decay_steps: Steps of the `"step"` schedule's decays.
        decay_factor: The `"step"` schedule's multiplier; the `"cosine"` one's final fraction.
        decay_rate: The `"exponential"` schedule's multiplier per step.
        final_anneal_fraction: Fraction of the budget's end annealed (`FinalAnneal`); `0`: off.
        final_anneal_factor: Multiplier reached at the end of the anneal.

    Example:

    >>> OptimizerConfig().learning_rate
    0.001
    """

    name: str = setting("adam", "adam (S2.1) or sgd.", choices=("adam", "sgd"))
    learning_rate: float = setting(1e-3, "Step size of the optimizer.", minimum=0.0)
    schedule: str = setting(
        "constant",
        "Learning rate over the steps: constant; step (times decay_factor at each of "
        "decay_steps); exponential (times decay_rate every step); cosine (to "
        "learning_rate * decay_factor at train.steps).",
        choices=("constant", "step", "exponential", "cosine"),
    )
    decay_steps: tuple[int, ...] = setting(
        (), "schedule = step: the steps where the learning rate is multiplied by decay_factor."
    )
    decay_factor: float = setting(
        0.1, "schedule = step: multiplier at each decay step; cosine: final fraction.",
        minimum=0.0,
    )
    decay_rate: float = setting(
        0.9995, "schedule = exponential: multiplier per optimizer step.", minimum=0.0
    )
    final_anneal_fraction: float = setting(
        0.0, "Final anneal (S2.9): ramp the learning rate down over this fraction of the "
        "budget's end; 0: off.", minimum=0.0,
    )
    final_anneal_factor: float = setting(
        0.1, "Final anneal: learning-rate multiplier reached at the last step.", minimum=0.0
    )


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
        checkpoint_every_steps: Optimizer steps between checkpoints in the run directory; `0`
            lets `toolkit.train.fit` choose (a multiple of `eval_every_steps`, 250 to 1000).
        strategy: The `tf.distribute` strategy (`toolkit.distribute.make_strategy`).
        precision: The Keras dtype policy (`toolkit.distribute.set_precision`).

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
    checkpoint_every_steps: int = setting(
        0, "Optimizer steps between checkpoints in the run directory; 0 picks 250 to 1000.",
        minimum=0,
    )
    strategy: str = setting(
        "auto", "tf.distribute strategy: auto (a TPU, else several GPUs mirrored, else one "
        "device), default, mirrored, multi_worker (refused: Keras fit fails under several "
        "workers) or tpu. data.batch_size is the global batch.",
        choices=("auto", "default", "mirrored", "multi_worker", "tpu"),
    )
    precision: str = setting(
        "float32", "Keras dtype policy: float32, mixed_float16 (GPU; loss scaling) or "
        "mixed_bfloat16 (TPU, recent CPUs).",
        choices=("float32", "mixed_float16", "mixed_bfloat16"),
    )


@dataclasses.dataclass(frozen=True)
class CallbacksConfig:
    """The `[callbacks]` table: optional measurements a run makes while it trains.

    Args:
        gradient_noise_every_steps: Steps between `toolkit.callbacks.GradientNoiseScale` probes
            (the critical batch size, S1.5); `0`: off.
        sharpness_every_steps: Steps between `toolkit.callbacks.Sharpness` probes (the top
            Hessian eigenvalue next to 2/η); `0`: off.
        restore_best: A `val_<metric>`: end on the weights of the best evaluation by it
            (`toolkit.callbacks.EarlyStopping` that never stops); `""`: the last weights.

    Example:

    >>> CallbacksConfig().gradient_noise_every_steps
    0
    """

    gradient_noise_every_steps: int = setting(
        0, "Optimizer steps between gradient-noise-scale probes (critical batch size, in "
        "report.md); 0: off. About 2-5% of training time at 250.", minimum=0,
    )
    sharpness_every_steps: int = setting(
        0, "Optimizer steps between sharpness probes (top Hessian eigenvalue against 2/learning "
        "rate, in report.md); 0: off.", minimum=0,
    )
    restore_best: str = setting(
        "", "End the run on the weights of its best evaluation by this metric (val_loss, "
        "val_accuracy, ...; S1.4), kept across resumes; a continued run goes on from where "
        "training was. Empty: the last weights.",
    )


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


@dataclasses.dataclass(frozen=True)
class TuneConfig:
    """The `[tune]` table: the search `toolkit tune` runs over the rest of the recipe.

    Every trial is a full run of the recipe with the `[tune.space]` values applied, in its own
    run directory under the search directory; budgets are optimizer steps.

    Args:
        tuner: KerasTuner's oracle: `"hyperband"`, `"random"` or `"bayesian"`.
        objective: What trials are ranked by: `val_<metric>` on the validation split
            (`data.validation_examples`), e.g. `"val_accuracy"`.
        direction: `"max"`, `"min"`, or `"auto"` (min for losses and errors, else max).
        max_trials: Trials of a random or Bayesian search (`0`: 10); for Hyperband, a cap
            (`0`: none, as many trials as its brackets hold).
        max_steps: Optimizer steps of a full trial; `0` takes `train.steps`.
        min_steps: Hyperband: steps of the shortest trials; `0` takes `max_steps / factor**2`.
        factor: Hyperband: the budget grows, and the trials shrink, by this factor per round.
        hyperband_iterations: Hyperband: how many times to run all of its brackets.
        seed: Seed of the oracle's choices.
        space: `SearchDimension`s, one per `[tune.space]` entry.

    Example:

    >>> TuneConfig().tuner, TuneConfig().objective
    ('hyperband', 'val_accuracy')
    """

    tuner: str = setting(
        "hyperband",
        "KerasTuner oracle: hyperband (step budgets; promoted trials continue from their "
        "parent's checkpoint), random or bayesian.",
        choices=("hyperband", "random", "bayesian"),
    )
    objective: str = setting(
        "val_accuracy",
        "Trial ranking: val_<metric> on the held-out validation split (data.validation_examples), "
        "e.g. val_accuracy or val_loss.",
    )
    direction: str = setting(
        "auto", "max, min, or auto (min for losses and errors, max otherwise).",
        choices=("auto", "max", "min"),
    )
    max_trials: int = setting(
        0, "Trials of a random or bayesian search (0: 10); a cap for hyperband (0: none, "
        "as many as its brackets hold).", minimum=0
    )
    max_steps: int = setting(
        0, "Optimizer steps of a full trial; 0 takes train.steps.", minimum=0
    )
    min_steps: int = setting(
        0, "hyperband: optimizer steps of the shortest trials; 0 takes max_steps / factor^2.",
        minimum=0,
    )
    factor: int = setting(
        3, "hyperband: budget growth and trial reduction per round.", minimum=2
    )
    hyperband_iterations: int = setting(
        1, "hyperband: how many times to run all of its brackets.", minimum=1
    )
    seed: int = setting(1, "Seed of the oracle's choices.", minimum=1)
    space: tuple[SearchDimension, ...] = setting(
        (),
        '[tune.space] entries: "table.key" = {min = ..., max = ..., sampling = "log"} (a range; '
        "integers when both bounds are, step optional) or {choices = [...]}.",
    )


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
        callbacks: The `[callbacks]` table.
        tune: The `[tune]` table, read by `toolkit tune` only.

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
