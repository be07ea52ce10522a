"""The scale-out index (server_stub/sqlindex.py): migrations, refusals, listings, and runs read back
from records (``Run.from_records``). SQLite always; PostgreSQL when the services are configured."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sqlalchemy as sa

from tracker_sdk import OfflineExperiment
from tracker_sdk.errors import BlobIntegrityError
from tracker_sdk.runformat import open_run
from tracker_sdk.runformat.reader import Run

from serverprocess import REPO, ServerProcess
from server_stub import sqlindex
from server_stub.shared_store import SharedStore
from services import postgres_url, requires_postgres  # noqa: F401  (fixtures)

TABLES = {"runs", "records", "run_blobs", "blob_proofs", "embeddings", "bookmarks", "alembic_version"}


def _command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server_stub", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def index_uri(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def test_migrate_creates_the_schema_once(index_uri):
    first = _command("migrate", "--index-uri", index_uri)
    assert first.returncode == 0, first.stderr
    assert f"schema revision none -> {sqlindex.head_revision()}" in first.stdout
    again = _command("migrate", "--index-uri", index_uri)
    assert again.returncode == 0 and "(already current)" in again.stdout
    engine = sqlindex.make_engine(index_uri)
    try:
        inspector = sa.inspect(engine)
        assert TABLES <= set(inspector.get_table_names()) and "projects" in inspector.get_view_names()
        assert sqlindex.current_revision(engine) == sqlindex.head_revision()
    finally:
        engine.dispose()


def test_a_sqlite_index_migrates_itself_on_open(tmp_path):
    uri = f"sqlite:///{tmp_path / 'deep' / 'index.sqlite3'}"
    index = sqlindex.SqlIndex(uri)
    try:
        assert index.projects() == [] and index.health()["ok"] is True
    finally:
        index.close()
    assert "(already current)" in _command("migrate", "--index-uri", uri).stdout


@requires_postgres
def test_an_unmigrated_postgres_is_refused_naming_the_command(postgres_url, tmp_path):  # noqa: F811
    with pytest.raises(sqlindex.SchemaError, match="has no tracker schema.*run `tracker-server migrate --index-uri"):
        sqlindex.SqlIndex(postgres_url)
    refused = _command("--root", str(tmp_path / "cache"), "--create", "--index-uri", postgres_url,
                       "--blob-uri", str(tmp_path / "blobs"), "--port", "1")
    assert refused.returncode == 2 and "tracker-server migrate --index-uri" in refused.stderr
    # two replicas migrating at once take turns (an advisory lock): both succeed, one schema
    both = [subprocess.Popen([sys.executable, "-m", "server_stub", "migrate", "--index-uri", postgres_url], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert sum("(already current)" in out for out, _ in outputs) == 1
    server = ServerProcess(tmp_path / "cache", "--index-uri", postgres_url, "--blob-uri", str(tmp_path / "blobs"),
                           log_path=tmp_path / "server.log").start()
    server.stop()


def test_an_unreachable_database_is_one_clear_error_without_its_password():
    uri = "postgresql+psycopg://tracker:s3cret@127.0.0.1:1/tracker"
    with pytest.raises(sqlindex.SchemaError, match=r"tracker:\*\*\*@127.0.0.1:1/tracker did not answer") as caught:
        sqlindex.SqlIndex(uri)
    assert "s3cret" not in str(caught.value)
    done = _command("migrate", "--index-uri", uri)
    assert done.returncode == 1 and "did not answer" in done.stderr and "s3cret" not in done.stderr


@pytest.mark.parametrize("uri, message", [
    ("mysql://host/db", r"must be sqlite:///PATH or postgresql\+psycopg://"),
    ("sqlite://", "needs a file path"),
    ("not a uri", "must be sqlite:///PATH"),
    ("", "must be sqlite:///PATH"),
])
def test_index_uris_other_than_sqlite_files_and_postgres_are_refused(uri, message):
    with pytest.raises(ValueError, match=message):
        sqlindex.check_uri(uri)


def _offline_run(root, seed=0):
    rng = np.random.default_rng(seed)
    exp = OfflineExperiment(project_name="vision", offline_directory=str(root))
    exp.log_parameters({"lr": 0.1})
    exp.log_metric("loss", 0.5, step=0)
    exp.log_embedding(rng.standard_normal((30, 4)).astype(np.float32), [i % 2 for i in range(30)], title="t",
                      group="g", step=0, reduce="pca")
    exp.end()
    return open_run(exp.run_dir)


def test_a_run_from_records_reads_like_the_run_directory(tmp_path):
    on_disk = _offline_run(tmp_path)
    built = Run.from_records(on_disk.info, list(reversed(on_disk.records)), on_disk.blob_path)
    assert built.path is None and built.records == on_disk.records
    assert (built.run_id, built.project, built.status, built.parameters) == \
        (on_disk.run_id, "vision", "finished", {"lr": 0.1})
    emb, disk_emb = built.embeddings[0], on_disk.embeddings[0]
    assert np.array_equal(emb.vectors, disk_emb.vectors) and emb.metadata == disk_emb.metadata
    assert np.array_equal(emb.reductions[0].coords, disk_emb.reductions[0].coords)
    built.verify()
    sha = emb.record.vectors.sha256
    elsewhere = tmp_path / "wrong.npy"
    elsewhere.write_bytes(b"other bytes")
    tampered = Run.from_records(on_disk.info, on_disk.records,
                                lambda s: elsewhere if s == sha else on_disk.blob_path(s))
    with pytest.raises(BlobIntegrityError, match=f"blob {sha} of run {on_disk.run_id} does not hash to its name"):
        tampered.verify()


def test_listings_come_from_the_derived_tables_newest_first(index_uri, tmp_path):
    if index_uri.startswith("postgresql"):
        assert _command("migrate", "--index-uri", index_uri).returncode == 0
    store = SharedStore(index_uri, str(tmp_path / "blobs"), tmp_path / "cache")
    try:
        ids = ["a" * 32, "b" * 32, "c" * 32, "d" * 32]
        store.put_run("p", ids[0], {"created": 1.0, "name": "old"})
        store.put_run("p", ids[1], {"created": 3.0, "name": "new"})
        store.put_run("p", ids[2], {"name": "undated"})
        store.put_run("q", ids[3], {"created": 2.0})
        assert [r["run_id"] for r in store.index.runs("p")] == [ids[1], ids[0], ids[2]]
        assert store.index.projects() == [{"name": "p", "n_runs": 3, "last_created": 3.0},
                                          {"name": "q", "n_runs": 1, "last_created": 2.0}]
        assert store.index.locate(ids[3]) == "q" and store.index.locate("e" * 32) is None
        with store.index.read() as conn:
            revision = conn.execute(sa.select(sqlindex.runs.c.revision).where(sqlindex.runs.c.run_id == ids[0])).scalar()
        store.put_run("p", ids[0], {"created": 1.0, "name": "old"})  # unchanged: no row is rewritten
        store.put_run("p", ids[0], {"created": 1.0, "name": "old"})
        with store.index.read() as conn:
            assert conn.execute(sa.select(sqlindex.runs.c.revision)
                                .where(sqlindex.runs.c.run_id == ids[0])).scalar() == revision
    finally:
        store.close()
