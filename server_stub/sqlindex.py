"""The scale-out index: runs, their records and derived listing tables in SQL (SQLAlchemy Core).

Chosen by ``tracker-server --index-uri sqlite:///PATH | postgresql+psycopg://...``. Unlike the
default :class:`server_stub.index.Index` (a cache rebuilt from journals), these tables ARE the
runs: ``records`` holds every record's msgpack body (:func:`tracker_sdk.runformat.records.encode`)
keyed by ``(run_id, seq)``; ``runs`` holds run.json, ``next_seq`` and the columns the listings
show, updated in the same transaction as the records, so no listing ever reads storage;
``run_blobs`` says which blobs a run may read (reads are authorised per run even though blob
storage is shared by sha256) and ``blob_proofs`` how far a chunked re-send of a blob stored for
another run has matched its bytes; ``embeddings`` keeps each embedding's row count for validation;
``bookmarks`` lets replicas share the viewer's bookmarks; ``projects`` is a view over ``runs``.

The schema is created and changed only by the Alembic migrations in ``server_stub/migrations``
(``tracker-server migrate --index-uri URI``). A PostgreSQL index that is not at the newest
revision refuses to serve and names that command; a SQLite index migrates itself on open
(one host, and ``BEGIN IMMEDIATE`` makes concurrent openers take turns).

Write transactions lock the run's row: ``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN
IMMEDIATE`` on SQLite (which locks the whole file, so SQLite suits one host only).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import sqlalchemy as sa

log = logging.getLogger("server_stub.sqlindex")
MIGRATIONS = Path(__file__).parent / "migrations"
SCHEMES = ("sqlite", "postgresql")
WRITE = "tracker_write"  # execution option: this connection's transaction writes
MIGRATION_LOCK = 0x7472616B  # PostgreSQL advisory lock key shared by every migrator of a database

metadata = sa.MetaData()
RUN_ID, SHA256 = sa.String(64), sa.String(64)
runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", RUN_ID, primary_key=True),
    sa.Column("project", sa.Text, nullable=False),
    sa.Column("info", sa.Text, nullable=False),  # run.json as JSON text
    sa.Column("name", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created", sa.Float),
    sa.Column("updated", sa.Float, nullable=False),  # server time of the last change
    sa.Column("ended", sa.Float),
    sa.Column("next_seq", sa.BigInteger, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),  # bumped on every change: readers' cache key
    sa.Column("n_embeddings", sa.Integer, nullable=False),
    sa.Column("parameters", sa.Text, nullable=False),  # {name: value} JSON, as the listing shows it
)
records = sa.Table(
    "records", metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("received", sa.Float, nullable=False),  # the server's clock; the body keeps the client's
    sa.Column("body", sa.LargeBinary, nullable=False),
)
run_blobs = sa.Table(
    "run_blobs", metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("sha256", SHA256, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("linked", sa.Float, nullable=False),
)
blob_proofs = sa.Table(  # chunked re-sends of a blob stored already: how far they matched its bytes
    "blob_proofs", metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("sha256", SHA256, primary_key=True),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
embeddings = sa.Table(
    "embeddings", metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("embedding_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
)
bookmarks = sa.Table(
    "bookmarks", metadata,
    sa.Column("run_id", RUN_ID, sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("updated", sa.Float, nullable=False),
)
projects = sa.table("projects", sa.column("name"), sa.column("n_runs"), sa.column("last_created"))  # a view


class SchemaError(ValueError):
    """The database is unreachable or not at the schema this server needs; the message says what to do."""


def check_uri(uri) -> str:
    """``uri`` when it names a database this index supports (``sqlite:///PATH``, ``postgresql+psycopg://...``)."""
    if not isinstance(uri, str) or not uri:
        raise ValueError(f"--index-uri must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DB; got {uri!r}")
    try:
        url = sa.engine.make_url(uri)
    except sa.exc.ArgumentError:
        url = None
    if url is None or url.get_backend_name() not in SCHEMES:
        raise ValueError(f"--index-uri must be sqlite:///PATH or postgresql+psycopg://USER@HOST/DB; got "
                         f"{_hide_password(uri)!r}")
    if url.get_backend_name() == "sqlite" and not url.database:
        raise ValueError("--index-uri sqlite:///PATH needs a file path (an in-memory database is not shared "
                         "between connections)")
    return uri


def _hide_password(uri: str) -> str:
    try:
        return sa.engine.make_url(uri).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return uri


def make_engine(uri: str) -> sa.Engine:
    """An engine whose write transactions lock (``BEGIN IMMEDIATE`` on SQLite)."""
    url = sa.engine.make_url(check_uri(uri))
    if url.get_backend_name() == "sqlite":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # SQLAlchemy's begin event below starts transactions
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(connection):
            write = connection.get_execution_options().get(WRITE)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine
    return sa.create_engine(url, pool_size=8, max_overflow=24, pool_pre_ping=True)


# -- migrations --------------------------------------------------------------------------------
def _alembic_config(connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def lock_for_migration(connection) -> None:
    """Make concurrent migrators of one PostgreSQL database take turns (until the transaction ends);
    on SQLite the write transaction's ``BEGIN IMMEDIATE`` does it."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def migrate(engine: sa.Engine) -> tuple[str | None, str]:
    """Apply every migration the database lacks; returns (revision before, revision now)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            lock_for_migration(connection)  # before reading the revision: a concurrent migrator goes first
            before = MigrationContext.configure(connection).get_current_revision()
            command.upgrade(_alembic_config(connection), "head")
    return before, current_revision(engine)


def check_schema(engine: sa.Engine, uri: str) -> None:
    """Raise :class:`SchemaError` unless the database is at the newest revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        state = "has no tracker schema" if current is None else f"is at schema revision {current}"
        raise SchemaError(f"the index database {_hide_password(uri)} {state}; this server needs revision {head}: "
                          f"run `tracker-server migrate --index-uri {_hide_password(uri)}` first")


# -- the index -----------------------------------------------------------------------------
class SqlIndex:
    """Listings and row-level access of one database; safe to use from several threads."""

    def __init__(self, uri: str, *, engine: sa.Engine | None = None):
        self.uri = check_uri(uri)
        self.engine = engine or make_engine(uri)
        self.dialect = self.engine.dialect.name
        try:
            if self.dialect == "sqlite" and current_revision(self.engine) != head_revision():
                before, now = migrate(self.engine)
                log.warning("migrated the SQLite index %s from revision %s to %s", _hide_password(uri), before, now)
            check_schema(self.engine, uri)
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise SchemaError(f"the index database {_hide_password(uri)} did not answer: "
                              f"{str(exc).splitlines()[0]}") from None
        except BaseException:
            self.engine.dispose()
            raise

    def describe(self) -> str:
        """The database's URI without its password."""
        return _hide_password(self.uri)

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def read(self):
        with self.engine.connect() as connection, connection.begin():
            yield connection

    @contextlib.contextmanager
    def write(self):
        """One write transaction: committed when the block ends, rolled back when it raises."""
        with self.engine.connect() as connection:
            connection.execution_options(**{WRITE: True})
            with connection.begin():
                yield connection

    def insert_ignoring_conflicts(self, table: sa.Table, rows: list[dict]):
        """``INSERT ... ON CONFLICT DO NOTHING`` in this database's dialect."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).values(rows).on_conflict_do_nothing()

    # -- what Store.index offers the app (listings come from the derived tables only) ----
    def refresh(self) -> None:
        """Nothing to do: the derived tables change in the transactions that change the runs."""

    def rebuild(self) -> int:
        """The number of runs (the tables are the runs, not a cache of files: nothing to re-read)."""
        with self.read() as connection:
            return connection.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()

    def problems(self) -> list[dict]:
        return []

    def locate(self, run_id: str) -> str | None:
        with self.read() as connection:
            return connection.execute(sa.select(runs.c.project).where(runs.c.run_id == run_id)).scalar()

    def projects(self) -> list[dict]:
        with self.read() as connection:
            rows = connection.execute(sa.select(projects).order_by(projects.c.name)).all()
        return [{"name": p, "n_runs": int(n), "last_created": c} for p, n, c in rows]

    def runs(self, project: str) -> list[dict]:
        query = (sa.select(runs.c.run_id, runs.c.project, runs.c.name, runs.c.created, runs.c.status,
                           runs.c.parameters, runs.c.n_embeddings)
                 .where(runs.c.project == project)
                 .order_by(runs.c.created.desc().nulls_last(), runs.c.run_id))
        with self.read() as connection:
            rows = connection.execute(query).all()
        return [{"run_id": r, "project": p, "name": n, "created": c, "status": s,
                 "parameters": json.loads(params or "{}"), "n_embeddings": e}
                for r, p, n, c, s, params, e in rows]

    def health(self) -> dict:
        """``{"ok", "backend", "latency_ms"}``; ``ok`` is False (with ``error``) when the database does not answer."""
        started = time.perf_counter()
        try:
            with self.read() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as exc:
            return {"ok": False, "backend": self.dialect, "error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        return {"ok": True, "backend": self.dialect, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}

    def referenced_blobs(self) -> set[str]:
        """Every sha256 some run may read (what garbage collection must keep)."""
        with self.read() as connection:
            return set(connection.execute(sa.select(run_blobs.c.sha256).distinct()).scalars())
