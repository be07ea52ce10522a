"""The backend contract on the S3 backend, against the real Ceph RADOS gateways of .ci/services."""

import os
import tempfile

import pytest

from tracker_sdk.runformat import open_run
from tracker_sdk.sync.s3 import MIN_PART, S3Backend

from backend_contract import BackendContract
from services import requires_s3, s3_prefix, s3_service  # noqa: F401  (fixtures)


class S3Destination:
    resumable = True  # parts stored before a crash are found again with ListParts

    def __init__(self, spec: dict):
        self.spec = spec
        os.environ.update(AWS_ACCESS_KEY_ID=spec["key"], AWS_SECRET_ACCESS_KEY=spec["secret"],
                          AWS_DEFAULT_REGION="us-east-1")

    def backend(self) -> S3Backend:
        return S3Backend(self.spec["uri"], chunk_size=MIN_PART, chunk_threshold=MIN_PART)

    def read_back(self, project: str, run_id: str):
        run_dir = self.backend().download_run(run_id, tempfile.mkdtemp(prefix="s3-read-back-"))
        run = open_run(run_dir)
        assert run.project == project
        return run

    def snapshot(self):
        backend = self.backend()
        pages = backend.client.get_paginator("list_objects_v2").paginate(Bucket=backend.bucket, Prefix=backend.prefix)
        return sorted((o["Key"], o["ETag"], o["LastModified"]) for page in pages for o in page.get("Contents", []))


def make_destination(spec: dict) -> S3Destination:
    return S3Destination(spec)


@requires_s3
class TestS3Backend(BackendContract):
    @pytest.fixture
    def destination(self, s3_service, s3_prefix, monkeypatch):  # noqa: F811
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
            monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the test
        return make_destination({"uri": s3_service.uri(s3_prefix), "key": s3_service.access_key,
                                 "secret": s3_service.secret_key})


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "4"])
def test_parallel_parts_must_be_a_positive_int_named_in_the_error(bad):
    pytest.importorskip("boto3")
    from tracker_sdk.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match=rf"parallel_parts must be a positive int; got {bad!r}"):
        S3Backend("s3://bucket/prefix?endpoint_url=http://127.0.0.1:9", parallel_parts=bad)


@requires_s3
def test_bytes_changed_on_the_way_are_refused_by_the_gateway_and_never_stored(s3_service, s3_prefix,  # noqa: F811
                                                                             tmp_path, monkeypatch):
    """No Content-MD5 is sent: the payload sha256 that SigV4 signs is what the store checks."""
    from backend_contract import make_run
    from tracker_sdk.errors import ServerRejectedError

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_service.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_service.secret_key)
    run_dir = make_run(tmp_path / "local", seed=9, embeddings=1)
    sha = open_run(run_dir).embeddings[0].record.vectors.sha256
    path = open_run(run_dir).blob_path(sha)
    backend = S3Backend(s3_service.uri(s3_prefix))

    def flip_a_bit(request, **_):
        body = bytearray(request.body.read() if hasattr(request.body, "read") else request.body)
        body[len(body) // 2] ^= 1
        request.body = bytes(body)

    backend.client.meta.events.register("before-send.s3.PutObject", flip_a_bit)
    with pytest.raises(ServerRejectedError, match="XAmzContentSHA256Mismatch"):
        backend.put_blob("ab" * 16, sha, path, path.stat().st_size)
    assert not S3Backend(s3_service.uri(s3_prefix)).has_blob("ab" * 16, sha)
