"""Alembic environment of the scale-out index (:mod:`server_stub.sqlindex`).

Run through ``tracker-server migrate --index-uri URI`` (or :func:`server_stub.sqlindex.migrate`),
which passes an open connection in ``config.attributes["connection"]``; the plain ``alembic``
command works too with ``-x url=URI``. On PostgreSQL an advisory lock makes two migrating
replicas take turns; on SQLite the caller's ``BEGIN IMMEDIATE`` does the same.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from server_stub.sqlindex import lock_for_migration


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        lock_for_migration(connection)
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the tracker index migrations run online only: tracker-server migrate --index-uri URI")
run_migrations_online()
