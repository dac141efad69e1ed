import os
import pathlib
import runpy

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_top_to_bottom(path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOOLKIT_EXAMPLE_STEPS", "40")
    monkeypatch.setenv("TOOLKIT_EXAMPLE_RUN_DIR", str(tmp_path / "run"))
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert "final:" in out
    assert any((tmp_path / "run").rglob("events.out.tfevents.*"))
