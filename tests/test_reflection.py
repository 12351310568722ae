"""Bulk reflection gives autogenerate exactly the answers of per-table reflection."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from flask_migrate_alt.reflection import bulk_reflection

from .conftest import Server


def _database(metadata: sa.MetaData, url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    return engine


def _models(changed: bool) -> sa.MetaData:
    metadata = sa.MetaData()
    parent = sa.Table(
        "parent",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50 if changed else 80), nullable=False),
        sa.Column("code", sa.String(10), unique=True),
        comment="parents" if changed else None,
    )
    sa.Table(
        "child",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.ForeignKey(parent.c.id)),
        sa.Column("score", sa.Numeric(10, 2)),
        sa.Index("ix_child_score", "score", unique=changed),
        sa.CheckConstraint("score >= 0", name="ck_score"),
    )
    for index in range(20):
        columns = [sa.Column("id", sa.Integer, primary_key=True)]
        if changed and index % 5 == 0:
            columns.append(sa.Column("extra", sa.Text))
        sa.Table(f"filler_{index}", metadata, *columns, sa.Column("v", sa.Integer))
    if changed:
        sa.Table("added", metadata, sa.Column("id", sa.Integer, primary_key=True))
    return metadata


def _diffs(connection: sa.Connection, metadata: sa.MetaData) -> list[str]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "target_metadata": metadata}
    )
    return sorted(repr(diff) for diff in compare_metadata(context, metadata))


def test_bulk_reflection_matches_per_table_reflection(
    postgresql_server: Server,
) -> None:
    url = postgresql_server.new_database()
    engine = _database(_models(changed=False), url)
    try:
        target = _models(changed=True)
        with engine.connect() as connection:
            plain = _diffs(connection, target)
        with engine.connect() as connection, bulk_reflection(connection):
            assert type(sa.inspect(connection)).__name__ == "BulkInspector"
            bulk = _diffs(connection, target)
        assert plain  # the comparison found the differences...
        assert bulk == plain  # ...and bulk reflection found the same ones
        with engine.connect() as connection:
            # Undone afterwards.
            assert type(sa.inspect(connection)).__name__ != "BulkInspector"
    finally:
        engine.dispose()
