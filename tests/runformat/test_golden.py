"""Golden files pin the on-disk run format (format_version 1) byte for byte.

Regenerate only on a deliberate format change: TRACKER_REGEN_GOLDEN=1 pytest tests/runformat/test_golden.py
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tracker_sdk.runformat import (FORMAT_VERSION, RunWriter, encode_frame, encode_metadata, make_column, npy_chunks,
                                   open_run)

GOLDEN = Path(__file__).parent / "golden" / "run_v1"
RUN_ID = "0123456789abcdef0123456789abcdef"
EMB_ID = "fedcba9876543210fedcba9876543210"
RED_ID = "00112233445566778899aabbccddeeff"


def write_golden_run(run_dir: Path) -> None:
    writer = RunWriter(run_dir, info={"run_id": RUN_ID, "project": "golden", "name": "pinned", "workspace": None,
                                      "created": 1700000000.0, "status": "finished", "sdk": "tracker_sdk"})
    t = 1700000000.0
    writer.append("parameter", {"name": "lr", "value": 0.01, "step": None}, timestamp=t)
    writer.append("metric", {"name": "loss", "value": 0.25, "step": 1, "epoch": 0}, timestamp=t + 1)
    writer.append("other", {"name": "note", "value": "tab\there ✓"}, timestamp=t + 2)
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    vec_sha, _ = writer.write_blob(npy_chunks(vectors))
    columns = [make_column("label", ["a", "b\tc", "d\ne", "日本"]), make_column("n", [1, 2, 3, 4])]
    meta_sha, _ = writer.write_blob([encode_metadata(columns, 4)])
    writer.append("embedding", {
        "id": EMB_ID, "title": "hidden", "group": "g", "step": 1, "n": 4, "dim": 3,
        "vectors": {"sha256": vec_sha, "dtype": "float32", "shape": [4, 3]},
        "metadata": {"sha256": meta_sha, "columns": ["label", "n"], "types": ["str", "int"], "header": True},
        "sprite": None}, timestamp=t + 3)
    coords_sha, _ = writer.write_blob(npy_chunks(vectors[:, :2] * 0.5))
    writer.append("reduction", {
        "id": RED_ID, "embedding_id": EMB_ID, "method": "pca", "n_components": 2, "params": {"random_state": 0},
        "fitted_on": None, "timeline": None, "coords": {"sha256": coords_sha, "shape": [4, 2]},
        "quality": {"trustworthiness": 1.0}}, timestamp=t + 4)
    writer.append("end", {"status": "finished"}, timestamp=t + 5)
    writer.close()


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock" and "tmp" not in p.relative_to(root).parts}


@pytest.mark.skipif(not os.environ.get("TRACKER_REGEN_GOLDEN"), reason="only on a deliberate format change")
def test_regenerate_golden():
    shutil.rmtree(GOLDEN, ignore_errors=True)
    write_golden_run(GOLDEN)
    assert (GOLDEN / "run.json").is_file()


def test_writer_reproduces_golden_bytes(tmp_path):
    write_golden_run(tmp_path / "run")
    assert _tree(tmp_path / "run") == _tree(GOLDEN)


def test_golden_run_reads_back():
    run = open_run(GOLDEN)
    assert run.info["format_version"] == FORMAT_VERSION == 1
    assert (run.run_id, run.project, run.name, run.status) == (RUN_ID, "golden", "pinned", "finished")
    assert run.parameters == {"lr": 0.01} and run.others == {"note": "tab\there ✓"}
    assert run.metrics[0]["value"] == 0.25 and run.metrics[0]["t"] == 1700000001.0
    (emb,) = run.embeddings
    np.testing.assert_array_equal(emb.vectors, np.arange(12, dtype=np.float32).reshape(4, 3))
    assert emb.columns == {"label": ["a", "b\tc", "d\ne", "日本"], "n": [1, 2, 3, 4]}
    (red,) = emb.reductions
    assert red.method == "pca" and red.coords.shape == (4, 2)
    run.verify()


def test_frame_layout_is_length_crc_msgpack():
    frame = encode_frame({"seq": 0, "kind": "end"})
    assert frame.hex() == "0f000000" + frame[4:8].hex() + "82a3736571" "00" "a46b696e64" "a3656e64"
    import zlib
    assert int.from_bytes(frame[4:8], "little") == zlib.crc32(frame[8:], zlib.crc32(frame[:4]))


def test_golden_journal_is_one_segment_of_six_frames():
    (segment,) = sorted((GOLDEN / "journal").glob("*.seg"))
    assert segment.name == "00000000.seg"
    assert [r["seq"] for r in open_run(GOLDEN).records] == [0, 1, 2, 3, 4, 5]
