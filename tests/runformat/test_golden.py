"""Golden files pin the on-disk run format byte for byte.

``golden/run_v2`` is what a real Experiment writes today (the clock, perf counter and uuids
patched so the output is deterministic); ``golden/run_v1`` is the previous format, which
must keep reading. Regenerate only on a deliberate format change:

    TRACKER_REGEN_GOLDEN=1 .venv/bin/python -m pytest tests/runformat/test_golden.py -k regenerate
"""

import itertools
import os
import shutil
import sys
import time
import uuid
import zlib
from pathlib import Path

import msgpack
import numpy as np
import pytest

from tracker_sdk import Experiment
from tracker_sdk.runformat import FORMAT_VERSION, encode_frame, open_run, records
from tracker_sdk.runformat.format import READABLE_VERSIONS
from tracker_sdk.runformat.journal import HEADER

GOLDEN = Path(__file__).parent / "golden"
GOLDEN_V1 = GOLDEN / "run_v1"
GOLDEN_V2 = GOLDEN / "run_v2"
T0 = 1700000000.0


def _sdk_clock(real, start: float, step: float):
    """A clock that ticks by ``step`` per call from tracker_sdk; other callers (imports,
    logging, libraries) get the real one, so their calls cannot shift the pinned times."""
    ticks = itertools.count()

    def clock():
        if sys._getframe(1).f_globals.get("__name__", "").startswith("tracker_sdk"):
            return start + next(ticks) * step
        return real()
    return clock


