"""The real PostgreSQL and S3 services (Ceph RADOS gateways) of the integration tests, as fixtures.

``.ci/services/up.sh`` starts them on loopback and writes where they are into ``TRACKER_TEST_*``
variables (``DIR/services.env``); ``.ci/run`` sources that file before ``make test``. Without
those variables a test that needs a service is skipped with a message saying how to start it.
The clients (psycopg, SQLAlchemy, boto3) are imported only when a fixture runs, so this module
costs nothing when the services are down.

Fixtures: ``postgres_url`` (a fresh database per test, dropped afterwards) and ``s3_service``
(both gateway endpoints, the test keys and the bucket ``up.sh`` created). Markers
``requires_postgres`` and ``requires_s3`` skip a whole test or class the same way.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

POSTGRES_ENV = "TRACKER_TEST_POSTGRES_URL"
S3_ENV = {
    "endpoint": "TRACKER_TEST_S3_ENDPOINT",
    "endpoint_2": "TRACKER_TEST_S3_ENDPOINT_2",
    "access_key": "TRACKER_TEST_S3_ACCESS_KEY",
    "secret_key": "TRACKER_TEST_S3_SECRET_KEY",
    "bucket": "TRACKER_TEST_S3_BUCKET",
}
START_HINT = ('start them with `eval "$(.ci/services/up.sh)"` and stop them with `.ci/services/down.sh` '
              '(docs/deploy.md, "Local services for tests")')


def _missing(*names: str) -> list[str]:
    return [name for name in names if not os.environ.get(name)]


def postgres_skip_reason() -> str | None:
    """Why PostgreSQL tests cannot run here, or None when the service is configured."""
    if _missing(POSTGRES_ENV):
        return f"needs PostgreSQL: {POSTGRES_ENV} is unset; {START_HINT}"
    return None


def s3_skip_reason() -> str | None:
    """Why S3 tests cannot run here, or None when the service is configured."""
    missing = _missing(*S3_ENV.values())
    if missing:
        return f"needs the S3 service: {', '.join(missing)} unset; {START_HINT}"
    return None


requires_postgres = pytest.mark.skipif(postgres_skip_reason() is not None,
                                       reason=postgres_skip_reason() or "")
requires_s3 = pytest.mark.skipif(s3_skip_reason() is not None, reason=s3_skip_reason() or "")


@dataclass(frozen=True)
class S3Service:
    """Two gateways of one Ceph cluster: stateless replicas that serve the same buckets."""

    endpoint: str
    endpoint_2: str
    access_key: str
    secret_key: str
    bucket: str

    @property
    def endpoints(self) -> tuple[str, str]:
        return (self.endpoint, self.endpoint_2)

    def client(self, endpoint: str | None = None, *, secret_key: str | None = None):
        """A boto3 S3 client on ``endpoint`` (the first gateway by default), path-style addressing.

        ``secret_key`` overrides the test key, to check that the server refuses bad signatures.
        """
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key if secret_key is None else secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def storage_options(self, endpoint: str | None = None) -> dict:
        """Keyword arguments for ``s3fs.S3FileSystem`` / fsspec on ``endpoint``."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": endpoint or self.endpoint, "region_name": "us-east-1"},
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        }

    def uri(self, prefix: str, endpoint: str | None = None) -> str:
        """``s3://BUCKET/PREFIX?endpoint_url=…``, the form the S3 backend's URLs take."""
        query = urlencode({"endpoint_url": endpoint or self.endpoint})
        return f"s3://{self.bucket}/{prefix.strip('/')}?{query}"


@pytest.fixture
def postgres_url():
    """URL (``postgresql+psycopg://…``) of a new, empty database, dropped after the test."""
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(os.environ[POSTGRES_ENV])
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def s3_service() -> S3Service:
    """The S3 service ``up.sh`` started: two endpoints, test keys, an existing bucket."""
    reason = s3_skip_reason()
    if reason:
        pytest.skip(reason)
    return S3Service(**{field: os.environ[name] for field, name in S3_ENV.items()})


@pytest.fixture
def s3_prefix() -> str:
    """A key prefix no other test uses, so tests share the bucket without seeing each other."""
    return f"tests/{uuid.uuid4().hex}"
