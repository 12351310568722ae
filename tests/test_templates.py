"""Every shipped template, end to end, on every database.

init -> migrate -> upgrade -> check -> downgrade, plus offline --sql, through
``flask db`` (the CLI runner) with the template's own env.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_migrate_alt import Migrate

from .conftest import Server, table_names, version_rows

TEMPLATES = ["flask", "flask-multidb", "aioflask", "aioflask-multidb"]

SYNC_DRIVERS = {
    "sqlite+aiosqlite": "sqlite",
    "postgresql+asyncpg": "postgresql+psycopg",
    "mysql+aiomysql": "mysql+pymysql",
}


def sync_url(url: str) -> str:
    """The same database through a synchronous driver, for inspection."""
    u = sa.make_url(url)
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
        template: str,
    ) -> tuple[Flask, dict[str | None, str], dict[str | None, sa.MetaData]]:
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
                db.Table(_table_for(key), *user_columns(), bind_key=key)
            metadatas = db.metadatas
            cleanups.append(lambda: _dispose_fsa(app, db))
        Migrate(app, db)
        return app, urls, metadatas

    yield build
    for cleanup in cleanups:
        cleanup()


def _dispose_fsa(app: Flask, db: Any) -> None:
    with app.app_context():
        for engine in db.engines.values():
            engine.dispose()


def _table_for(key: str | None) -> str:
    return "user" if key is None else f"session_{key}"


@pytest.mark.parametrize("template", TEMPLATES)
def test_template_lifecycle(template: str, template_app: Any, tmp_path: Path) -> None:
    app, urls, metadatas = template_app(template)
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
    body = revision_file.read_text()
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
    for function, statement in edits.items():
        stub = f"def {function}() -> None:\n    pass"
        assert stub in body
        body = body.replace(stub, f"def {function}() -> None:\n    {statement}")
    revision_file.write_text(body)

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