def write_golden_run(root: Path, monkeypatch) -> Path:
    """Log one run of every record kind through the public API; returns its directory."""
    ids = itertools.count(1)
    monkeypatch.setattr(time, "time", _sdk_clock(time.time, T0, 1.0))
    monkeypatch.setattr(time, "perf_counter", _sdk_clock(time.perf_counter, 0.0, 0.0))  # durations of 0 s
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=next(ids)))
    # axis-aligned points: PCA's components are unit vectors and every coordinate is exact
    vectors = np.array([[4, 0, 0], [-4, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float32)
    labels = ["a", "a", "b", "b", "c\tç", "c\tç"]
    images = np.arange(6 * 2 * 2, dtype=np.uint8).reshape(6, 2, 2) * 10
    exp = Experiment(project_name="golden", url=str(root), experiment_name="pinned")
    exp.log_parameters({"lr": 0.01, "layers": {"n": 2}})
    exp.log_metric("loss", 0.25, step=1, epoch=0)
    exp.log_metric("acc", 3, step=1)
    exp.log_other("note", "tab\there ✓")
    exp.add_tag("golden")
    exp.log_asset(b"weights", file_name="w.bin", step=1, metadata={"kind": "checkpoint"})
    exp.log_embedding(vectors, labels, image_data=images, image_size=(2, 2), title="hidden", group="g", step=0,
                      reduce_background=False)
    exp.log_embedding(vectors * 2, labels, title="hidden", group="g", step=1, reduce=None)
    exp.reduce_group("g", method="pca", fit_on="last", n_components=2, background=False)
    exp.analyze()
    exp.analyze_dynamics("g", k=2)
    exp.end()
    return exp.run_dir


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock" and "tmp" not in p.relative_to(root).parts}


def _frames(run_dir: Path) -> list[bytes]:
    """The msgpack bodies of a run's journal, split by the frame headers alone."""
    bodies = []
    for segment in sorted((run_dir / "journal").glob("*.seg")):
        data, offset = segment.read_bytes(), 0
        while offset < len(data):
            length, crc = HEADER.unpack_from(data, offset)
            body = data[offset + HEADER.size: offset + HEADER.size + length]
            assert zlib.crc32(body, zlib.crc32(data[offset: offset + 4])) == crc
            bodies.append(body)
            offset += HEADER.size + length
    return bodies


@pytest.mark.skipif(not os.environ.get("TRACKER_REGEN_GOLDEN"), reason="only on a deliberate format change")
def test_regenerate_golden(tmp_path, monkeypatch):
    run_dir = write_golden_run(tmp_path, monkeypatch)
    shutil.rmtree(GOLDEN_V2, ignore_errors=True)
    shutil.copytree(run_dir, GOLDEN_V2, ignore=shutil.ignore_patterns(".lock", "tmp"))
    assert (GOLDEN_V2 / "run.json").is_file()


def test_experiment_reproduces_golden_bytes(tmp_path, monkeypatch):
    run_dir = write_golden_run(tmp_path, monkeypatch)
    written, golden = _tree(run_dir), _tree(GOLDEN_V2)
    assert sorted(written) == sorted(golden)
    changed = [name for name in golden if written[name] != golden[name]]
    assert not changed, f"the SDK no longer writes the golden bytes of {changed}"


def test_golden_run_holds_every_record_kind_and_field():
    run = open_run(GOLDEN_V2)
    assert run.info["format_version"] == FORMAT_VERSION == 2
    assert {r.__struct_config__.tag for r in run.records} == set(records.KINDS)
    assert run.parameters == {"lr": 0.01, "layers.n": 2} and run.others == {"note": "tab\there ✓", "tag": "golden"}
    assert [(m.name, m.value, m.step, m.epoch) for m in run.metrics] == [("loss", 0.25, 1, 0), ("acc", 3, 1, None)]
    (asset,) = run.assets
    assert run.blob_path(asset.sha256).read_bytes() == b"weights" and asset.metadata == {"kind": "checkpoint"}
    first, second = run.embeddings
    assert first.sprite.n == 6 and first.sprite.tile_size == [2, 2] and second.sprite is None
    default_pca, timeline_first = first.reductions
    assert default_pca.fitted_on is None and default_pca.timeline is None and default_pca.n_components == 3
    (timeline_second,) = second.reductions
    assert timeline_first.timeline == timeline_second.timeline is not None
    assert timeline_second.fitted_on == records.FittedOn(embedding_id=second.id, step=1, embedding_ids=[second.id])
    assert "explained_variance_ratio" in timeline_second.quality and "seconds" in timeline_second.quality
    assert [c["name"] for c in first.column_types()][:1] == ["label"] and "outlier_score" in first.columns
    assert {r.method for r in (default_pca, timeline_first, timeline_second)} == {"pca"}
    run.verify()


def test_journal_bytes_are_plain_msgpack():
    """Any msgpack reader gets the records: maps whose first key is kind, then seq and t."""
    run = open_run(GOLDEN_V2)
    bodies = _frames(GOLDEN_V2)
    assert len(bodies) == len(run.records)
    for body, record in zip(bodies, run.records):
        plain = msgpack.unpackb(body, raw=False)
        assert list(plain)[:3] == ["kind", "seq", "t"]
        assert plain == records.to_builtins(record)
        assert records.encode(record) == body


def test_previous_format_version_reads():
    assert 1 in READABLE_VERSIONS
    run = open_run(GOLDEN_V1)
    assert run.info["format_version"] == 1
    assert (run.project, run.name, run.status) == ("golden", "pinned", "finished")
    assert run.parameters == {"lr": 0.01} and run.others == {"note": "tab\there ✓"}
    assert run.metrics[0].value == 0.25 and run.metrics[0].t == 1700000001.0
    (emb,) = run.embeddings
    np.testing.assert_array_equal(emb.vectors, np.arange(12, dtype=np.float32).reshape(4, 3))
    assert emb.columns == {"label": ["a", "b\tc", "d\ne", "日本"], "n": [1, 2, 3, 4]} and emb.header is True
    (red,) = emb.reductions
    assert red.method == "pca" and red.coords.shape == (4, 2) and red.record.coords.dtype == "float32"
    assert red.quality == {"trustworthiness": 1.0}
    run.verify()
    # version 1 wrote seq first; the same struct comes back from either layout
    first_v1 = msgpack.unpackb(_frames(GOLDEN_V1)[0], raw=False)
    assert list(first_v1)[:3] == ["seq", "t", "kind"]
    assert records.from_builtins(first_v1) == run.records[0]


def test_frame_layout_is_length_crc_msgpack():
    frame = encode_frame(records.EndRecord(seq=0, t=1.5))
    body = msgpack.packb({"kind": "end", "seq": 0, "t": 1.5, "status": "finished"}, use_bin_type=True)
    assert frame[8:] == body and int.from_bytes(frame[:4], "little") == len(body)
    assert int.from_bytes(frame[4:8], "little") == zlib.crc32(frame[8:], zlib.crc32(frame[:4]))
