"""Journal segments: append-only files of framed records.

A frame is ``[u32 length][u32 crc32][msgpack body]`` (little-endian); the CRC covers the
length bytes and the body, so a flipped length byte is caught too. A frame that fails its
check with no valid frame after it is a torn tail (a crash during the last append) and is
ignored; one with valid frames after it is corruption and is reported with file and offset.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Iterator

import msgpack

from ..errors import CorruptJournalError

HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 64 * 1024 * 1024
SEGMENT_SUFFIX = ".seg"


def encode_frame(record: dict) -> bytes:
    body = msgpack.packb(record, use_bin_type=True)
    length = len(body).to_bytes(4, "little")
    crc = zlib.crc32(body, zlib.crc32(length))
    return length + crc.to_bytes(4, "little") + body


def segment_name(index: int) -> str:
    return f"{index:08d}{SEGMENT_SUFFIX}"


def list_segments(journal_dir: Path) -> list[Path]:
    if not journal_dir.is_dir():
        return []
    return sorted(p for p in journal_dir.iterdir() if p.name.endswith(SEGMENT_SUFFIX) and p.name[:-4].isdigit())


def _frame_at(data: memoryview, offset: int):
    """Return (record, end) for a valid frame at offset, else (None, reason)."""
    if offset + HEADER.size > len(data):
        return None, "truncated frame header"
    length, crc = HEADER.unpack_from(data, offset)
    if length > MAX_RECORD_BYTES:
        return None, f"implausible frame length {length}"
    end = offset + HEADER.size + length
    if end > len(data):
        return None, "frame runs past the end of the segment"
    body = data[offset + HEADER.size : end]
    if zlib.crc32(body, zlib.crc32(data[offset : offset + 4])) != crc:
        return None, "CRC mismatch"
    try:
        record = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # a CRC collision on garbage; treat as a bad frame
        return None, f"undecodable body ({exc})"
    return record, end


def _has_valid_frame_after(data: memoryview, start: int) -> bool:
    for offset in range(start + 1, len(data) - HEADER.size + 1):
        record, _ = _frame_at(data, offset)
        if isinstance(record, dict) and "seq" in record:
            return True
    return False


def read_segment(path: Path, *, is_last: bool) -> tuple[list[dict], int]:
    """Read every record of one segment; return (records, offset of the valid end).

    A torn tail is tolerated only in the last segment; earlier segments were closed
    cleanly, so any bad frame there is corruption.
    """
    with open(path, "rb") as fh:
        data = memoryview(fh.read())
    records: list[dict] = []
    offset = 0
    while offset < len(data):
        record, end_or_reason = _frame_at(data, offset)
        if record is None:
            if is_last and not _has_valid_frame_after(data, offset):
                return records, offset
            raise CorruptJournalError(path, offset, end_or_reason)
        records.append(record)
        offset = end_or_reason
    return records, offset


def read_journal(journal_dir: Path) -> Iterator[dict]:
    segments = list_segments(journal_dir)
    for i, seg in enumerate(segments):
        records, _ = read_segment(seg, is_last=i == len(segments) - 1)
        yield from records


class SegmentWriter:
    """Appends frames to one segment with O_APPEND; fsync is explicit and batched."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.dirty = False

    def append(self, frame: bytes) -> None:
        view = memoryview(frame)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        self.dirty = True

    def sync(self) -> None:
        if self.dirty:
            os.fsync(self.fd)
            self.dirty = False

    def close(self) -> None:
        if self.fd >= 0:
            self.sync()
            os.close(self.fd)
            self.fd = -1
