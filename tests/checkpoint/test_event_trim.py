"""trim_events: event files cut back to a restored step, read with CRC checks, rewritten atomically.

Every file here is a real event file written by TensorBoard's writer (through `ScalarWriter`) and
read back with TensorBoard's `EventAccumulator`; damage is done to its bytes.
"""

import os
import re
import warnings

import pytest
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from toolkit.callbacks.scalar_writer import ScalarWriter
from toolkit.checkpoint.event_trim import trim_events

STEPS = (10, 20, 30, 40, 50)


def _write_run(log_dir) -> str:
    writer = ScalarWriter(os.fspath(log_dir))
    for step in STEPS:
        writer.write({"loss": step / 10}, step)
        writer.write({"by_examples/loss": step / 10}, step * 8)
    writer.close()
    (name,) = [name for name in os.listdir(log_dir) if "tfevents" in name]
    return os.path.join(log_dir, name)


def _steps(log_dir) -> dict:
    accumulator = EventAccumulator(os.fspath(log_dir), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: [event.step for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def _records(path) -> list:
    """The records, read with CRC checks; raises `DataLossError` on damage."""
    return [record.numpy() for record in tf.data.TFRecordDataset(path)]


def _offsets(path) -> list:
    """The byte offset of each record: 8 length bytes, 4 CRC, the data, 4 CRC."""
    offsets = [0]
    for record in _records(path):
        offsets.append(offsets[-1] + 16 + len(record))
    return offsets


def _flip_byte(path, position) -> None:
    with open(path, "r+b") as file:
        file.seek(position)
        byte = file.read(1)[0]
        file.seek(position)
        file.write(bytes([byte ^ 0x40]))


def test_drops_what_was_logged_after_the_restored_step(tmp_path):
    _write_run(tmp_path)
    assert trim_events(os.fspath(tmp_path), step=30, examples=240) == 4
    assert _steps(tmp_path) == {"loss": [10, 20, 30], "by_examples/loss": [80, 160, 240]}


def test_a_file_with_nothing_to_drop_is_not_rewritten(tmp_path):
    path = _write_run(tmp_path)
    before = os.stat(path)
    assert trim_events(os.fspath(tmp_path), step=50, examples=400) == 0
    after = os.stat(path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("where", ["length", "length CRC", "data", "data CRC"])
def test_a_truncated_last_record_is_dropped_silently(tmp_path, where):
    path = _write_run(tmp_path)
    offsets = _offsets(path)
    start, end = offsets[-2], offsets[-1]
    size = {"length": start + 5, "length CRC": start + 10, "data": start + 14,
            "data CRC": end - 2}[where]
    with open(path, "r+b") as file:
        file.truncate(size)  # where a writer killed mid-write leaves the file's end
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trim_events(os.fspath(tmp_path), step=100, examples=800) == 0
    assert os.path.getsize(path) == start
    assert len(_records(path)) == len(offsets) - 2  # every record but the cut one, CRCs valid
    assert _steps(tmp_path) == {"loss": list(STEPS), "by_examples/loss": [80, 160, 240, 320]}


@pytest.mark.parametrize("where", ["length", "length CRC", "data", "data CRC"])
def test_a_record_failing_its_crc_keeps_the_records_before_it_and_warns_once(tmp_path, where):
    path = _write_run(tmp_path)
    offsets = _offsets(path)
    # Record 0 is the file version, then loss@10, by_examples/loss@80, loss@20 (record 3).
    start, end = offsets[3], offsets[4]
    position = {"length": start + 2, "length CRC": start + 9, "data": start + 14,
                "data CRC": end - 2}[where]
    _flip_byte(path, position)
    with pytest.raises(tf.errors.DataLossError, match="corrupted record"):
        _records(path)
    with pytest.warns(UserWarning, match=re.escape(f"Event file {path!r} is damaged: the record "
                                                   f"at byte {start} fails its CRC check. Kept "
                                                   f"the 3 records before it")):
        assert trim_events(os.fspath(tmp_path), step=100, examples=800) == 0
    assert os.path.getsize(path) == start
    assert _steps(tmp_path) == {"loss": [10], "by_examples/loss": [80]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # The file is sound now: no second warning.
        assert trim_events(os.fspath(tmp_path), step=100, examples=800) == 0


def test_damage_past_the_first_read_batches_keeps_every_good_record(tmp_path):
    writer = ScalarWriter(os.fspath(tmp_path))
    for step in range(1, 2501):
        writer.write({"loss": 1.0}, step)
    writer.close()
    (path,) = [os.path.join(tmp_path, name) for name in os.listdir(tmp_path)]
    offsets = _offsets(path)
    _flip_byte(path, offsets[2345] + 14)  # record 2345 (loss@2345) is read in the third batch
    with pytest.warns(UserWarning, match="Kept the 2345 records before it"):
        assert trim_events(os.fspath(tmp_path), step=10_000, examples=0) == 0
    assert len(_records(path)) == 2345 and os.path.getsize(path) == offsets[2345]


def test_damage_and_trimming_together(tmp_path):
    path = _write_run(tmp_path)
    offsets = _offsets(path)
    with open(path, "r+b") as file:
        file.truncate(offsets[-1] - 3)  # by_examples/loss@400 is cut
    assert trim_events(os.fspath(tmp_path), step=20, examples=160) == 5
    assert _steps(tmp_path) == {"loss": [10, 20], "by_examples/loss": [80, 160]}


def test_a_failed_rewrite_leaves_the_event_file_as_it_was(tmp_path, monkeypatch):
    path = _write_run(tmp_path)
    with open(path, "rb") as file:
        before = file.read()

    def broken_replace(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        trim_events(os.fspath(tmp_path), step=20, examples=160)
    with open(path, "rb") as file:
        assert file.read() == before
    assert os.listdir(tmp_path) == [os.path.basename(path)]


def test_event_files_of_skipped_and_hidden_names_are_left_alone(tmp_path):
    kept = _write_run(tmp_path / "checkpoints")
    with open(kept, "rb") as file:
        before = file.read()
    assert trim_events(os.fspath(tmp_path), step=20, examples=160) == 0
    with open(kept, "rb") as file:
        assert file.read() == before
