import io
import json
import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest
import tensorflow as tf

from toolkit.data import ShardDirectory, endless, read_shard, write_shard
from toolkit.data.shard_formats import shard_format
from toolkit.errors import DataError

OLD = time.time() - 3600  # an mtime old enough for any min_age_seconds


def _shard(shard_id, rows, features=3):
    """Examples that say where they come from: x[:, 0] = shard id, x[:, 1] = row."""
    x = np.zeros((rows, features), "float32")
    x[:, 0] = shard_id
    x[:, 1] = np.arange(rows)
    x[:, 2:] = (shard_id * 1000 + np.arange(rows))[:, None] % 97
    return x, np.full(rows, shard_id, "int64")


def _write(directory, name, shard_id, rows, *, age=True):
    path = os.path.join(str(directory), name)
    suffix = os.path.splitext(name)[1]
    staging = os.path.join(str(directory), "staging" + (suffix if shard_format(name) else ".npz"))
    write_shard(staging, _shard(shard_id, rows))
    os.replace(staging, path)  # any name, even a temporary one
    if age:
        os.utime(path, (OLD, OLD))
    return path


def _size(source, step):
    return int(source.size_at(tf.constant(step, tf.int64)))


def _assert_valid(batch):
    x, y = batch
    np.testing.assert_array_equal(x[:, 0], y)  # no example mixes two shards
    np.testing.assert_array_equal(x[:, 2], (y * 1000 + x[:, 1]) % 97)


@pytest.mark.parametrize("suffix", [".npz", ".tfrecord", ".csv"])
def test_shard_formats_round_trip(tmp_path, suffix):
    path = str(tmp_path / f"part{suffix}")
    x, y = _shard(4, 6)
    weights = np.linspace(0, 1, 6).astype("float32")
    write_shard(path, (x, y, weights))
    read = read_shard(path)
    for expected, got in zip((x, y, weights), read):
        np.testing.assert_allclose(got, expected)
        assert got.dtype == expected.dtype
    assert not [name for name in os.listdir(tmp_path) if name != f"part{suffix}"]  # no temp left


def test_reads_every_format_and_weighs_shards_by_examples(tmp_path):
    _write(tmp_path, "a.npz", 1, 10)
    _write(tmp_path, "b.tfrecord", 2, 30)
    _write(tmp_path, "c.csv", 3, 60)
    source = ShardDirectory(str(tmp_path))
    assert source.shard_names == ["a.npz", "b.tfrecord", "c.csv"]
    assert source.num_examples is None and _size(source, 0) == 100
    batches = list(endless(source, 50, seed=0).take(40).as_numpy_iterator())
    for batch in batches:
        _assert_valid(batch)
    counts = np.bincount(np.concatenate([y for _, y in batches]), minlength=4)[1:] / 2000
    np.testing.assert_allclose(counts, [0.1, 0.3, 0.6], atol=0.04)


def test_new_shards_join_at_the_next_rescan_and_sizes_stay_pure(tmp_path):
    _write(tmp_path, "a.npz", 1, 10)
    source = ShardDirectory(str(tmp_path), rescan_every_steps=5)
    assert [_size(source, step) for step in range(5)] == [10] * 5
    _write(tmp_path, "b.npz", 2, 20)
    assert _size(source, 3) == 10  # the past does not change
    assert _size(source, 5) == 30 and _size(source, 9) == 30
    _write(tmp_path, "c.npz", 3, 5)
    assert _size(source, 17) == 35  # rescans 10 and 15 run first: c joined at step 10
    assert _size(source, 9) == 30 and _size(source, 10) == 35 and _size(source, 0) == 10


def test_half_written_shards_are_skipped_until_complete(tmp_path):
    _write(tmp_path, "a.npz", 1, 10)
    source = ShardDirectory(str(tmp_path), rescan_every_steps=1, min_age_seconds=30)
    _write(tmp_path, "b.npz.tmp", 2, 10)
    _write(tmp_path, ".c.npz", 3, 10)
    _write(tmp_path, "d.npz.partial", 4, 10)
    young = _write(tmp_path, "e.npz", 5, 10, age=False)  # still being written, for all we know
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # skipping an incomplete shard is silent
        assert _size(source, 1) == 10
    os.utime(young, (OLD, OLD))
    assert _size(source, 2) == 20
    assert source.shard_names == ["a.npz", "e.npz"]


