"""What autogenerate leaves out, and which of its changes it warns about."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

import flask_migrate_alt as fma

from .conftest import AppFactory, Server
from .test_safety import execute


def upgrade_text(script: Any) -> str:
    """The text of the upgrade() function of a new revision (or its path)."""
    text = Path(getattr(script, "path", script)).read_text()
    return text.split("def upgrade(", 1)[1].split("def downgrade(", 1)[0]


def changes(diffs: Any) -> list[tuple[str, ...]]:
    """Alembic's differences as (kind, schema, table[, column]) tuples."""
    found = []
    for diff in diffs:
        if diff[0] == "add_column":
            found.append(("add_column", diff[1], diff[2], diff[3].name))
        elif diff[0] in ("add_table", "remove_table"):
            found.append((diff[0], diff[1].schema, diff[1].name))
        else:
            found.append((diff[0],))
    return found


def check_passes(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    with app.app_context():
        assert fma.compare_metadata() == []
        assert fma.check() is None
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert "No new upgrade operations detected" in result.output
    capsys.readouterr()


def check_fails_with(
    app: Flask, capsys: pytest.CaptureFixture[str], expected: list[tuple[str, ...]]
) -> None:
    with app.app_context():
        assert changes(fma.compare_metadata()) == expected
        capsys.readouterr()
        with pytest.raises(fma.CommandFailed):
            fma.check()
    error = capsys.readouterr().err
    result = app.test_cli_runner().invoke(args=["db", "check"])
    assert result.exit_code == 1
    for output in (error, result.output):
        assert "New upgrade operations detected" in output
        assert output.count("add_column") == len(expected)
        assert "add_table" not in output and "remove_table" not in output


# --------------------------------------------------------------------------
# tables and schemas named like those of database extensions


def gis_models(db: Any, bind_keys: list[str], srid: bool = False) -> None:
    """A model table that PostGIS would have created too."""
    db.Table(
        "geometry_columns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50)),
        *([sa.Column("srid", sa.Integer)] if srid else []),
    )


def test_model_table_with_a_system_table_name(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    app = make_app(url, models=gis_models)
    with app.app_context():
        fma.init()
        script = fma.migrate(message="gis", rev_id="rev1")
        assert script is not None
        assert "create_table('geometry_columns'" in upgrade_text(script)
        fma.upgrade()
    # An extension's table the models do not declare stays out.
    execute(url, "CREATE TABLE spatial_ref_sys (srid INTEGER PRIMARY KEY)")

    check_passes(app, capsys)
    with app.app_context():
        assert fma.migrate(message="nothing") is None

    changed = make_app(url, models=functools.partial(gis_models, srid=True))
    check_fails_with(
        changed, capsys, [("add_column", None, "geometry_columns", "srid")]
    )


def topology_models(db: Any, bind_keys: list[str], scale: bool = False) -> None:
    # The default schema named explicitly: Alembic reflects its tables
    # with schema None.
    db.Table(
        "geometry_columns",
        sa.Column("id", sa.Integer, primary_key=True),
        schema="public",
    )
    db.Table(
        "maps",
        sa.Column("id", sa.Integer, primary_key=True),
        *([sa.Column("scale", sa.Integer)] if scale else []),
        schema="topology",
    )


def test_model_schema_with_a_system_schema_name(
    postgresql_server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgresql_server.new_database()
    execute(
        url,
        "CREATE SCHEMA topology",
        "CREATE SCHEMA tiger",
        "CREATE SCHEMA gis",
        # What extensions create, and the models do not declare.
        "CREATE TABLE topology.layer (id INTEGER PRIMARY KEY)",
        "CREATE TABLE tiger.addr (id INTEGER PRIMARY KEY)",
        "CREATE TABLE gis.geometry_columns (id INTEGER PRIMARY KEY)",
        "CREATE TABLE public.spatial_ref_sys (srid INTEGER PRIMARY KEY)",
    )
    app = make_app(url, models=topology_models, include_schemas=True)
    with app.app_context():
        fma.init()
        script = fma.migrate(message="maps", rev_id="rev1")
        assert script is not None
        body = upgrade_text(script)
        assert body.count("op.create_table(") == 2
        assert "create_table('maps'" in body and "schema='topology'" in body
        assert "create_table('geometry_columns'" in body
        assert "drop_table" not in body
        fma.upgrade()

    check_passes(app, capsys)

    changed = make_app(
        url,
        models=functools.partial(topology_models, scale=True),
        include_schemas=True,
    )
    check_fails_with(changed, capsys, [("add_column", "topology", "maps", "scale")])


def test_user_patterns_still_exclude_model_tables(
    make_app: AppFactory, url: str
) -> None:
    app = make_app(url, models=gis_models, exclude_tables=["geometry_*"])
    with app.app_context():
        fma.init()
        assert fma.compare_metadata() == []
        assert fma.migrate(message="nothing") is None


def test_app_include_name_runs_after_ours(make_app: AppFactory, url: str) -> None:
    seen: list[str] = []

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "table" and name is not None:
            seen.append(name)
        return True

    app = make_app(url, models=gis_models, include_name=include_name)
    with app.app_context():
        fma.init()
        fma.migrate(message="gis")
        fma.upgrade()
    execute(url, "CREATE TABLE spatial_ref_sys (srid INTEGER PRIMARY KEY)")
    seen.clear()
    with app.app_context():
        assert fma.compare_metadata() == []
    assert "geometry_columns" in seen
    assert "spatial_ref_sys" not in seen


# --------------------------------------------------------------------------
# warnings about type changes


def typed_models(db: Any, bind_keys: list[str], after: bool = False) -> None:
    columns = {
        # name: (type before, type after)
        "code": (sa.String(50), sa.Integer()),
        "seen": (sa.DateTime(), sa.Boolean()),
        "amount": (sa.Numeric(10, 2), sa.Integer()),
        "count": (sa.Integer(), sa.String(10)),
        # Changes within a family that can hold as much as before.
        "label": (sa.String(50), sa.String(100)),
        "total": (sa.Integer(), sa.BigInteger()),
        "note": (sa.String(50), sa.Text()),
    }
    db.Table(
        "item",
        sa.Column("id", sa.Integer, primary_key=True),
        *(sa.Column(name, types[after]) for name, types in columns.items()),
    )


NARROWED = ["item.code", "item.seen", "item.amount", "item.count"]
WIDENED = ["item.label", "item.total", "item.note"]


def type_warnings(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.startswith("WARNING")]
    for line in lines:
        assert line.startswith("WARNING: the new revision changes ")
        assert line.endswith(", which destroys data; review it before upgrading")
    return sorted(line.split()[5] for line in lines)


def test_type_change_to_another_family_is_announced(
    make_app: AppFactory, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with make_app(url, models=typed_models).app_context():
        fma.init()
        fma.migrate(message="items", rev_id="rev1")
        fma.upgrade()
    changed = make_app(url, models=functools.partial(typed_models, after=True))
    versions = Path("migrations", "versions")

    result = changed.test_cli_runner().invoke(args=["db", "migrate", "-m", "types"])
    assert result.exit_code == 0, result.output
    assert type_warnings(result.stderr) == sorted(NARROWED)
    assert "WARNING" not in result.stdout
    (script,) = versions.glob("*_types.py")
    body = upgrade_text(script)
    for column in NARROWED + WIDENED:  # each change is in the revision
        assert body.count(f"alter_column('{column.split('.')[1]}'") == 1, column
    script.unlink()

    capsys.readouterr()
    with changed.app_context():
        assert fma.migrate(message="types") is not None
    assert type_warnings(capsys.readouterr().err) == sorted(NARROWED)
