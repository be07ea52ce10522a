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
