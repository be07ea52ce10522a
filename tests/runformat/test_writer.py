"""RunWriter: errors from the package's tree, no lock left behind, and failed appends undone."""

import fcntl
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tracker_sdk import Experiment, open_run
from tracker_sdk.errors import (CorruptJournalError, InvalidArgumentError, RunClosedError, SeqGapError,
                                StorageFullError, TrackerError)
from tracker_sdk.runformat import RunWriter, journal
from tracker_sdk.runformat.records import MetricRecord, ParameterRecord

from smallfs import fill, small_filesystem  # tests/ is on sys.path

RUN_ID = "ab" * 16


def _writer(run_dir, n=3):
    writer = RunWriter(run_dir, info={"run_id": RUN_ID, "project": "p"})
    for i in range(n):
        writer.append(MetricRecord(name="m", value=float(i), step=i))
    return writer


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_append_after_close_raises_run_closed(tmp_path):
    writer = _writer(tmp_path / "run")
    writer.close()
    with pytest.raises(RunClosedError, match="is closed") as info:
        writer.append(MetricRecord(name="m", value=1.0))
    assert isinstance(info.value, TrackerError) and isinstance(info.value, RuntimeError)


def test_a_seq_gap_raises_seq_gap_with_the_expected_seq(tmp_path):
    source = _writer(tmp_path / "source", n=4)
    source.close()
    records = open_run(tmp_path / "source").records
    replica = RunWriter(tmp_path / "replica")
    assert replica.replay(records[0]) is True
    with pytest.raises(SeqGapError, match="record seq 2 leaves a gap: the run expects seq 1 next") as info:
        replica.replay(records[2])
    assert info.value.next_seq == 1 and isinstance(info.value, InvalidArgumentError)
    replica.close()


def test_a_corrupt_journal_raises_and_leaves_no_lock_or_file_open(tmp_path):
    run_dir = tmp_path / "run"
    _writer(run_dir, n=5).close()
    (segment,) = journal.list_segments(run_dir / "journal")
    data = bytearray(segment.read_bytes())
    data[12] ^= 0xFF  # inside the first frame's body: frames after it are whole, so this is corruption
    segment.write_bytes(bytes(data))
    before = _open_fds()
    for _ in range(2):  # the second try meets the same error, not a false "being written by another process"
        with pytest.raises(CorruptJournalError, match=r"00000000\.seg at byte offset 0: CRC mismatch"):
            RunWriter(run_dir)
    assert _open_fds() == before
    with open(run_dir / "journal" / ".lock", "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if a lock was kept


def test_reopening_without_appending_adds_no_segment(tmp_path):
    _writer(tmp_path / "run").close()
    for _ in range(3):
        RunWriter(tmp_path / "run").close()
    assert [p.name for p in journal.list_segments(tmp_path / "run" / "journal")] == ["00000000.seg"]


SHORT_WRITE_SCRIPT = textwrap.dedent("""
    import os, resource, signal, sys
    from tracker_sdk.runformat import RunWriter, journal
    from tracker_sdk.runformat.records import MetricRecord, ParameterRecord

    run_dir = sys.argv[1]
    writer = RunWriter(run_dir, info={"run_id": "ab" * 16, "project": "p"})
    for i in range(3):
        writer.append(MetricRecord(name="m", value=float(i), step=i))
    (segment,) = journal.list_segments(writer.journal_dir)
    good = os.path.getsize(segment)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit write() fails with EFBIG instead
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (good + 100, hard))  # 100 bytes land, then the write fails
    try:
        writer.append(ParameterRecord(name="big", value="x" * 5000))
    except OSError as exc:
        print("append failed:", exc.errno, "segment bytes:", os.path.getsize(segment), "good:", good)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    for i in range(3, 6):
        writer.append(MetricRecord(name="m", value=float(i), step=i))
    writer.close()
""")


def test_a_short_then_failed_append_is_cut_back_so_the_run_stays_readable(tmp_path):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", SHORT_WRITE_SCRIPT, str(run_dir)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[:3] == ["append", "failed:", "27"]  # EFBIG, after a short write of 100 bytes
    assert words[5] == words[7]  # the segment was cut back to its last whole frame
    run = open_run(run_dir)
    assert [r.seq for r in run.records] == list(range(6))
    assert [r.value for r in run.records] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0] and "big" not in run.parameters


def test_a_disk_that_fills_and_frees_keeps_the_run_readable_and_appendable(tmp_path):
    with small_filesystem(tmp_path / "mnt", "1m") as mnt:
        run_dir = mnt / "p" / RUN_ID
        writer = _writer(run_dir, n=20)
        writer.sync()
        filler = fill(mnt)
        logged, error = 20, None
        for i in range(20, 2000):  # a page of the segment may still have room: log until it fails
            try:
                writer.append(ParameterRecord(name=f"p{i}", value="v" * 512), durable=True)
                logged += 1
            except StorageFullError as exc:
                error = exc
                break
        assert error is not None and str(mnt / "p" / RUN_ID / "journal") in str(error)
        assert "free some space and retry" in str(error) and isinstance(error, OSError)
        filler.unlink()
        for i in range(50):
            writer.append(MetricRecord(name="after", value=float(i), step=i))
        writer.close()
        run = open_run(run_dir)
        assert [r.seq for r in run.records] == list(range(logged + 50))


def test_log_embedding_on_a_full_disk_raises_and_a_retry_stores_a_verified_blob(tmp_path):
    with small_filesystem(tmp_path / "mnt", "2m") as mnt:
        exp = Experiment(project_name="p", url=str(mnt / "runs"))
        exp.log_metric("loss", 1.0)
        vectors = np.random.default_rng(0).random((2000, 64), dtype=np.float32)  # 512 kB of vectors
        filler = fill(mnt)
        with pytest.raises(StorageFullError, match="no space left on the device of"):
            exp.log_embedding(vectors, list(range(2000)), reduce=None)
        filler.unlink()
        exp.log_embedding(vectors, list(range(2000)), reduce=None)
        exp.end()
        run = open_run(exp.run_dir)
        run.verify()  # every referenced blob hashes to its name
        np.testing.assert_array_equal(run.embeddings[-1].vectors, vectors)
        assert list((exp.run_dir / "blobs").rglob("*.part")) == []
