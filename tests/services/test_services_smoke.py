"""The services .ci/services/up.sh starts are the real thing: PostgreSQL through psycopg 3 and
SQLAlchemy 2, and two Ceph RADOS gateways that serve one cluster and check signatures."""

import hashlib
import uuid

import numpy as np
import pytest

MIB = 1024 * 1024


def _random_bytes(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_postgres_roundtrip_through_sqlalchemy(postgres_url):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    metadata = sa.MetaData()
    runs = sa.Table("runs", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("name", sa.Text, nullable=False))
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(runs.insert(), [{"id": i, "name": f"run-{i}"} for i in range(5)])
        with engine.connect() as conn:
            rows = conn.execute(sa.select(runs.c.id, runs.c.name).order_by(runs.c.id.desc())).all()
            version = conn.execute(sa.text("SELECT version()")).scalar_one()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [(i, f"run-{i}") for i in reversed(range(5))]
    assert version.startswith("PostgreSQL ")
    assert engine.dialect.driver == "psycopg"


def test_object_put_through_one_gateway_is_read_through_the_other(s3_service):
    a, b = (s3_service.client(endpoint) for endpoint in s3_service.endpoints)
    bucket = f"smoke-{uuid.uuid4().hex[:12]}"
    a.create_bucket(Bucket=bucket)
    body = _random_bytes(100_000, seed=1)
    a.put_object(Bucket=bucket, Key="blobs/one", Body=body)

    assert b.get_object(Bucket=bucket, Key="blobs/one")["Body"].read() == body
    assert [entry["Key"] for entry in b.list_objects_v2(Bucket=bucket)["Contents"]] == ["blobs/one"]
    listed = {entry["Name"] for entry in b.list_buckets()["Buckets"]}
    assert {bucket, s3_service.bucket} <= listed


def test_multipart_upload_started_on_one_gateway_completes_on_the_other(s3_service, s3_prefix):
    a, b = (s3_service.client(endpoint) for endpoint in s3_service.endpoints)
    key = f"{s3_prefix}/multipart"
    parts = [_random_bytes(5 * MIB, seed=2), _random_bytes(5 * MIB, seed=3)]
    upload_id = a.create_multipart_upload(Bucket=s3_service.bucket, Key=key)["UploadId"]
    etag_1 = a.upload_part(Bucket=s3_service.bucket, Key=key, UploadId=upload_id, PartNumber=1,
                           Body=parts[0])["ETag"]
    etag_2 = b.upload_part(Bucket=s3_service.bucket, Key=key, UploadId=upload_id, PartNumber=2,
                           Body=parts[1])["ETag"]
    # the parts uploaded so far are known to the other replica: where a resumed upload starts
    listed = b.list_parts(Bucket=s3_service.bucket, Key=key, UploadId=upload_id)["Parts"]
    assert [(part["PartNumber"], part["Size"]) for part in listed] == [(1, 5 * MIB), (2, 5 * MIB)]

    b.complete_multipart_upload(Bucket=s3_service.bucket, Key=key, UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag_1}, {"PartNumber": 2, "ETag": etag_2}]})

    stored = a.get_object(Bucket=s3_service.bucket, Key=key)["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(b"".join(parts)).hexdigest()
    ranged = b.get_object(Bucket=s3_service.bucket, Key=key, Range=f"bytes={5 * MIB - 3}-{5 * MIB + 2}")
    assert ranged["Body"].read() == parts[0][-3:] + parts[1][:3]


@pytest.mark.parametrize("which", [0, 1])
def test_a_request_signed_with_a_wrong_secret_is_refused(s3_service, which):
    from botocore.exceptions import ClientError

    endpoint = s3_service.endpoints[which]
    forged = s3_service.client(endpoint, secret_key="not-the-" + s3_service.secret_key)
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        forged.put_object(Bucket=s3_service.bucket, Key="forged", Body=b"x")
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        forged.list_objects_v2(Bucket=s3_service.bucket)
    # the correctly signed twin of the refused request goes through, and nothing forged was stored
    honest = s3_service.client(endpoint)
    keys = [entry["Key"] for entry in honest.list_objects_v2(Bucket=s3_service.bucket).get("Contents", [])]
    assert "forged" not in keys
