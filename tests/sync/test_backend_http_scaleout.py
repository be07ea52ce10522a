"""The backend contract on the HTTP backend against a scale-out ``tracker-server`` (SharedStore).

Always: SQLite index + blob directory. With the services of ``.ci/services/up.sh``: PostgreSQL
index + S3 (Ceph) blob store. What is stored is read back from the stores themselves (the
records table and the blob store), not through the server under test.
"""

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from tracker_sdk.sync.http import MIN_CHUNK, HTTPBackend

from backend_contract import BackendContract
from serverprocess import REPO
from services import postgres_skip_reason, requires_postgres, requires_s3, s3_service  # noqa: F401
from synchelpers import ServerProcess

SMALL_CHUNKS = 5 << 20  # several chunks for the contract's 16 MB blob (and S3's 5 MiB minimum part)


class ScaleOutDestination:
    resumable = True  # a partial upload lives in the blob store; any replica finds its offset

    def __init__(self, spec: dict):
        self.spec = spec
        os.environ.update(spec.get("env", {}))

    def backend(self) -> HTTPBackend:
        return HTTPBackend(self.spec["url"], chunk_threshold=SMALL_CHUNKS, chunk_size=SMALL_CHUNKS)

    def store(self):
        from server_stub.shared_store import SharedStore

        return SharedStore(self.spec["index_uri"], self.spec["blob_uri"], tempfile.mkdtemp(prefix="read-back-"))

    def read_back(self, project: str, run_id: str):
        store = self.store()  # left open: the Run reads its blobs through it lazily
        run = store.run(run_id)
        assert run.project == project
        return run

    def snapshot(self):
        """Every row of the tables a sync writes (with their revision and times) and every stored blob."""
        import sqlalchemy as sa

        from server_stub import sqlindex

        store = self.store()
        try:
            with store.index.read() as conn:
                tables = {t.name: sorted(tuple(map(str, row)) for row in conn.execute(sa.select(t)))
                          for t in (sqlindex.runs, sqlindex.records, sqlindex.run_blobs, sqlindex.embeddings)}
            shas = sorted({row[1] for row in tables["run_blobs"]})
            return tables, [(sha, store.blobs.size(sha)) for sha in shas]
        finally:
            store.close()


def make_destination(spec: dict) -> ScaleOutDestination:
    return ScaleOutDestination(spec)


def _start(root: Path, index_uri: str, blob_uri: str) -> ServerProcess:
    return ServerProcess(root, "--index-uri", index_uri, "--blob-uri", blob_uri).start()


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory):
    base = tmp_path_factory.mktemp("scaleout")
    index_uri, blob_uri = f"sqlite:///{base / 'index.sqlite3'}", str(base / "blobs")
    proc = _start(base / "cache", index_uri, blob_uri)
    yield {"url": proc.url, "index_uri": index_uri, "blob_uri": blob_uri}
    proc.stop()


class TestScaleOutSQLite(BackendContract):
    @pytest.fixture
    def destination(self, sqlite_server):
        assert MIN_CHUNK <= SMALL_CHUNKS
        return make_destination(sqlite_server)


@pytest.fixture(scope="module")
def postgres_s3_server(tmp_path_factory, s3_service):  # noqa: F811
    reason = postgres_skip_reason()
    if reason:
        pytest.skip(reason)
    import psycopg
    from sqlalchemy.engine import make_url

    base_url = make_url(os.environ["TRACKER_TEST_POSTGRES_URL"])
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = base_url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    index_uri = base_url.set(database=name).render_as_string(hide_password=False)
    blob_uri = s3_service.uri(f"tests/{uuid.uuid4().hex}")
    env = {"AWS_ACCESS_KEY_ID": s3_service.access_key, "AWS_SECRET_ACCESS_KEY": s3_service.secret_key,
           "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    proc = None
    try:
        migrated = subprocess.run([sys.executable, "-m", "server_stub", "migrate", "--index-uri", index_uri],
                                  cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
        assert migrated.returncode == 0, migrated.stderr
        proc = _start(tmp_path_factory.mktemp("scaleout-pg") / "cache", index_uri, blob_uri)
        yield {"url": proc.url, "index_uri": index_uri, "blob_uri": blob_uri, "env": env}
    finally:
        if proc is not None:
            proc.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@requires_postgres
@requires_s3
class TestScaleOutPostgresS3(BackendContract):
    @pytest.fixture
    def destination(self, postgres_s3_server):
        return make_destination(postgres_s3_server)
