"""Atomic writes: the final name only ever holds a complete file, and the file is durable."""

import os
import stat

import pytest

from toolkit import atomic_write


def test_write_text_replaces_without_leftovers(tmp_path):
    target = tmp_path / "sub" / "summary.json"
    atomic_write.write_text(target, "old")
    assert atomic_write.write_text(str(target), "new é") == target
    assert target.read_text(encoding="utf-8") == "new é"
    assert sorted(os.listdir(target.parent)) == ["summary.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_write_bytes_round_trips(tmp_path):
    target = tmp_path / "blob.bin"
    atomic_write.write_bytes(target, bytes(range(256)))
    assert target.read_bytes() == bytes(range(256))


def test_the_temporary_file_never_appears_under_the_final_name(tmp_path):
    target = tmp_path / "model.keras"
    atomic_write.write_text(target, "old")
    with atomic_write.temporary_path(target) as temporary:
        assert temporary != target and temporary.parent == target.parent
        assert temporary.suffix == ".keras" and temporary.name.startswith(".")
        assert "model" not in temporary.name  # no tool that matches names picks it up
        assert not temporary.exists()
        temporary.write_text("new, half written")
        assert target.read_text() == "old"
    assert target.read_text() == "new, half written"
    assert sorted(os.listdir(tmp_path)) == ["model.keras"]


def test_a_failure_inside_the_block_leaves_the_old_content(tmp_path):
    target = tmp_path / "recipe.toml"
    atomic_write.write_text(target, "good")
    with pytest.raises(RuntimeError, match="writer crashed"):
        with atomic_write.temporary_path(target) as temporary:
            temporary.write_text("partial")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "good"
    assert sorted(os.listdir(tmp_path)) == ["recipe.toml"]


def test_a_failed_rename_leaves_the_old_content(tmp_path, monkeypatch):
    target = tmp_path / "recipe.toml"
    atomic_write.write_text(target, "good")

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write.write_text(target, "bad")
    assert target.read_text() == "good"
    assert sorted(os.listdir(tmp_path)) == ["recipe.toml"]


def test_a_block_that_writes_nothing_fails_and_leaves_nothing(tmp_path):
    target = tmp_path / "report.md"
    with pytest.raises(FileNotFoundError):
        with atomic_write.temporary_path(target):
            pass
    assert not target.exists() and os.listdir(tmp_path) == []


def test_the_file_is_fsynced_before_the_rename_and_the_directory_after(tmp_path, monkeypatch):
    calls = []
    real_fsync, real_replace = os.fsync, os.replace

    def recording_fsync(descriptor):
        calls.append(("fsync", os.fstat(descriptor).st_ino))
        real_fsync(descriptor)

    def recording_replace(source, destination):
        calls.append(("replace", os.fspath(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    target = tmp_path / "summary.json"
    atomic_write.write_text(target, "{}")
    # The renamed file keeps its inode: the first fsync was the new content's.
    assert calls == [("fsync", target.stat().st_ino), ("replace", str(target)),
                     ("fsync", tmp_path.stat().st_ino)]
