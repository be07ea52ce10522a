"""The first schema of the scale-out index: runs, records, run_blobs, blob_proofs, embeddings, bookmarks, projects.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RUN_ID = sa.String(64)
SHA256 = sa.String(64)


def _run_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["run_id"], ["runs.run_id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("run_id", RUN_ID, primary_key=True),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("info", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created", sa.Float),
        sa.Column("updated", sa.Float, nullable=False),
        sa.Column("ended", sa.Float),
        sa.Column("next_seq", sa.BigInteger, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("n_embeddings", sa.Integer, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
    )
    op.create_index("runs_project", "runs", ["project", "created"])
    op.create_table(
        "records",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("received", sa.Float, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "seq"),
        _run_fk(),
    )
    op.create_table(
        "run_blobs",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("sha256", SHA256, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("linked", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sha256"),
        _run_fk(),
    )
    op.create_index("run_blobs_sha256", "run_blobs", ["sha256"])
    op.create_table(
        "blob_proofs",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("sha256", SHA256, nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "sha256"),
        _run_fk(),
    )
    op.create_table(
        "embeddings",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("embedding_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "embedding_id"),
        _run_fk(),
    )
    op.create_table(
        "bookmarks",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("created", sa.Float, nullable=False),
        sa.Column("updated", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "name"),
        _run_fk(),
    )
    op.execute("CREATE VIEW projects AS SELECT project AS name, COUNT(*) AS n_runs, MAX(created) AS last_created "
               "FROM runs GROUP BY project")


def downgrade() -> None:
    op.execute("DROP VIEW projects")
    for table in ("bookmarks", "embeddings", "blob_proofs", "run_blobs", "records"):
        op.drop_table(table)
    op.drop_index("runs_project", "runs")
    op.drop_table("runs")
