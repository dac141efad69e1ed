"""The recipe schema: every key a recipe may hold, its type, default and one-line help.

A recipe is a tree of frozen dataclasses, one per TOML table: `[data]`, `[model]`, `[optimizer]`,
`[train]`, `[callbacks]` and `[tune]` (the search of `toolkit tune`, in
`toolkit.recipe.tune_table`). Each field is declared with `setting()` (`toolkit.recipe.setting`),
which records its help text and, where it applies, its allowed choices and lower bound; the
loader (`toolkit.recipe.load`) and the `toolkit train --help` key list read them from here, so
this module (with the two it imports its tables and entries from) defines the recipe language.

TOML has no null, so an integer `0` or an empty string means "derive it" or "off" where the help
says so (for example `model.num_outputs = 0` takes the number of classes from the data). Three
keys hold nested values: `data.augment`, a list of `AugmentStep` tables, `data.sources`, one
`SourceConfig` per `[data.sources.<head>]` table, and `tune.space`, one `SearchDimension` per
`[tune.space]` entry (`toolkit.recipe.entries`; every name is importable from here too).

Example:

>>> from toolkit.recipe.schema import Recipe, TrainConfig
>>> recipe = Recipe(name="quick", train=TrainConfig(steps=200))
>>> recipe.train.steps, recipe.optimizer.name, recipe.data.sampling
(200, 'adam', 'iid')
"""

import dataclasses

from toolkit.recipe.entries import AugmentStep, SearchDimension, SourceConfig
from toolkit.recipe.setting import setting
from toolkit.recipe.tune_table import TuneConfig

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
