"""The server's single PUT and its chunked-upload commit go through the one blob commit."""

import hashlib
import os

import pytest

from server_stub.errors import ApiError
from server_stub.store import Store
from tracker_sdk.runformat import verify_blob

from smallfs import fill, small_filesystem  # tests/ is on sys.path

RUN_ID = "cd" * 16


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _temp_files(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.endswith((".part", ".tmp")) and ".uploads" not in p.parts)


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store")
    store.put_run("proj", RUN_ID, {"name": "blobs"})
    yield store
    store.close()


def _upload(store, data: bytes, sha: str, pieces: int = 3) -> dict:
    """Send ``data`` as a chunked upload the way the app's PATCH handler does."""
    step = -(-len(data) // pieces)
    result = None
    for offset in range(0, len(data), step):
        chunk = data[offset: offset + step]
        result = store.append_upload(RUN_ID, sha, offset, len(data), [chunk], hashlib.sha256(chunk).digest())
    return result


def test_put_blob_writes_the_streamed_chunks_and_is_idempotent(store):
    data = os.urandom(300_000)
    sha = _sha(data)
    assert store.put_blob(RUN_ID, sha, iter([data[:1000], data[1000:]])) == {"sha256": sha, "size": len(data),
                                                                               "created": True}
    assert store.put_blob(RUN_ID, sha, iter([data]))["created"] is False
    assert verify_blob(store.run_dir(RUN_ID), sha)
    assert _temp_files(store.root) == []


def test_put_blob_with_the_wrong_hash_is_a_retryable_422_and_leaves_nothing(store):
    claimed = _sha(b"other")
    with pytest.raises(ApiError, match=f"the body does not match blob {claimed}: the content hashes to") as info:
        store.put_blob(RUN_ID, claimed, iter([b"payload"]))
    assert info.value.status == 422 and info.value.extra["retryable"] is True  # corrupted on the way: send again
    assert store.blob_size(RUN_ID, claimed) is None and _temp_files(store.root) == []


def test_a_chunked_upload_is_committed_by_the_same_verified_path(store):
    data = os.urandom(200_001)
    sha = _sha(data)
    assert _upload(store, data, sha) == {"offset": len(data), "complete": True}
    assert verify_blob(store.run_dir(RUN_ID), sha)
    assert list((store.root / ".uploads").rglob("*.part")) == [] and _temp_files(store.root) == []


def test_a_corrupted_chunked_upload_is_a_retryable_422_and_is_discarded(store):
    data = os.urandom(50_000)
    claimed = _sha(data + b"!")
    with pytest.raises(ApiError, match="the upload does not match blob .*; the partial upload was discarded") as info:
        _upload(store, data, claimed)
    assert info.value.status == 422 and info.value.extra["retryable"] is True
    assert store.upload_state(RUN_ID, claimed) == {"offset": 0, "complete": False}
    assert store.blob_size(RUN_ID, claimed) is None and _temp_files(store.root) == []


def test_a_full_disk_answers_507_and_the_same_upload_succeeds_once_space_frees(tmp_path):
    with small_filesystem(tmp_path / "mnt", "2m") as mnt:
        store = Store(mnt / "store")
        try:
            store.put_run("proj", RUN_ID, {"name": "full"})
            data = os.urandom(256 * 1024)
            sha = _sha(data)
            filler = fill(mnt)
            with pytest.raises(ApiError, match=r"the server's disk is full \(\d+ bytes free\); retry later") as info:
                store.put_blob(RUN_ID, sha, iter([data]))
            assert info.value.status == 507 and _temp_files(store.root) == []
            assert store.blob_size(RUN_ID, sha) is None
            filler.unlink()
            assert store.put_blob(RUN_ID, sha, iter([data]))["created"] is True
            assert verify_blob(store.run_dir(RUN_ID), sha)
        finally:
            store.close()
