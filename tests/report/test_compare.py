"""`toolkit compare` and `compare_runs` on real runs: table, CSV, PNGs, globs, search dirs."""

import csv
import json
import shutil

import numpy as np
import pytest
from matplotlib import image

from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.cli import main
from toolkit.errors import DataError
from toolkit.recipe.load import load_recipe
from toolkit.recipe.run import run_recipe, smoke_recipe
from toolkit.report import read_run
from toolkit.report.compare import compare_runs
from toolkit.report.run_dirs import find_run_dirs

PLOTS = ["steps.png", "examples.png", "wall_seconds.png", "epochs.png"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two 20-step digits runs that differ only in `data.batch_size`, under one folder."""
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for batch_size in (16, 64):
        recipe = smoke_recipe(load_recipe("digits_mlp", [
            "train.deterministic=false", f"data.batch_size={batch_size}", "data.check=off"]))
        paths[batch_size] = run_recipe(recipe, root / f"bs{batch_size}" / "default",
                                       verbose=0).run_dir
    return paths


def read_csv(path):
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_compare_writes_the_table_and_one_plot_per_axis(runs, tmp_path, capsys):
    out = tmp_path / "compare"
    assert main(["compare", str(runs[16]), str(runs[64]), "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    header = next(line for line in stdout.splitlines() if line.startswith("| run |"))
    assert header.split(" | ")[-1] == "data.batch_size |"  # the only key that differs
    rows = [line for line in stdout.splitlines() if line.startswith("| bs")]
    assert sorted(row.split(" | ")[-1] for row in rows) == ["16 |", "64 |"]
    assert f"Plots: {out} ({', '.join(PLOTS)})" in stdout
    page = (out / "compare.md").read_text()
    assert page.count("| bs") == 2 and "Curves, one figure per axis." in page

    table = read_csv(out / "compare.csv")
    assert [row["run"] for row in table] in (["bs16/default", "bs64/default"],
                                              ["bs64/default", "bs16/default"])
    accuracies = [float(row["eval.accuracy"]) for row in table]
    assert accuracies == sorted(accuracies, reverse=True)  # best first
    by_size = {int(row["data.batch_size"]): row for row in table}
    for batch_size, run_dir in runs.items():
        summary = json.loads((run_dir / "summary.json").read_text())
        assert int(by_size[batch_size]["steps"]) == summary["steps"] == 20
        assert float(by_size[batch_size]["eval.loss"]) == summary["eval"]["loss"]
        assert by_size[batch_size]["run_dir"] == str(run_dir)
    assert int(by_size[64]["examples_seen"]) == 4 * int(by_size[16]["examples_seen"])

    for name in PLOTS:
        pixels = image.imread(out / name)
        assert pixels.ndim == 3 and pixels.shape[2] == 4 and pixels.shape[1] > pixels.shape[0]
        assert len(np.unique(np.round(pixels[..., :3].reshape(-1, 3), 2), axis=0)) > 20
    # The examples axis, read back: the same steps, four times the examples.
    small, large = (read_run(runs[size]).series("loss", "validation") for size in (16, 64))
    assert small.steps.tolist() == large.steps.tolist() == [10, 20]
    np.testing.assert_allclose(large.examples, 4 * small.examples)


def test_globs_and_search_directories_find_every_run(runs, tmp_path, capsys):
    root = runs[16].parent.parent
    expected = [runs[16], runs[64]]
    assert find_run_dirs([str(root / "*" / "default")]) == expected
    assert find_run_dirs([str(root / "**" / "default")]) == expected
    assert find_run_dirs([root]) == expected  # a search directory: runs nested below it
    assert find_run_dirs([runs[64], str(root / "*" / "default")]) == [runs[64], runs[16]]
    assert main(["compare", str(root), "--out", str(tmp_path), "--json", "--metric", "loss"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metric"] == "loss" and result["sort_column"] == "eval.loss"
    losses = [row["eval.loss"] for row in result["rows"]]
    assert len(losses) == 2 and losses == sorted(losses)  # lower is better for a loss
    assert result["hyperparameters"] == ["data.batch_size"]
    assert [p.rsplit("/", 1)[-1] for p in result["plots"]] == PLOTS


def test_a_run_is_not_searched_below(tmp_path):
    run = tmp_path / "search" / "trials" / "trial_0"
    (run / "checkpoints" / "nested").mkdir(parents=True)
    (run / "recipe.toml").write_text("")
    (run / "checkpoints" / "nested" / "recipe.toml").write_text("")
    events = tmp_path / "search" / "fit_run" / "validation"
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1.host").write_bytes(b"")
    (tmp_path / "search" / "oracle.json").write_text("{}")  # KerasTuner's files beside them
    assert find_run_dirs([tmp_path / "search"]) == [events.parent, run]


def test_runs_without_summary_or_recipe_come_from_the_events(runs, tmp_path):
    # A run of `toolkit.fit(run_dir=...)`: events only, no summary.json and no recipe.toml.
    fit_run = tmp_path / "runs" / "fit_run"
    shutil.copytree(runs[16], fit_run, ignore=shutil.ignore_patterns(
        "summary.json", "recipe.toml", "checkpoints"))
    failed = tmp_path / "runs" / "failed_trial"  # a trial that failed before logging
    failed.mkdir()
    shutil.copy(runs[16] / "recipe.toml", failed)
    with pytest.warns(UserWarning, match="failed_trial.*holds no TensorBoard scalar events"):
        comparison = compare_runs([runs[16], runs[64], tmp_path / "runs"], tmp_path / "out")
    assert len(comparison.rows) == 3
    rows = {row["run"]: row for row in comparison.rows}
    summary = json.loads((runs[16] / "summary.json").read_text())
    from_events, from_summary = rows["runs/fit_run"], rows["bs16/default"]
    assert from_events["steps"] == summary["steps"]
    assert from_events["examples_seen"] == summary["examples_seen"]
    assert from_events["epochs"] == summary["epochs"]
    assert from_events["eval.accuracy"] == pytest.approx(summary["eval"]["accuracy"])
    assert from_events["data.batch_size"] is None and from_summary["data.batch_size"] == 16
    assert "| runs/fit_run | 20 | 320 | 1.25 |" in comparison.to_markdown()


@pytest.mark.parametrize("arguments, message", [
    (["no_such_dir"], "The run directory 'no_such_dir' does not exist. Pass run directories"),
    (["nothing_here/*"], "The pattern 'nothing_here/\\*' matches nothing. Check it with `ls"),
    (["empty"], "'empty' holds no run directory \\(a folder with a recipe.toml"),
    (["RUN", "--metric", "f1"], "No run logged the metric 'f1'. The runs logged: \\['accuracy'"),
])
def test_user_mistakes_exit_2_with_one_line(arguments, message, runs, tmp_path, capsys,
                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    arguments = [str(runs[16]) if argument == "RUN" else argument for argument in arguments]
    assert main(["compare", *arguments]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    assert lines[0].startswith("toolkit: error: ")
    with pytest.raises(DataError, match=message):
        compare_runs(arguments[:1], tmp_path / "out", metric=(arguments[2:] or [None])[0])
    assert not (tmp_path / "compare").exists()  # nothing written by a mistake


def test_files_are_skipped_and_no_run_is_a_clear_error(runs, tmp_path):
    # `toolkit compare runs/bs16/*` as the shell expands it: files beside the run directories.
    with pytest.warns(UserWarning, match="summary.json' is a file, not a run directory"):
        assert find_run_dirs([runs[16] / "summary.json", runs[16]]) == [runs[16]]
    with pytest.warns(UserWarning), pytest.raises(DataError, match="names no run directory"):
        find_run_dirs([runs[16] / "summary.json"])
    with pytest.raises(DataError, match="No run directory was given"):
        find_run_dirs([])
    assert main(["compare"]) == 2  # argparse: RUN_DIR is required


def test_many_runs_are_all_tabled_and_the_best_ten_plotted(tmp_path):
    for index in range(12):
        writer = ScalarWriter(str(tmp_path / "search" / f"trial_{index:02d}" / "validation"))
        for step in (10, 20):
            writer.write({"loss": (index + 1) / step, "accuracy": index / 12}, step)
        writer.close()
    comparison = compare_runs([tmp_path / "search"], tmp_path / "out")
    assert [row["run"] for row in comparison.rows] == [f"trial_{i:02d}" for i in range(11, -1, -1)]
    assert [path.name for path in comparison.plots] == PLOTS[:3]  # no dataset size: no epochs
    page = (tmp_path / "out" / "compare.md").read_text()
    assert "Curves of the first 10 runs, one figure per axis." in page
    assert page.count("| trial_") == 12
