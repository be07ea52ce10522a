"""Journal framing: torn tails are ignored, corruption in the middle is reported with file and offset."""

import numpy as np
import pytest

from tracker_sdk import CorruptJournalError, Experiment, RunLockedError, open_run
from tracker_sdk.runformat import RunWriter
from tracker_sdk.runformat.records import EmbeddingRecord, EndRecord, MetricRecord


def _logged_run(root, n_metrics=50):
    with Experiment(project_name="p", url=str(root)) as exp:
        for i in range(n_metrics):
            exp.log_metric("m", i, step=i)
        exp.log_embedding(np.eye(3), ["a", "b", "c"], reduce=None)
    return exp.run_dir


def _segment(run_dir):
    (seg,) = sorted((run_dir / "journal").glob("*.seg"))
    return seg


@pytest.mark.parametrize("cut", [1, 5, 9, 20])
def test_torn_final_record_is_ignored(runs_root, cut):
    run_dir = _logged_run(runs_root)
    seg = _segment(run_dir)
    full = len(open_run(run_dir).records)
    seg.write_bytes(seg.read_bytes()[:-cut])
    run = open_run(run_dir)
    assert len(run.records) == full - 1
    assert isinstance(run.records[-1], EmbeddingRecord)


def test_garbage_appended_after_a_crash_is_ignored(runs_root):
    run_dir = _logged_run(runs_root)
    seg = _segment(run_dir)
    seg.write_bytes(seg.read_bytes() + b"\x07\x00\x00\x00\xff\xff")
    assert isinstance(open_run(run_dir).records[-1], EndRecord)


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7])
def test_flipped_byte_in_the_middle_names_file_and_offset(runs_root, where):
    run_dir = _logged_run(runs_root)
    seg = _segment(run_dir)
    data = bytearray(seg.read_bytes())
    pos = int(len(data) * where)
    data[pos] ^= 0x40
    seg.write_bytes(bytes(data))
    with pytest.raises(CorruptJournalError, match=rf"corrupt journal record in .*{seg.name} at byte offset \d+") as info:
        open_run(run_dir)
    assert info.value.path == str(seg)
    assert info.value.offset <= pos


def test_reopening_trims_a_torn_tail_and_starts_a_new_segment(runs_root):
    run_dir = _logged_run(runs_root, n_metrics=3)
    seg = _segment(run_dir)
    seg.write_bytes(seg.read_bytes()[:-3])
    n_before = len(open_run(run_dir).records)
    writer = RunWriter(run_dir)
    writer.append(MetricRecord(name="m", value=9, step=9))
    writer.close()
    run = open_run(run_dir)
    assert len(run.records) == n_before + 1
    assert [r.seq for r in run.records] == list(range(n_before + 1))
    assert len(list((run_dir / "journal").glob("*.seg"))) == 2


def test_one_writer_at_a_time(runs_root):
    exp = Experiment(project_name="p", url=str(runs_root))
    with pytest.raises(RunLockedError, match="being written by another process"):
        RunWriter(exp.run_dir)
    exp.end()
    RunWriter(exp.run_dir).close()


def test_replay_ignores_duplicates_and_refuses_gaps(runs_root, tmp_path):
    source = open_run(_logged_run(runs_root, n_metrics=2))
    replica = RunWriter(tmp_path / "replica", info=source.info)
    assert [replica.replay(r) for r in source.records[:2]] == [True, True]
    assert replica.replay(source.records[0]) is False
    with pytest.raises(ValueError, match="leaves a gap"):
        replica.replay(source.records[3])
    replica.close()
