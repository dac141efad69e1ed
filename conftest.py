"""Test set-up for `tests/` and the doctests in `toolkit/`: CPU only, quiet, and nothing written
outside pytest's temporary directories (the dataset cache and `tempfile` included)."""

import os
import tempfile

import pytest

# Tests run on the CPU, quietly, whatever the machine has.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True, scope="session")
def _scratch_directories(tmp_path_factory):
    """The generated-dataset cache and every `tempfile` directory live under pytest's basetemp
    (subprocesses inherit both through the environment)."""
    cache = tmp_path_factory.mktemp("toolkit-cache")
    scratch = tmp_path_factory.mktemp("tmp")
    saved = {name: os.environ.get(name) for name in ("TOOLKIT_CACHE_DIR", "TMPDIR")}
    os.environ["TOOLKIT_CACHE_DIR"] = str(cache)
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = str(scratch)
    yield
    tempfile.tempdir = None
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
