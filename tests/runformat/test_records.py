"""records.py: one codec, validation that names the field, blob references, generated docs."""

import math
import os
import re
import zlib
from pathlib import Path

import msgpack
import pytest

from tracker_sdk.errors import InvalidArgumentError, InvalidRecordError
from tracker_sdk.runformat import RunWriter, open_run, records
from tracker_sdk.runformat.journal import encode_frame

DOC = Path(__file__).resolve().parents[2] / "docs" / "run-format.md"
BEGIN, END = "<!-- records:begin -->\n", "<!-- records:end -->"
SHA = [c * 64 for c in "abcde"]
HEX = "0123456789abcdef" * 2


def _body(**fields) -> bytes:
    return msgpack.packb({"kind": "metric", "seq": 0, "t": 1.0, "name": "loss", **fields}, use_bin_type=True)


def test_run_format_doc_lists_every_kind_and_field_from_records_py():
    text = DOC.read_text(encoding="utf-8")
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    generated = records.schema_markdown()
    if os.environ.get("TRACKER_REGEN_DOCS"):
        DOC.write_text(text[:start] + generated + text[end:], encoding="utf-8")
        text = DOC.read_text(encoding="utf-8")
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    assert text[start:end] == generated, "docs/run-format.md drifted from records.py; regenerate it (see the doc)"
    for cls in records.RECORD_TYPES:
        assert f"### `{cls.__struct_config__.tag}`" in generated
        for name in cls.__struct_fields__:
            assert f"| `{name}` |" in generated


@pytest.mark.parametrize("fields, where", [
    ({"step": "three"}, r"`\$\.step`"),
    ({"step": -1}, r"`\$\.step`"),
    ({"value": True}, r"`\$\.value`"),
    ({"kind": "evil"}, r"`\$\.kind`"),
    ({"name": None}, r"`\$\.name`"),
    ({"t": math.nan}, r"t must be a finite number"),
    ({"t": math.inf}, r"t must be a finite number"),
    ({"seq": -3}, r"seq must be a non-negative integer"),
])
def test_decoding_validates_and_names_the_field(fields, where):
    with pytest.raises(InvalidRecordError, match=where):
        records.decode(_body(**fields))
    with pytest.raises(InvalidRecordError, match=where):
        records.from_builtins(msgpack.unpackb(_body(**fields)))


def test_a_missing_required_field_is_named():
    body = msgpack.packb({"kind": "asset", "seq": 4, "t": 1.0, "name": "w.bin", "size": 3})
    with pytest.raises(InvalidRecordError, match=r"record seq 4: Object missing required field `sha256`"):
        records.decode(body)


def test_nested_references_are_checked_against_the_record():
    embedding = {"kind": "embedding", "seq": 0, "t": 1.0, "id": HEX, "title": "e", "n": 4, "dim": 3,
                 "vectors": {"sha256": SHA[0], "shape": [4, 2]}, "metadata": {"sha256": SHA[1]}}
    with pytest.raises(InvalidRecordError, match=r"vectors\.shape must be \[n, dim\] = \[4, 3\]; got \[4, 2\]"):
        records.from_builtins(embedding)
    with pytest.raises(InvalidRecordError, match=r"`\$\.metadata\.sha256`"):
        records.from_builtins({**embedding, "vectors": {"sha256": SHA[0], "shape": [4, 3]},
                               "metadata": {"sha256": "../../etc/passwd"}})


def test_a_journal_frame_with_a_bad_record_names_file_offset_and_field(runs_root):
    run_dir = runs_root / "p" / HEX
    writer = RunWriter(run_dir, info={"run_id": HEX, "project": "p"})
    writer.append(records.MetricRecord(name="loss", value=1.0))
    writer.close()
    segment = next((run_dir / "journal").glob("*.seg"))
    good = segment.read_bytes()
    body = _body(step="three")
    length = len(body).to_bytes(4, "little")
    segment.write_bytes(good + length + zlib.crc32(body, zlib.crc32(length)).to_bytes(4, "little") + body)
    with pytest.raises(InvalidRecordError, match=rf"{re.escape(segment.name)} at byte offset {len(good)}.*`\$\.step`"):
        open_run(run_dir)


def test_writer_stamps_seq_and_time_and_refuses_a_non_finite_time(runs_root):
    writer = RunWriter(runs_root / "p" / HEX, info={"run_id": HEX, "project": "p"})
    first = writer.append(records.OtherRecord(name="a", value=1), timestamp=5.0)
    assert (first.seq, first.t) == (0, 5.0)
    with pytest.raises(InvalidArgumentError, match=r"t must be a finite number of seconds; got nan"):
        writer.append(records.OtherRecord(name="b", value=2), timestamp=math.nan)
    with pytest.raises(InvalidArgumentError, match=r"record must be one of ParameterRecord.*; got dict"):
        writer.append({"name": "c"})
    assert writer.append(records.EndRecord()).seq == 1  # nothing was written for the refused ones
    writer.close()
    assert [r.seq for r in open_run(runs_root / "p" / HEX).records] == [0, 1]


def test_blob_refs_of_each_record_kind():
    embedding = records.EmbeddingRecord(
        id=HEX, title="e", n=2, dim=2, vectors=records.ArrayRef(sha256=SHA[0], shape=[2, 2]),
        metadata=records.MetadataRef(sha256=SHA[1]),
        sprite=records.SpriteRef(sha256=SHA[2], n=2, tile_size=[1, 1], grid=[2, 1]))
    assert records.blob_hashes(embedding) == SHA[:3]
    assert [type(r) for r in records.blob_refs(embedding)] == [records.ArrayRef, records.MetadataRef,
                                                                records.SpriteRef]
    reduction = records.ReductionRecord(id=HEX, embedding_id=HEX, method="pca", n_components=2,
                                        coords=records.ArrayRef(sha256=SHA[3], shape=[2, 2]))
    assert records.blob_hashes(reduction) == [SHA[3]]
    asset = records.AssetRecord(name="w.bin", sha256=SHA[4], size=3)
    assert records.blob_refs(asset) == [asset]
    assert records.blob_hashes(records.ColumnsRecord(embedding_id=HEX, metadata=records.MetadataRef(sha256=SHA[1]))) \
        == [SHA[1]]
    assert records.blob_hashes(records.MetricRecord(name="loss", value=1.0)) == []


def test_frames_round_trip_through_the_one_codec():
    record = records.ReductionRecord(
        seq=7, t=2.5, id=HEX, embedding_id=HEX, method="pca", n_components=2, timeline=HEX,
        fitted_on=records.FittedOn(step="all", embedding_ids=[HEX]), quality={"trustworthiness": 0.9},
        coords=records.ArrayRef(sha256=SHA[0], shape=[3, 2]))
    frame = encode_frame(record)
    assert records.decode(frame[8:]) == record
    assert msgpack.unpackb(frame[8:])["fitted_on"] == {"embedding_id": None, "step": "all", "embedding_ids": [HEX]}


def test_batches_round_trip_and_validate():
    batch = [records.OtherRecord(seq=i, t=1.0, name="x", value=i) for i in range(3)]
    assert records.decode_batch(records.encode_batch(batch)) == batch
    with pytest.raises(InvalidRecordError, match=r"batch of records: .*`\$\[1\]\.name`"):
        records.decode_batch(msgpack.packb([msgpack.unpackb(_body()), msgpack.unpackb(_body(name=3))]))
    with pytest.raises(InvalidArgumentError, match="seq must be a non-negative integer"):
        records.encode_batch([records.EndRecord()])
