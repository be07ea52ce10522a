"""The uploader's queue is the journal: tailing it live, torn frames, corruption, the marker."""

import threading

import pytest

from tracker_sdk.errors import CorruptJournalError
from tracker_sdk.runformat import RunWriter
from tracker_sdk.runformat.journal import encode_frame, list_segments
from tracker_sdk.runformat.records import EndRecord, MetricRecord, OtherRecord
from tracker_sdk.sync.uploader import JournalTail, SyncState


def test_tail_returns_each_record_once_as_the_writer_appends(tmp_path):
    writer = RunWriter(tmp_path / "run", info={"run_id": "a" * 32})
    tail = JournalTail(tmp_path / "run" / "journal")
    assert tail.read_new() == []
    for i in range(5):
        writer.append(MetricRecord(name="loss", value=i))
    assert [r.seq for r in tail.read_new()] == [0, 1, 2, 3, 4]
    assert tail.read_new() == []
    writer.append(MetricRecord(name="loss", value=5))
    assert [r.value for r in tail.read_new()] == [5]
    writer.close()
    # a second session of the same run writes a new segment; the tail moves on to it
    writer = RunWriter(tmp_path / "run")
    writer.append(EndRecord())
    writer.close()
    assert len(list_segments(tmp_path / "run" / "journal")) == 2
    assert [r.seq for r in tail.read_new(final=True)] == [6]


def test_half_written_frame_waits_for_the_rest(tmp_path):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    frame = encode_frame(OtherRecord(seq=0, t=1.0, name="x", value=1))
    seg = journal_dir / "00000000.seg"
    seg.write_bytes(frame[:7])
    tail = JournalTail(journal_dir)
    assert tail.read_new() == []
    with open(seg, "ab") as fh:
        fh.write(frame[7:])
    assert [r.seq for r in tail.read_new()] == [0]


def test_torn_tail_is_ignored_when_final(tmp_path):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    good = encode_frame(OtherRecord(seq=0, t=1.0, name="x", value=1))
    (journal_dir / "00000000.seg").write_bytes(good + encode_frame(EndRecord(seq=1, t=1.0))[:-3])
    assert [r.seq for r in JournalTail(journal_dir).read_new(final=True)] == [0]


def test_corruption_in_the_middle_is_reported_with_file_and_offset(tmp_path):
    journal_dir = tmp_path / "journal"
    journal_dir.mkdir()
    frames = [encode_frame(OtherRecord(seq=i, t=1.0, name="x", value=i)) for i in range(3)]
    data = bytearray(b"".join(frames))
    data[len(frames[0]) + 10] ^= 0xFF  # a flipped byte inside the second frame's body
    (journal_dir / "00000000.seg").write_bytes(bytes(data))
    tail = JournalTail(journal_dir)
    assert [r.seq for r in tail.read_new()] == [0]  # live: could still be an append in flight
    with pytest.raises(CorruptJournalError, match=rf"00000000\.seg at byte offset {len(frames[0])}"):
        tail.read_new(final=True)


def test_marker_only_moves_forward_even_with_two_writers(tmp_path):
    url = "http://127.0.0.1:1"
    state = SyncState(tmp_path, url + "/")
    assert state.acknowledged() == 0
    threads = [threading.Thread(target=lambda k=k: [state.advance(v) for v in range(k, 200, 7)]) for k in range(7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert state.acknowledged() == 199
    state.advance(5)
    assert SyncState(tmp_path, url).acknowledged() == 199
    assert SyncState(tmp_path, "http://elsewhere:2").acknowledged() == 0
