"""The human and machine summaries of a run: `report.md` and `summary.json`.

`summary.json` holds at least `steps`, `examples_seen`, `wall_seconds` and the final test metrics
under `eval`; `report.md` shows the same numbers with the conventions check (`toolkit.lint`) and
the resolved recipe. Both are written atomically and durably (`toolkit.atomic_write`).

Example:

>>> import json, tempfile, pathlib
>>> from toolkit.recipe.report import write_summary
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> path = write_summary(folder, {"steps": 10, "examples_seen": 320, "wall_seconds": 1.5,
...                               "eval": {"accuracy": 0.5}})
>>> json.loads(path.read_text())["eval"]["accuracy"]
0.5
"""

import json
import os
from pathlib import Path
from typing import Any

from toolkit import atomic_write
from toolkit.recipe.dump import dumps_recipe
from toolkit.recipe.schema import Recipe

__all__ = ["format_report", "write_report", "write_summary"]

_REQUIRED = ("steps", "examples_seen", "wall_seconds", "eval")


def write_summary(run_dir: str | os.PathLike, summary: dict) -> Path:
    """Writes `summary.json` into the run directory atomically.

    Args:
        run_dir: The run directory.
        summary: JSON-serializable dict with at least `steps`, `examples_seen`, `wall_seconds`
            and `eval` (metric name -> final test value).

    Returns:
        The path written.

    Raises:
        ValueError: If a required entry is missing (a bug in the caller).

    Example:

    >>> import tempfile
    >>> write_summary(tempfile.mkdtemp(), {"steps": 1, "examples_seen": 32, "wall_seconds": 0.5,
    ...                                     "eval": {"loss": 0.7}}).name
    'summary.json'
    >>> write_summary(tempfile.mkdtemp(), {"steps": 1})
    Traceback (most recent call last):
    ...
    ValueError: summary.json needs examples_seen, wall_seconds, eval. Received keys: ['steps'].
    """
    missing = [key for key in _REQUIRED if key not in summary]
    if missing:
        raise ValueError(
            f"summary.json needs {', '.join(missing)}. Received keys: {sorted(summary)}."
        )
    text = json.dumps(summary, indent=2, sort_keys=False, allow_nan=True) + "\n"
    return atomic_write.write_text(Path(run_dir) / "summary.json", text)


def _lint_lines(model: Any) -> list[str]:
    from toolkit.lint import lint

    findings = lint(model)
    if not findings:
        return ["No findings: the model follows the conventions (ReLU hidden layers, biases, "
                "variance-scaling init, linear head with a from_logits loss)."]
    return [f"- **{f.severity}** `{f.code}` in `{f.layer}`: {f.message}" for f in findings]


def format_report(recipe: Recipe, summary: dict, lint_lines: list[str]) -> str:
    """Returns the Markdown text of `report.md`.

    Args:
        recipe: The recipe that ran.
        summary: The run's summary (see `write_summary`).
        lint_lines: Markdown lines describing the `toolkit.lint` findings.

    Returns:
        The report.

    Example:

    >>> text = format_report(Recipe(name="demo"), {"steps": 5, "examples_seen": 320,
    ...     "wall_seconds": 2.0, "eval": {"loss": 0.25}}, ["No findings."])
    >>> text.splitlines()[0]
    '# Run report: demo'
    """
    lines = [
        f"# Run report: {recipe.name}",
        "",
        f"- Optimizer steps: {summary['steps']}",
        f"- Examples seen: {summary['examples_seen']}"
        + (f" ({summary['epochs']:.2f} epoch-equivalents)"
           if summary.get("epochs") is not None else ""),
        f"- Wall time: {summary['wall_seconds']:.1f} s",
        "",
        "## Final evaluation (test split)",
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {name} | {value:.6g} |" for name, value in summary["eval"].items()],
        "",
        *_validation_lines(summary),
        *_diagnosis_lines(summary),
        *_measurement_lines(summary),
        *_data_check_lines(summary),
        "## Conventions check (toolkit.lint)",
        "",
        *lint_lines,
        "",
        "## Recipe",
        "",
        "```toml",
        dumps_recipe(recipe).rstrip(),
        "```",
        "",
        *_plot_lines(summary),
        "View the curves with `tensorboard --logdir` on this directory.",
    ]
    return "\n".join(lines) + "\n"


