"""Every shipped template, end to end, on every database.

init -> migrate -> upgrade -> check -> downgrade, plus offline --sql, through
``flask db`` (the CLI runner) with the template's own env.py. Each template
runs both on Flask-SQLAlchemy's ordinary engines and on async engines: the
template names the usual pairing, not the only one that works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_alt import Migrate

from .conftest import (
    POSTGRESQL_DRIVER,
    Server,
    dispose_engines,
    fsa_table,
    table_names,
    version_rows,
)

TEMPLATES = ["flask", "flask-multidb", "aioflask", "aioflask-multidb"]

SYNC_DRIVERS = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": POSTGRESQL_DRIVER,
    "mysql+aiomysql": "mysql+pymysql",
}


def sync_url(url: str) -> str:
    """The same database through a synchronous driver, for inspection."""
    u = sa.engine.make_url(url)
    return u.set(
        drivername=SYNC_DRIVERS.get(u.drivername, u.drivername)
    ).render_as_string(hide_password=False)


class AsyncDB:
    """A minimal db object with async engines, as used with the aioflask templates."""

    def __init__(self, urls: dict[str | None, str]) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engines = {key: create_async_engine(url) for key, url in urls.items()}
        self.metadatas = {key: sa.MetaData() for key in urls}
        self.engine = self.engines[None]
        self.metadata = self.metadatas[None]

    def dispose(self) -> None:
        import asyncio

        async def close() -> None:
            for engine in self.engines.values():
                await engine.dispose()

        asyncio.run(close())


def user_columns() -> list[Any]:
    return [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64)),
    ]


@pytest.fixture
def template_app(tmp_path: Path, server: Server, request: pytest.FixtureRequest) -> Any:
    """Return a function building (app, urls by bind key, metadatas) for a template."""
    cleanups: list[Any] = []

    def build(
        template: str, is_async: bool | None = None
    ) -> tuple[Flask, dict[str | None, str], dict[str | None, sa.MetaData]]:
        """``is_async``: async engines or Flask-SQLAlchemy's (default: the
        kind the template is made for)."""
        if is_async is None:
            is_async = template.startswith("aioflask")
        keys: list[str | None] = [None]
        if template.endswith("-multidb"):
            keys.append("users")
        urls = {key: server.new_database(async_driver=is_async) for key in keys}
        app = Flask("templateapp", root_path=str(tmp_path))
        db: Any
        if is_async:
            db = AsyncDB(urls)
            cleanups.append(db.dispose)
            for key in keys:
                sa.Table(_table_for(key), db.metadatas[key], *user_columns())
            metadatas = db.metadatas
        else:
            from flask_sqlalchemy import SQLAlchemy

            app.config["SQLALCHEMY_DATABASE_URI"] = urls[None]
            app.config["SQLALCHEMY_BINDS"] = {k: v for k, v in urls.items() if k}
            db = SQLAlchemy(app)
            for key in keys:
                fsa_table(db, _table_for(key), *user_columns(), bind_key=key)
            # Flask-SQLAlchemy 2.x keeps every bind's tables in one MetaData.
            metadatas = getattr(db, "metadatas", {key: db.metadata for key in keys})
            cleanups.append(lambda: dispose_engines(app, db))
        Migrate(app, db)
        return app, urls, metadatas

    yield build
    for cleanup in cleanups:
        cleanup()


def _table_for(key: str | None) -> str:
    return "user" if key is None else f"session_{key}"


def _fill_revision(path: Path, edits: dict[str, str]) -> None:
    """Replace the empty body of each function named in ``edits``."""
    body = path.read_text()
    for function, statement in edits.items():
        stub = f"def {function}() -> None:\n    pass"
        assert stub in body, "template changed"
        body = body.replace(stub, f"def {function}() -> None:\n    {statement}")
    path.write_text(body)


@pytest.mark.parametrize("engines", ["sync", "async"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_template_lifecycle(
    template: str, engines: str, template_app: Any, tmp_path: Path
) -> None:
    # 'flask' on async engines and 'aioflask' on Flask-SQLAlchemy's included.
    app, urls, metadatas = template_app(template, is_async=engines == "async")
    runner = app.test_cli_runner()

    result = runner.invoke(args=["db", "init", "-t", template])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "migrations" / "env.py").is_file()
    assert (tmp_path / "migrations" / "alembic.ini").is_file()

    result = runner.invoke(args=["db", "migrate", "-m", "first"])
    assert result.exit_code == 0, result.output
    revisions = list((tmp_path / "migrations" / "versions").glob("*_first.py"))
    assert len(revisions) == 1
    source = revisions[0].read_text()
    for key in urls:
        assert f"'{_table_for(key)}'" in source
    if template.endswith("-multidb"):
        assert "def upgrade_users()" in source and "def upgrade_()" in source

    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    rev_id = revisions[0].name.split("_")[0]
    for key, url in urls.items():
        assert _table_for(key) in table_names(sync_url(url))
        assert version_rows(sync_url(url)) == [rev_id]

    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    assert "No new upgrade operations detected" in result.output

    # Nothing changed since: autogenerate writes no file.
    result = runner.invoke(args=["db", "migrate", "-m", "empty"])
    assert result.exit_code == 0, result.output
    assert not list((tmp_path / "migrations" / "versions").glob("*_empty.py"))

    # A model change makes check fail with one line and exit 1.
    for key, metadata in metadatas.items():
        metadata.tables[_table_for(key)].append_column(
            sa.Column("email", sa.String(120))
        )
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 1
    assert "Error: New upgrade operations detected" in result.output
    assert "Traceback" not in result.output

    result = runner.invoke(args=["db", "downgrade"])
    assert result.exit_code == 0, result.output
    for key, url in urls.items():
        assert _table_for(key) not in table_names(sync_url(url))
        assert version_rows(sync_url(url)) == []


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_offline_sql(template: str, template_app: Any, tmp_path: Path) -> None:
    app, urls, _ = template_app(template)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "init", "-t", template]).exit_code == 0
    result = runner.invoke(
        args=["db", "revision", "-m", "by hand", "--rev-id", "aaa111"]
    )
    assert result.exit_code == 0, result.output
    revision_file = next((tmp_path / "migrations" / "versions").glob("aaa111_*.py"))
    create = "op.create_table('{}', sa.Column('id', sa.Integer, primary_key=True))"
    edits = {
        "upgrade": create.format("offline_main"),
        "downgrade": "op.drop_table('offline_main')",
    }
    if template.endswith("-multidb"):
        edits = {
            "upgrade_": create.format("offline_main"),
            "upgrade_users": create.format("offline_users"),
            "downgrade_users": "op.drop_table('offline_users')",
        }
    _fill_revision(revision_file, edits)

    result = runner.invoke(args=["db", "upgrade", "--sql"])
    assert result.exit_code == 0, result.output
    if template.endswith("-multidb"):
        default_sql = (tmp_path / "default.sql").read_text()
        users_sql = (tmp_path / "bind-users.sql").read_text()
        assert "CREATE TABLE offline_main" in default_sql
        assert "offline_users" not in default_sql
        assert "CREATE TABLE offline_users" in users_sql
        assert not (tmp_path / ".sql").exists()
    else:
        assert "CREATE TABLE offline_main" in result.stdout
        assert "aaa111" in result.stdout

    result = runner.invoke(args=["db", "downgrade", "--sql"])
    assert result.exit_code == 0, result.output
    if template.endswith("-multidb"):
        assert "DROP TABLE offline_users" in (tmp_path / "bind-users.sql").read_text()
    else:
        assert "DROP TABLE offline_main" in result.stdout

    result = runner.invoke(args=["db", "stamp", "--sql", "aaa111"])
    assert result.exit_code == 0, result.output

    # Offline mode never touched the databases.
    for url in urls.values():
        assert table_names(sync_url(url)) == set()


@pytest.mark.parametrize("template", ["flask-multidb", "aioflask-multidb"])
def test_multidb_upgrade_is_all_or_nothing(
    template: str, server: Server, template_app: Any, tmp_path: Path
) -> None:
    app, urls, _ = template_app(template)
    urls = {key: sync_url(url) for key, url in urls.items()}
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "init", "-t", template]).exit_code == 0
    result = runner.invoke(args=["db", "revision", "--rev-id", "good"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    before = {key: table_names(url) for key, url in urls.items()}
    for url in urls.values():
        assert version_rows(url) == ["good"]

    # The default database's part succeeds, the users database's part fails.
    result = runner.invoke(args=["db", "revision", "--rev-id", "half"])
    assert result.exit_code == 0, result.output
    _fill_revision(
        next((tmp_path / "migrations" / "versions").glob("half_*.py")),
        {
            "upgrade_": "op.create_table('half_done', "
            "sa.Column('id', sa.Integer, primary_key=True))",
            "upgrade_users": "op.execute('SELECT * FROM no_such_table')",
        },
    )
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert errors[0].startswith("Error: database error:")
    assert "no_such_table" in errors[0]

    # Neither database moved to 'half'.
    for url in urls.values():
        assert version_rows(url) == ["good"]
    assert table_names(urls["users"]) == before["users"]
    if server.backend == "mysql":
        # MySQL and MariaDB commit implicitly before and after every DDL
        # statement, so the CREATE TABLE cannot be rolled back (as the docs
        # say); the version row written after it is.
        assert table_names(urls[None]) == before[None] | {"half_done"}
        return
    # PostgreSQL has transactional DDL, and SQLite gets it from the
    # environment (BEGIN sent for the migration's transaction), so the table
    # created on the default database is rolled back with everything else.
    assert table_names(urls[None]) == before[None]
