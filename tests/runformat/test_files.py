"""The one blob commit: every byte written, verified from what was written, never half visible."""

import errno
import hashlib
import os
from pathlib import Path

import pytest

from tracker_sdk.errors import BlobIntegrityError, InvalidArgumentError, RunFormatError, StorageFullError
from tracker_sdk.runformat import commit_blob, verify_blob
from tracker_sdk.runformat.files import blob_path

from smallfs import fill, small_filesystem  # tests/ is on sys.path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _leftovers(run_dir: Path) -> list[str]:
    """Every temporary file of a blob commit still on disk."""
    return sorted(p.name for p in (run_dir / "blobs").rglob("*") if p.name.endswith((".part", ".tmp")))


def _short_writes(limit: int):
    """A write that never takes more than ``limit`` bytes at once (what a pipe or NFS may do)."""
    calls = []

    def write(fd, data):
        calls.append(len(data))
        return os.write(fd, data[:limit])

    return write, calls


def test_commit_streams_chunks_and_names_the_blob_by_its_hash(tmp_path):
    chunks = [b"a" * 1000, memoryview(b"b" * 3000), bytearray(b"c" * 10)]
    data = b"".join(bytes(c) for c in chunks)
    blob = commit_blob(tmp_path, chunks)
    assert blob == (_sha(data), len(data), True)
    assert blob_path(tmp_path, blob.sha256).read_bytes() == data
    assert verify_blob(tmp_path, blob.sha256) == blob_path(tmp_path, blob.sha256)
    assert _leftovers(tmp_path) == []


def test_a_second_commit_of_the_same_bytes_keeps_the_first_file(tmp_path):
    first = commit_blob(tmp_path, [b"same bytes"])
    inode = blob_path(tmp_path, first.sha256).stat().st_ino
    again = commit_blob(tmp_path, [b"same bytes"], sha256=first.sha256, size=10)
    assert again == (first.sha256, 10, False)
    assert blob_path(tmp_path, first.sha256).stat().st_ino == inode
    assert _leftovers(tmp_path) == []


def test_short_writes_are_continued_until_every_byte_is_on_disk(tmp_path):
    data = os.urandom(100_003)
    write, calls = _short_writes(4096)
    blob = commit_blob(tmp_path, [data], sha256=_sha(data), size=len(data), write=write)
    assert blob.created and blob_path(tmp_path, blob.sha256).read_bytes() == data
    assert len(calls) == -(-len(data) // 4096)  # one call per 4 KiB: each short write was continued


def test_the_temp_file_lives_beside_the_final_blob(tmp_path):
    data = b"where is my temp file"
    sha = _sha(data)
    seen = []

    def write(fd, chunk):
        seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return os.write(fd, chunk)

    commit_blob(tmp_path, [data], sha256=sha, write=write)
    assert seen and all(p.parent == blob_path(tmp_path, sha).parent for p in seen)
    assert seen[0].name.startswith(".") and seen[0].name.endswith(".part")


def test_a_hash_mismatch_stores_nothing(tmp_path):
    wrong = _sha(b"something else")
    with pytest.raises(BlobIntegrityError, match=f"hashes to {_sha(b'payload')}, not to {wrong}"):
        commit_blob(tmp_path, [b"payload"], sha256=wrong)
    assert not blob_path(tmp_path, wrong).exists() and not blob_path(tmp_path, _sha(b"payload")).exists()
    assert _leftovers(tmp_path) == []


def test_a_size_mismatch_stores_nothing(tmp_path):
    data = b"payload"
    with pytest.raises(BlobIntegrityError, match="is 7 bytes, not the 8 expected"):
        commit_blob(tmp_path, [data], sha256=_sha(data), size=8)
    assert not blob_path(tmp_path, _sha(data)).exists()
    assert _leftovers(tmp_path) == []


def test_a_bad_expected_name_is_refused_before_writing(tmp_path):
    with pytest.raises(InvalidArgumentError, match="sha256 must be 64 lowercase hex characters; got 'ABC'"):
        commit_blob(tmp_path, [b"x"], sha256="ABC")
    assert not (tmp_path / "blobs").exists()


def test_a_failing_write_removes_the_temp_file_and_a_retry_succeeds(tmp_path):
    data = os.urandom(50_000)
    written = []

    def write_then_fail(fd, chunk):  # some bytes land, then the disk is full
        if sum(written) >= 20_000:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = os.write(fd, chunk[:10_000])
        written.append(n)
        return n

    with pytest.raises(StorageFullError, match=r"no space left on the device of .*blobs for a blob \(\d+ bytes free\)"):
        commit_blob(tmp_path, [data], write=write_then_fail)
    assert _leftovers(tmp_path) == [] and not blob_path(tmp_path, _sha(data)).exists()
    assert commit_blob(tmp_path, [data]).created


def test_an_error_from_the_source_leaves_nothing(tmp_path):
    def chunks():
        yield b"first part"
        raise ConnectionError("client went away")

    with pytest.raises(ConnectionError, match="client went away"):
        commit_blob(tmp_path, chunks())
    assert _leftovers(tmp_path) == [] and list((tmp_path / "blobs").rglob("*")) == []


def test_an_open_file_is_a_source(tmp_path):
    part = tmp_path / "upload.part"
    data = os.urandom(9 * 1024 * 1024 + 5)  # more than one read of the file
    part.write_bytes(data)
    with open(part, "rb") as source:
        blob = commit_blob(tmp_path / "run", source, sha256=_sha(data), size=len(data))
    assert blob.created and blob_path(tmp_path / "run", blob.sha256).read_bytes() == data


def test_a_truncated_file_under_the_name_is_replaced_by_verified_bytes(tmp_path):
    data = b"0123456789" * 100
    final = blob_path(tmp_path, _sha(data))
    final.parent.mkdir(parents=True)
    final.write_bytes(data[:500])  # left by an older, unverified writer
    blob = commit_blob(tmp_path, [data], sha256=_sha(data))
    assert blob.created and final.read_bytes() == data


def test_a_symlinked_blob_directory_is_refused(tmp_path):
    data = b"must not leave the run"
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    (run / "blobs").mkdir(parents=True)
    (run / "blobs" / _sha(data)[:2]).symlink_to(outside)
    with pytest.raises(RunFormatError, match="must be a directory of the run, not a symlink"):
        commit_blob(run, [data], sha256=_sha(data))
    assert list(outside.iterdir()) == []


def test_a_full_filesystem_raises_storage_full_and_leaves_no_partial_blob(tmp_path):
    with small_filesystem(tmp_path / "mnt", "1m") as mnt:
        run = mnt / "run"
        run.mkdir()
        filler = fill(mnt)
        data = os.urandom(64 * 1024)
        with pytest.raises(StorageFullError, match=r"no space left on the device of .*run/blobs") as info:
            commit_blob(run, [data])
        assert info.value.errno == errno.ENOSPC and info.value.free_bytes is not None
        assert _leftovers(run) == [] and not blob_path(run, _sha(data)).exists()
        filler.unlink()
        blob = commit_blob(run, [data], sha256=_sha(data))
        assert blob.created and verify_blob(run, blob.sha256)
