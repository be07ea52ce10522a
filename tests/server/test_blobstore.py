"""The server's blob stores (server_stub/blobstore.py): one set of behaviour tests against a
directory (always) and an S3 bucket on the real Ceph gateways of ``.ci/services/up.sh`` (skipped
with a message when its variables are unset). A second store instance on the same data stands
for a second replica; for S3 it talks to the second gateway."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pytest

from server_stub.blobstore import MIN_PART, BlobCache, S3BlobStore, open_blob_store
from server_stub.errors import (ApiError, BadRequest, ChecksumMismatch, Conflict, IntegrityMismatch, NotFound,
                                answer_for)
from tracker_sdk.errors import InvalidArgumentError
from tracker_sdk.sync.http import HTTPBackend, Response

from services import s3_prefix, s3_service  # noqa: F401  (tests/ is on sys.path)

REPO = Path(__file__).resolve().parents[2]
RUN = "0123456789abcdef0123456789abcdef"
RUN_2 = "fedcba9876543210fedcba9876543210"
CHUNK = MIN_PART  # the smallest chunk both stores take


def _bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _append(store, run_id, sha, data, offset, size=CHUNK, length=None):
    chunk = data[offset: offset + size]
    return store.append_upload(run_id, sha, offset, len(data) if length is None else length, [chunk],
                               hashlib.sha256(chunk).digest())


def _client(store, run_id: str, data: bytes, chunk: int = CHUNK) -> dict:
    """What the SDK does: ask for the offset, send from there, follow 409 offsets, restart after a 422."""
    sha = _sha(data)
    state = store.upload_state(run_id, sha)
    for _ in range(500):
        if state["complete"]:
            return state
        if state["offset"] >= len(data):  # another request is publishing it
            time.sleep(0.05)
            state = store.upload_state(run_id, sha)
            continue
        try:
            state = _append(store, run_id, sha, data, state["offset"], chunk)
        except Conflict as exc:
            time.sleep(0.02)
            state = {"offset": exc.extra["offset"], "complete": False}
        except IntegrityMismatch:
            state = store.upload_state(run_id, sha)
    raise AssertionError(f"upload of {sha} made no progress: {state}")


class Place:
    """One store's data, opened as any number of instances (replicas), and what is stored in it."""

    def __init__(self, kind: str, tmp_path: Path, s3=None, prefix: str = ""):
        self.kind, self.tmp_path, self.s3, self.prefix = kind, tmp_path, s3, prefix
        self.opened = []

    def uri(self, instance: int = 0, *, credentials: bool = True) -> str:
        if self.kind == "directory":
            return str(self.tmp_path / "blobs-root")
        query = {"endpoint_url": self.s3.endpoints[instance], "region": "us-east-1"}
        if credentials:
            query.update(aws_access_key_id=self.s3.access_key, aws_secret_access_key=self.s3.secret_key)
        return f"s3://{self.s3.bucket}/{self.prefix}?{urlencode(query)}"

    def open(self, instance: int = 0, **options):
        store = open_blob_store(self.uri(instance), self.tmp_path / f"cache-{len(self.opened)}", **options)
        self.opened.append(store)
        return store

    def content(self) -> list[str]:
        """Names of the blobs stored (visible to readers)."""
        if self.kind == "directory":
            return sorted(p.name for p in (self.tmp_path / "blobs-root" / "blobs").glob("*/*"))
        return sorted(k.rsplit("/", 1)[-1] for k in self._keys("blobs/"))

    def leftovers(self) -> list[str]:
        """Partial uploads and temporary files: empty once every upload finished or was discarded."""
        if self.kind == "directory":
            root = self.tmp_path / "blobs-root"
            return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                          if p.is_file() and (".uploads" in p.parts or p.name.endswith(".part")))
        client = self.s3.client()
        uploads = client.list_multipart_uploads(Bucket=self.s3.bucket, Prefix=f"{self.prefix}/").get("Uploads", [])
        return self._keys("uploads/") + [f"multipart:{u['Key']}" for u in uploads]

    def _keys(self, under: str) -> list[str]:
        listing = self.s3.client().list_objects_v2(Bucket=self.s3.bucket, Prefix=f"{self.prefix}/{under}")
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def clean(self) -> None:
        for store in self.opened:
            store.close()
        if self.kind == "s3":
            client = self.s3.client()
            for upload in client.list_multipart_uploads(Bucket=self.s3.bucket, Prefix=f"{self.prefix}/").get("Uploads", []):
                client.abort_multipart_upload(Bucket=self.s3.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
            for key in self._keys(""):
                client.delete_object(Bucket=self.s3.bucket, Key=key)


@pytest.fixture(params=["directory", "s3"])
def place(request, tmp_path):
    if request.param == "s3":
        found = Place("s3", tmp_path, request.getfixturevalue("s3_service"), request.getfixturevalue("s3_prefix"))
    else:
        found = Place("directory", tmp_path)
    yield found
    found.clean()


@pytest.fixture
def s3_place(tmp_path, s3_service, s3_prefix):  # noqa: F811
    found = Place("s3", tmp_path, s3_service, s3_prefix)
    yield found
    found.clean()


# -- whole bodies and reads -------------------------------------------------------------------
def test_put_stores_once_and_reads_back(place):
    store = place.open()
    data = _bytes(3 * (1 << 20) + 17, 1)
    sha = _sha(data)
    assert store.put(sha, [data[:1000], data[1000:]], size=len(data)) == {"size": len(data), "created": True}
    assert place.open(1).put(sha, [data]) == {"size": len(data), "created": False}
    assert place.content() == [sha]
    assert store.size(sha) == len(data)
    assert store.local_path(sha).read_bytes() == data
    reader = place.open(1)  # a fresh replica reads ranges without fetching the blob
    assert reader.read_range(sha, 0, 10) == data[:10]
    assert reader.read_range(sha, 1 << 20, 4096) == data[1 << 20: (1 << 20) + 4096]
    assert reader.read_range(sha, len(data) - 5, 100) == data[-5:]
    assert reader.read_range(sha, len(data) + 10, 5) == b""
    assert reader.read_range(sha, 3, 0) == b""
    assert place.leftovers() == []


def test_a_body_that_does_not_hash_to_its_name_is_refused_and_nothing_is_visible(place):
    store = place.open()
    good, bad = _bytes(2 << 20, 2), _bytes(2 << 20, 3)
    with pytest.raises(IntegrityMismatch, match=f"does not match blob {_sha(good)}.*send it again") as caught:
        store.put(_sha(good), [bad])
    assert caught.value.status == 422 and caught.value.extra["retryable"] is True
    with pytest.raises(IntegrityMismatch, match="not the 5 expected"):
        store.put(_sha(good), [good], size=5)
    assert store.size(_sha(good)) is None
    assert place.content() == [] and place.leftovers() == []


def test_missing_blobs_answer_404_and_bad_arguments_400(place):
    store = place.open()
    missing = _sha(b"never stored")
    assert store.size(missing) is None
    with pytest.raises(NotFound, match=f"no blob {missing}"):
        store.local_path(missing)
    with pytest.raises(NotFound, match=f"no blob {missing}"):
        store.read_range(missing, 0, 10)
    with pytest.raises(BadRequest, match="sha256"):
        store.size("../../etc/passwd")
    with pytest.raises(BadRequest, match="run_id"):
        store.upload_state("not-a-run", missing)
    with pytest.raises(BadRequest, match="offset must be a non-negative integer; got -1"):
        store.read_range(missing, -1, 10)


# -- chunked uploads --------------------------------------------------------------------------
def test_chunked_upload_commits_when_whole_and_leaves_nothing_behind(place):
    store = place.open()
    data = _bytes(2 * CHUNK + 12345, 4)
    sha = _sha(data)
    assert store.upload_state(RUN, sha)["offset"] == 0
    assert _append(store, RUN, sha, data, 0) == {"offset": CHUNK, "complete": False}
    state = store.upload_state(RUN, sha)
    assert (state["offset"], state["complete"], state["length"]) == (CHUNK, False, len(data))
    assert store.size(sha) is None and place.content() == []  # not visible before it is whole and checked
    assert _append(store, RUN, sha, data, CHUNK)["offset"] == 2 * CHUNK
    assert _append(store, RUN, sha, data, 2 * CHUNK) == {"offset": len(data), "complete": True}
    assert store.upload_state(RUN, sha)["complete"] is True
    assert place.content() == [sha] and place.leftovers() == []
    assert place.open(1).local_path(sha).read_bytes() == data


def test_chunks_at_the_wrong_offset_length_or_checksum_are_refused(place):
    store = place.open()
    data = _bytes(2 * CHUNK + 10, 5)
    sha = _sha(data)
    _append(store, RUN, sha, data, 0)
    with pytest.raises(Conflict, match=f"Upload-Offset 0 does not match the server's offset {CHUNK}") as caught:
        _append(store, RUN, sha, data, 0)
    assert caught.value.extra["offset"] == CHUNK
    with pytest.raises(BadRequest, match=f"Upload-Length {len(data) + 1} differs from {len(data)}"):
        _append(store, RUN, sha, data, CHUNK, length=len(data) + 1)
    chunk = data[CHUNK: 2 * CHUNK]
    with pytest.raises(ChecksumMismatch, match=f"chunk at offset {CHUNK} .* does not match its Upload-Checksum") as caught:
        store.append_upload(RUN, sha, CHUNK, len(data), [chunk], hashlib.sha256(b"other").digest())
    assert caught.value.status == 460
    with pytest.raises(BadRequest, match="chunk runs past Upload-Length"):
        store.append_upload(RUN, sha, CHUNK, len(data), [data[CHUNK:] + b"extra"], None)
    with pytest.raises(BadRequest, match="Upload-Offset 99 is past Upload-Length 10"):
        store.append_upload(RUN, sha, 99, 10, [b""], None)
    assert store.upload_state(RUN, sha)["offset"] == CHUNK  # nothing of the refused chunks was kept
    assert _client(store, RUN, data)["complete"] and store.local_path(sha).read_bytes() == data


def test_an_upload_that_does_not_hash_to_its_name_is_discarded_with_a_retryable_422(place):
    store = place.open()
    data, claimed = _bytes(CHUNK + 100, 6), _sha(b"what the client said it would send")
    _append(store, RUN, claimed, data, 0)
    with pytest.raises(IntegrityMismatch, match=f"does not match blob {claimed}.*partial upload was discarded"
                       if place.kind == "directory" else f"does not match blob {claimed}") as caught:
        _append(store, RUN, claimed, data, CHUNK)
    assert caught.value.extra == {"retryable": True, "offset": 0}
    assert store.size(claimed) is None and store.upload_state(RUN, claimed)["offset"] == 0
    assert place.content() == [] and place.leftovers() == []


_CHILD = """
import hashlib, sys, time
from server_stub.blobstore import open_blob_store
uri, cache, run, path, chunk = sys.argv[1:6]
chunk = int(chunk)
data = open(path, "rb").read()
sha = hashlib.sha256(data).hexdigest()
store = open_blob_store(uri, cache)
for offset in (0, chunk):
    part = data[offset: offset + chunk]
    store.append_upload(run, sha, offset, len(data), [part], hashlib.sha256(part).digest())
print("sent", flush=True)

def stuck():  # the third chunk starts arriving, then the process is killed mid-chunk
    yield data[2 * chunk: 2 * chunk + 1000]
    time.sleep(600)

part = data[2 * chunk: 3 * chunk]
store.append_upload(run, sha, 2 * chunk, len(data), stuck(), hashlib.sha256(part).digest())
"""


def test_an_upload_resumes_through_a_second_replica_after_the_first_is_killed(place, tmp_path):
    data = _bytes(3 * CHUNK + 999, 7)
    sha = _sha(data)
    (tmp_path / "blob").write_bytes(data)
    child = subprocess.Popen([sys.executable, "-c", _CHILD, place.uri(0), str(tmp_path / "child-cache"), RUN,
                              str(tmp_path / "blob"), str(CHUNK)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "sent"
        time.sleep(0.5)  # the third chunk is on its way
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    replica = place.open(1)
    offset = replica.upload_state(RUN, sha)["offset"]
    # S3 keeps whole parts only; a directory keeps the prefix that arrived (without a checksum check)
    assert offset == 2 * CHUNK if place.kind == "s3" else 2 * CHUNK <= offset <= 2 * CHUNK + 1000
    assert _client(replica, RUN, data)["complete"]
    assert _sha(replica.local_path(sha).read_bytes()) == sha
    assert place.content() == [sha] and place.leftovers() == []


def test_concurrent_uploads_of_one_blob_through_two_replicas_store_one_object(place):
    data = _bytes(2 * CHUNK + 4321, 8)
    sha = _sha(data)
    a, b = place.open(0), place.open(1)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run(fn):
        try:
            barrier.wait(10)
            results.append(fn())
        except Exception as exc:  # reported below
            errors.append(exc)

    jobs = [lambda: _client(a, RUN, data), lambda: _client(b, RUN, data),  # one run through both replicas
            lambda: _client(b, RUN_2, data), lambda: a.put(sha, [data])]   # another run, and a whole body
    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and len(results) == 4
    assert place.content() == [sha]
    assert place.leftovers() == []
    assert _sha(place.open(1).local_path(sha).read_bytes()) == sha


# -- garbage ----------------------------------------------------------------------------------
def test_garbage_collection_removes_unreferenced_blobs_and_stale_uploads(place):
    store = place.open()
    kept, dropped, partial = _bytes(1000, 9), _bytes(2000, 10), _bytes(CHUNK + 5, 11)
    store.put(_sha(kept), [kept])
    store.put(_sha(dropped), [dropped])
    _append(store, RUN, _sha(partial), partial, 0)
    assert store.collect_garbage({_sha(kept)}, max_age_s=3600) == []  # everything is young
    later = time.time() + 7200
    report = store.collect_garbage({_sha(kept)}, max_age_s=3600, apply=False, now=later)
    kinds = sorted(g.kind for g in report)
    assert kinds == (["blob", "upload", "upload"] if place.kind == "directory" else ["blob", "staging", "upload"])
    assert [g.size for g in report if g.kind == "blob"] == [2000]
    assert place.content() == sorted([_sha(kept), _sha(dropped)]) and place.leftovers() != []  # a dry run
    assert sorted(g.path for g in store.collect_garbage({_sha(kept)}, 3600, now=later)) == sorted(g.path for g in report)
    assert place.content() == [_sha(kept)] and place.leftovers() == []
    assert store.upload_state(RUN, _sha(partial))["offset"] == 0
    assert _client(store, RUN, partial)["complete"]  # an upload starts over after its stale part went


# -- S3 only: part sizes, the cache, an unreachable store -------------------------------------
def test_s3_refuses_small_chunks_but_the_last_and_advertises_min_chunk(s3_place):
    store = s3_place.open()
    data = _bytes(CHUNK + 3000, 12)
    sha = _sha(data)
    assert store.upload_state(RUN, sha)["min_chunk"] == MIN_PART
    with pytest.raises(BadRequest, match=f"a chunk of 1000 bytes at offset 0 is below this store's minimum of "
                                         f"{MIN_PART} bytes") as caught:
        _append(store, RUN, sha, data, 0, size=1000)
    assert caught.value.extra["min_chunk"] == MIN_PART
    assert s3_place.leftovers() == []  # a refused chunk begins no upload
    assert _append(store, RUN, sha, data, 0)["offset"] == CHUNK
    assert _append(store, RUN, sha, data, CHUNK)["complete"]  # the last part may be small


def test_a_directory_takes_chunks_of_any_size(tmp_path):
    store = Place("directory", tmp_path).open()
    data = _bytes(10_000, 14)
    assert "min_chunk" not in store.upload_state(RUN, _sha(data))
    assert _client(store, RUN, data, chunk=1000)["complete"]
    assert store.local_path(_sha(data)).read_bytes() == data


def test_s3_reads_go_through_a_bounded_lru_cache(s3_place):
    writer = s3_place.open()
    blobs = [_bytes(3 << 20, seed) for seed in (20, 21, 22)]
    for data in blobs:
        writer.put(_sha(data), [data])
    reader = s3_place.open(1, cache_bytes=7 << 20)
    reader.cache.grace_s = 0  # nothing was handed out recently in this test
    first = reader.local_path(_sha(blobs[0]))
    assert first.read_bytes() == blobs[0]
    assert reader.local_path(_sha(blobs[0])) == first
    assert (reader.cache.misses, reader.cache.hits) == (1, 1)
    reader.read_range(_sha(blobs[2]), 0, 100)  # a range is read without filling the cache
    assert reader.cache.stats()["files"] == 1
    reader.local_path(_sha(blobs[1]))
    reader.local_path(_sha(blobs[2]))  # 9 MiB would be over the 7 MiB bound: the oldest goes
    stats = reader.cache.stats()
    assert stats["files"] == 2 and stats["bytes"] <= 7 << 20 and not first.exists()
    assert reader.read_range(_sha(blobs[1]), 5, 5) == blobs[1][5:10]
    restarted = BlobCache(reader.cache.root, 7 << 20)  # a restarted replica finds its copies
    assert restarted.get(_sha(blobs[2])).read_bytes() == blobs[2]
    assert reader.local_path(_sha(blobs[0])).read_bytes() == blobs[0]  # fetched again after eviction


def test_an_unreachable_s3_store_answers_503_and_health_says_so(tmp_path, s3_service):  # noqa: F811
    store = S3BlobStore(s3_service.bucket, "x", cache_dir=tmp_path / "cache", endpoint_url="http://127.0.0.1:9",
                        aws_access_key_id="k", aws_secret_access_key="s", region="us-east-1")
    try:
        health = store.health()
        assert health["ok"] is False and "unreachable" in health["error"]
        with pytest.raises(ApiError, match="the blob store is unreachable") as caught:
            store.size(_sha(b"x"))
        assert caught.value.status == 503 and caught.value.extra["retry_after"] > 0
    finally:
        store.close()


def test_health_of_a_working_store(place):
    health = place.open().health()
    assert health["ok"] is True and health["store"] == place.kind


def test_blob_uris_are_checked_before_anything_is_opened(tmp_path):
    with pytest.raises(InvalidArgumentError, match="blob uri must be a directory path, file:///DIR or s3://"):
        open_blob_store("ftp://host/x", tmp_path)
    with pytest.raises(InvalidArgumentError, match="cache_dir is required for an s3:// blob store"):
        open_blob_store("s3://bucket/prefix?aws_secret_access_key=SECRET&aws_access_key_id=K", None)
    with pytest.raises(InvalidArgumentError, match=r"options are endpoint_url, region.*got \['endpoint'\]"):
        open_blob_store("s3://bucket/prefix?endpoint=http://x", tmp_path)
    with pytest.raises(InvalidArgumentError, match="both aws_access_key_id and aws_secret_access_key"):
        open_blob_store("s3://bucket/prefix?aws_access_key_id=K", tmp_path)
    try:
        open_blob_store("s3://bucket/p?aws_access_key_id=K&aws_secret_access_key=SECRET&x=1", None)
    except InvalidArgumentError as exc:
        assert "SECRET" not in str(exc)
    store = open_blob_store(f"file://{tmp_path}/d", None)
    assert store.root == tmp_path / "d" and store.health()["ok"]


# -- the SDK's chunked client against a store -------------------------------------------------
class _StoreTransport:
    """Serves the SDK's upload requests from a blob store in this process (no HTTP server:
    the store is the thing under test; the routes are what app.py maps to it)."""

    def __init__(self, store):
        self.store = store
        self.chunks = []

    def request(self, method, path, headers, body=None):
        *_, run_id, _, sha = path.split("/")
        try:
            if method == "GET":
                answer = self.store.upload_state(run_id, sha)
            else:
                digest = base64.b64decode(headers["Upload-Checksum"].split(" ", 1)[1])
                self.chunks.append(len(body))
                answer = self.store.append_upload(run_id, sha, int(headers["Upload-Offset"]),
                                                  int(headers["Upload-Length"]), [body], digest)
        except ApiError as exc:
            status, answer = answer_for(exc)
            return Response(status, {}, json.dumps(answer).encode())
        return Response(200, {}, json.dumps(answer).encode())

    def close(self):
        pass


def test_the_sdk_sends_chunks_of_at_least_the_stores_min_chunk(place, tmp_path):
    data = _bytes(2 * CHUNK + 77, 13)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    transport = _StoreTransport(place.open())
    backend = HTTPBackend("http://in-process", transport=transport, chunk_threshold=1 << 20, chunk_size=1 << 20)
    backend.put_blob(RUN, _sha(data), path, len(data))
    expected = [CHUNK, CHUNK, 77] if place.kind == "s3" else [1 << 20] * 10 + [77]
    assert transport.chunks == expected
    assert place.content() == [_sha(data)] and place.leftovers() == []