def _validation_lines(summary: dict) -> list[str]:
    """The held-out validation split's final metrics (`data.validation_examples`), if any."""
    if not summary.get("validation"):
        return []
    count = summary.get("validation_examples", "?")
    return [
        f"## Final evaluation (validation split: {count} held-out training examples)",
        "",
        "Training evaluated on this split; the test split above was evaluated once, at the end.",
        "",
        "| metric | value |",
        "| --- | --- |",
        *[f"| {name} | {value:.6g} |" for name, value in summary["validation"].items()],
        "",
    ]


def _measurement_lines(summary: dict) -> list[str]:
    """The `## Batch size and sharpness` section: the `[callbacks]` probes' last values."""
    noise, sharp = summary.get("gradient_noise"), summary.get("sharpness")
    if not noise and not sharp:
        return []
    lines = ["## Batch size and sharpness", ""]
    if noise:
        lines.append(f"- Gradient noise: {noise['summary']} ({noise['probes']} probes; "
                     f"`gradient_noise/` in TensorBoard).")
    if sharp:
        edge = ("at the edge of stability" if sharp["ratio"] is not None and sharp["ratio"] > 0.5
                else "well below the edge of stability")
        lines.append(f"- Sharpness at step {sharp['step']}: top Hessian eigenvalue "
                     f"{sharp['eigenvalue']:.4g} against 2/learning rate = "
                     f"{sharp['threshold']:.4g} ({edge}; `sharpness/` in TensorBoard).")
    return lines + [""]


def _plot_lines(summary: dict) -> list[str]:
    """The `## Plots` section: the PNGs of `plots/` (`toolkit.report.write_run_plots`)."""
    if not summary.get("plots"):
        return []
    images = [f"![{path.rsplit('/', 1)[-1][:-4]}]({path})" for path in summary["plots"]]
    return ["## Plots", "", *images, ""]


def _diagnosis_lines(summary: dict) -> list[str]:
    """The `## Diagnosis` section: the loss-curve findings (`toolkit.callbacks.LossCurveDiagnosis`)."""
    if "diagnosis" not in summary:
        return []
    findings = summary["diagnosis"]
    if not findings:
        return ["## Diagnosis", "", "Too few points to judge the loss curves.", ""]
    bullets = [f"- **{f['code']}** (step {f['step']}): {f['message']} {f['action']}"
               for f in findings]
    return ["## Diagnosis", "", *bullets, "",
            "Codes and what to do: docs/diagnosis.md.", ""]


def _data_check_lines(summary: dict) -> list[str]:
    """The `## Data check` section, when the run checked its data (`data.check` not off)."""
    if "data_check" not in summary:
        return []
    findings = summary["data_check"] or ["No findings: no NaN/Inf, labels in range, no constant "
                                         "or badly scaled features, classes balanced."]
    bullets = [f"- {line}" if summary["data_check"] else line for line in findings]
    return ["## Data check (toolkit.data.check)", "", *bullets, ""]


def write_report(run_dir: str | os.PathLike, recipe: Recipe, summary: dict, model: Any) -> Path:
    """Writes `report.md` (recipe, final metrics, time, lint summary) atomically.

    Args:
        run_dir: The run directory.
        recipe: The recipe that ran.
        summary: The run's summary (see `write_summary`).
        model: The trained, compiled model, checked with `toolkit.lint`.

    Returns:
        The path written.

    Example:

    >>> import tempfile, keras
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    >>> summary = {"steps": 5, "examples_seen": 160, "wall_seconds": 1.0, "eval": {"loss": 1.1}}
    >>> path = write_report(tempfile.mkdtemp(), Recipe(name="demo"), summary, model)
    >>> "## Conventions check (toolkit.lint)" in path.read_text()
    True
    """
    text = format_report(recipe, summary, _lint_lines(model))
    return atomic_write.write_text(Path(run_dir) / "report.md", text)