def test_corrupt_shards_are_reported_skipped_and_retried_when_rewritten(tmp_path):
    _write(tmp_path, "a.npz", 1, 10)
    source = ShardDirectory(str(tmp_path), rescan_every_steps=1)
    buffer = io.BytesIO()
    np.savez(buffer, **dict(zip(("x", "y"), _shard(2, 10))))
    good = buffer.getvalue()
    bad = tmp_path / "b.npz"
    bad.write_bytes(good[: len(good) // 2])  # truncated: what a crashed writer leaves
    os.utime(bad, (OLD, OLD))
    (tmp_path / "c.tfrecord").write_bytes(b"\x00garbage" * 10)
    os.utime(tmp_path / "c.tfrecord", (OLD, OLD))
    with pytest.warns(UserWarning, match=r"Skipping shard 'b.npz' .* cannot be read") as record:
        assert _size(source, 1) == 10
    assert any("'c.tfrecord'" in str(w.message) for w in record)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported once, not at every rescan
        assert _size(source, 2) == 10
    bad.write_bytes(good)
    os.utime(bad, (OLD + 1, OLD + 1))
    assert _size(source, 3) == 20


def test_mismatched_and_vanished_shards_are_reported_and_never_stop_the_run(tmp_path):
    a = _write(tmp_path, "a.npz", 1, 10)
    source = ShardDirectory(str(tmp_path), rescan_every_steps=1)
    path = str(tmp_path / "b.npz")
    write_shard(path, (np.zeros((4, 5), "float32"), np.zeros(4, "int64")))
    os.utime(path, (OLD, OLD))
    with pytest.warns(UserWarning, match=r"'b.npz' .* are .*float32\[5\].* first shard's are"):
        assert _size(source, 1) == 10
    os.remove(a)
    with pytest.warns(UserWarning, match=r"Shard 'a.npz' vanished .* stay in the pool"):
        assert _size(source, 2) == 10
    x, y = source.gather(tf.constant([0, 9], tf.int64))
    assert y.numpy().tolist() == [1, 1]  # still gathered from memory


def test_errors_for_a_missing_directory_and_no_shards(tmp_path):
    with pytest.raises(DataError, match=r"needs an existing directory. Received: path="):
        ShardDirectory(str(tmp_path / "nope"))
    _write(tmp_path, "a.npz.tmp", 1, 3)
    with pytest.raises(DataError, match=r"found no complete shard in .* expected files ending in"):
        ShardDirectory(str(tmp_path))
    with pytest.raises(DataError, match=r"`rescan_every_steps` must be a positive integer"):
        ShardDirectory(str(tmp_path), rescan_every_steps=0)


def test_resume_replays_the_recorded_shards(tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    data.mkdir()
    run.mkdir()
    manifest = str(run / "shards.jsonl")
    _write(data, "a.npz", 1, 10)
    source = ShardDirectory(str(data), rescan_every_steps=3, manifest_path=manifest)
    for step, shard_id in ((3, 2), (6, 3), (9, 4)):
        _size(source, step - 1)
        _write(data, f"s{shard_id}.npz", shard_id, 7 * shard_id)
    first = list(endless(source, 16, seed=5).take(12).as_numpy_iterator())
    entries = [json.loads(line) for line in open(manifest)]
    # The pipeline prefetches: it may have rescanned at later steps too.
    assert [e["step"] for e in entries][:4] == [0, 3, 6, 9]
    assert [e["num_examples"] for e in entries][:4] == [10, 24, 45, 73]
    assert entries[1]["added"][0]["name"] == "s2.npz"
    # More shards arrive; the resumed run still replays exactly what the first run drew.
    _write(data, "s5.npz", 5, 50)
    _write(data, "0first.npz", 6, 50)  # sorts first: must not shift any recorded index
    resumed_source = ShardDirectory(str(data), rescan_every_steps=3, manifest_path=manifest)
    resumed = list(endless(resumed_source, 16, seed=5, start_step=4).take(8).as_numpy_iterator())
    for original, again in zip(first[4:], resumed):
        np.testing.assert_array_equal(original[0], again[0])
        np.testing.assert_array_equal(original[1], again[1])
    beyond = entries[-1]["step"] + 3  # beyond the record: the new shards join
    assert _size(resumed_source, beyond) == entries[-1]["num_examples"] + 100


def test_resume_warns_when_a_recorded_shard_is_gone(tmp_path):
    manifest = str(tmp_path / "m.jsonl")
    data = tmp_path / "data"
    data.mkdir()
    _write(data, "a.npz", 1, 10)
    b = _write(data, "b.npz", 2, 10)
    ShardDirectory(str(data), manifest_path=manifest)
    os.remove(b)
    with pytest.warns(UserWarning, match=r"'b.npz' of manifest .* cannot be read again"):
        assert _size(ShardDirectory(str(data), manifest_path=manifest), 0) == 10


_WRITER = textwrap.dedent(
    """
    import io, os, sys, time
    import numpy as np
    directory, count = sys.argv[1], int(sys.argv[2])
    for shard_id in range(1, count + 1):
        rows = 20 + 5 * shard_id
        x = np.zeros((rows, 3), "float32")
        x[:, 0] = shard_id
        x[:, 1] = np.arange(rows)
        x[:, 2] = (shard_id * 1000 + np.arange(rows)) % 97
        y = np.full(rows, shard_id, "int64")
        final = os.path.join(directory, f"shard{shard_id:03d}.npz")
        if shard_id % 2:  # the right way: temporary name, then rename
            np.savez(final + ".tmp.npz", x=x, y=y)
            os.replace(final + ".tmp.npz", final)
        else:  # in place, slowly: the reader sees a growing, unreadable file
            buffer = io.BytesIO()
            np.savez(buffer, x=x, y=y)
            payload = buffer.getvalue()
            with open(final, "wb") as file:
                file.write(payload[: len(payload) // 2])
                file.flush()
                time.sleep(0.3)
                file.write(payload[len(payload) // 2:])
        time.sleep(0.05)
    """
)


def test_a_writer_process_adds_shards_while_a_reader_samples(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _write(data, "shard000.npz", 0, 20)
    manifest = str(tmp_path / "manifest.jsonl")
    count = 8
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(data), str(count)])
    source = ShardDirectory(
        str(data), rescan_every_steps=2, manifest_path=manifest, min_age_seconds=0.1
    )
    seen, batches = set(), []
    with warnings.catch_warnings():
        # A half-written in-place shard may be reported as unreadable; the run goes on.
        warnings.simplefilter("ignore")
        for step, batch in enumerate(endless(source, 32, seed=2).as_numpy_iterator()):
            _assert_valid(batch)
            batches.append(batch)
            seen.update(batch[1].tolist())
            if writer.poll() is not None and len(seen) == count + 1 or step > 20_000:
                break
            time.sleep(0.002)
    assert writer.wait(timeout=60) == 0
    assert seen == set(range(count + 1))
    # Every shard, even those written in place, was loaded whole, never half-written.
    added = [s for line in open(manifest) for s in json.loads(line)["added"]]
    assert sorted(s["name"] for s in added) == [f"shard{i:03d}.npz" for i in range(count + 1)]
    for shard in added[1:]:
        assert shard["num_examples"] == 20 + 5 * int(shard["name"][5:8])
    resumed = ShardDirectory(str(data), rescan_every_steps=2, manifest_path=manifest)
    start = len(batches) // 2
    again = endless(resumed, 32, seed=2, start_step=start).take(len(batches) - start)
    for original, replayed in zip(batches[start:], again.as_numpy_iterator()):
        np.testing.assert_array_equal(original[0], replayed[0])
