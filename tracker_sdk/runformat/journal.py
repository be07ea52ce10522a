"""Journal segments: append-only files of framed records.

A frame is ``[u32 length][u32 crc32][msgpack body]`` (little-endian); the CRC covers the
length bytes and the body, so a flipped length byte is caught too. Bodies are encoded and
decoded by :mod:`.records` only; a frame whose checksum holds but whose record breaks the
schema raises InvalidRecordError with file, offset and field. A frame that fails its
check with no valid frame after it is a torn tail (a crash during the last append) and is
ignored; one with valid frames after it is corruption and is reported with file and offset.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Iterator

from ..errors import CorruptJournalError, InvalidRecordError
from . import records
from .records import Record

HEADER = struct.Struct("<II")
MAX_RECORD_BYTES = 64 * 1024 * 1024
SEGMENT_SUFFIX = ".seg"


def encode_frame(record: Record) -> bytes:
    body = records.encode(record)
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
    """Return (body, end) for a frame at offset whose checksum holds, else (None, reason)."""
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
    return body, end


def decode_frame_body(path: Path, offset: int, body) -> Record:
    """The record of a checked frame; a schema violation names the file, offset and field."""
    return records.decode(bytes(body), where=f"journal record in {path} at byte offset {offset}")


def _has_valid_frame_after(data: memoryview, start: int) -> bool:
    for offset in range(start + 1, len(data) - HEADER.size + 1):
        body, _ = _frame_at(data, offset)
        if body is not None:
            try:
                records.decode(bytes(body))
            except InvalidRecordError:  # a checksum that holds by chance on garbage
                continue
            return True
    return False


def read_segment(path: Path, *, is_last: bool) -> tuple[list[Record], int]:
    """Read every record of one segment; return (records, offset of the valid end).

    A torn tail is tolerated only in the last segment; earlier segments were closed
    cleanly, so any bad frame there is corruption.
    """
    with open(path, "rb") as fh:
        data = memoryview(fh.read())
    out: list[Record] = []
    offset = 0
    while offset < len(data):
        body, end_or_reason = _frame_at(data, offset)
        if body is None:
            if is_last and not _has_valid_frame_after(data, offset):
                return out, offset
            raise CorruptJournalError(path, offset, end_or_reason)
        out.append(decode_frame_body(path, offset, body))
        offset = end_or_reason
    return out, offset


def read_journal(journal_dir: Path) -> Iterator[Record]:
    segments = list_segments(journal_dir)
    for i, seg in enumerate(segments):
        found, _ = read_segment(seg, is_last=i == len(segments) - 1)
        yield from found


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
