"""The Python API: what the command functions return, and the quiet helpers.

Deploy scripts, admin views and health checks ask "which revision is this
database at?" or "is an upgrade pending?" and read the answer from the
return value instead of parsing output. The commands still print as before;
the quiet helpers never print and raise ordinary exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.operations import MigrationScript, Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt import Migrate

from .conftest import (
    REPO,
    AppFactory,
    InUse,
    Server,
    add_table_ops,
    default_models,
    fsa_engines,
    table_names,
    version_rows,
)
from .test_templates import AsyncDB, sync_url

# --------------------------------------------------------------------------
# helpers


def table_revision(rev_id: str, table: str) -> Script:
    """Create revision ``rev_id`` that creates ``table`` (dropped on downgrade)."""
    script = fma.revision(message=f"create {table}", rev_id=rev_id)
    assert isinstance(script, Script)
    add_table_ops(script.path, table)
    return script


def ids(scripts: list[Script]) -> list[str]:
    return [s.revision for s in scripts]


def assert_silent(capsys: pytest.CaptureFixture[str]) -> None:
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")


def models_with_email(db: Any, bind_keys: list[str]) -> None:
    """The default models, with an ``email`` column added to ``user``."""
    default_models(db, bind_keys, email=True)


def cli(app: Flask, *args: str) -> str:
    """Run ``flask db <args>``; assert success and return stdout."""
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def single(make_app: AppFactory, server: Server) -> tuple[Flask, str]:
    """An app on one database of each server, with a ``user`` model."""
    url = server.new_database()
    return make_app(url), url


@pytest.fixture
def multi(make_app: AppFactory, server: Server) -> tuple[Flask, dict[str | None, str]]:
    """An app with a default database and a ``users`` bind on each server."""
    urls: dict[str | None, str] = {
        None: server.new_database(),
        "users": server.new_database(),
    }
    app = make_app(urls[None], binds={"users": urls["users"]})
    return app, urls


@pytest.fixture
def async_app(tmp_path: Path, server: Server) -> Iterator[Callable[..., Any]]:
    """Build ``(app, sync urls by bind key)`` for an app with async engines.

    ``async_app(keys)``: one database per key, each with a ``user_<key>``
    table (``user`` for the default database).
    """
    made: list[AsyncDB] = []

    def build(
        keys: tuple[str | None, ...] = (None,),
    ) -> tuple[Flask, dict[str | None, str]]:
        urls = {key: server.new_database(async_driver=True) for key in keys}
        db = AsyncDB(urls)
        made.append(db)
        for key in keys:
            sa.Table(
                "user" if key is None else f"user_{key}",
                db.metadatas[key],
                sa.Column("id", sa.Integer, primary_key=True),
            )
        app = Flask("asyncapp", root_path=str(tmp_path))
        Migrate(app, db)
        return app, {key: sync_url(url) for key, url in urls.items()}

    yield build
    for db in made:
        db.dispose()


# --------------------------------------------------------------------------
# return values of the commands


def test_init_and_list_templates_return_what_they_print(
    app: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        assert fma.init() == "migrations"
        assert fma.init(tmp_path / "other", multidb=True) == str(tmp_path / "other")
        assert "Generating" in capsys.readouterr().out
        templates = fma.list_templates()
    assert templates == {
        path.name: (path / "README").read_text().splitlines()[0].strip()
        for path in (REPO / "templates").iterdir()
        # not a template: the env.py of Flask-Alembic repositories
        if not path.name.startswith("_")
    }
    assert "_in_process" not in templates
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "Available templates:",
        *(f"{name} - {synopsis}" for name, synopsis in templates.items()),
    ]
    assert cli(app, "list-templates").splitlines() == printed


def test_revision_and_migrate_return_the_new_script(
    single: tuple[Flask, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = single
    with app.app_context():
        fma.init()
        capsys.readouterr()
        script = fma.migrate(message="users")
        assert isinstance(script, Script)
        assert Path(script.path).is_file()
        assert Path(script.path).parent == tmp_path / "migrations" / "versions"
        assert script.doc == "users"
        assert script.down_revision is None
        assert "op.create_table('user'" in Path(script.path).read_text()
        assert f"Generating {script.path}" in capsys.readouterr().out

        assert fma.upgrade() == [script.revision]
        # Nothing changed: no file, and None rather than an empty list.
        assert fma.migrate(message="nothing") is None
        assert fma.revision(message="nothing", autogenerate=True) is None
        assert not list((tmp_path / "migrations" / "versions").glob("*_nothing.py"))

        by_hand = fma.revision(message="by hand")
        assert isinstance(by_hand, Script)
        assert by_hand.down_revision == script.revision
        assert f"Generating {by_hand.path}" in capsys.readouterr().out


def test_upgrade_and_downgrade_return_ids_in_order(
    single: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = single
    with app.app_context():
        fma.init()
        for rev_id, table in [("r1", "one"), ("r2", "two"), ("r3", "three")]:
            table_revision(rev_id, table)

        assert fma.upgrade(revision="r2") == ["r1", "r2"]
        assert fma.upgrade() == ["r3"]
        assert fma.upgrade() == []
        assert version_rows(url) == ["r3"]

        assert fma.downgrade() == ["r3"]
        assert fma.downgrade(revision="base") == ["r2", "r1"]
        assert fma.downgrade(revision="base") == []
        assert table_names(url) == {"alembic_version"}

        # stamp() moves the version table without running anything: not
        # counted as applied by the upgrade that follows.
        fma.stamp(revision="r1")
        assert fma.upgrade() == ["r2", "r3"]
        assert table_names(url) == {"alembic_version", "two", "three"}

    # The command line runs the same code; its exit status and effect agree.
    cli(app, "downgrade", "r1")
    assert version_rows(url) == ["r1"]
    cli(app, "upgrade")
    assert version_rows(url) == ["r3"]


def test_offline_upgrade_and_downgrade_return_ids(
    app: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        fma.init()
        table_revision("r1", "one")
        table_revision("r2", "two")
        capsys.readouterr()

        assert fma.upgrade(sql=True) == ["r1", "r2"]
        out = capsys.readouterr().out
        assert "CREATE TABLE one" in out and "CREATE TABLE two" in out

        assert fma.upgrade(revision="r1:r2", sql=True) == ["r2"]
        assert "CREATE TABLE one" not in capsys.readouterr().out

        assert fma.downgrade(sql=True) == ["r2"]
        assert "DROP TABLE two" in capsys.readouterr().out
        assert fma.downgrade(revision="r2:base", sql=True) == ["r2", "r1"]

    assert table_names(url) == set()


def test_stamp_returns_the_current_ids(
    single: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = single
    with app.app_context():
        fma.init()
        fma.revision(rev_id="aaa", message="one")
        fma.revision(rev_id="bbb", message="two")
        fma.revision(rev_id="ccc", message="side", head="base", branch_label="side")

        assert sorted(fma.stamp(revision="heads")) == ["bbb", "ccc"]
        assert version_rows(url) == ["bbb", "ccc"]
        assert fma.stamp(revision="aaa", purge=True) == ["aaa"]
        assert fma.stamp(revision="base") == []
        assert version_rows(url) == []

        capsys.readouterr()
        assert fma.stamp(revision="bbb", sql=True) == ["bbb"]
        assert "INSERT INTO alembic_version" in capsys.readouterr().out
        assert version_rows(url) == []


def test_current_returns_scripts(
    single: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = single
    with app.app_context():
        fma.init()
        first = table_revision("r1", "one")
        table_revision("r2", "two")
        capsys.readouterr()
        assert fma.current() == []
        assert capsys.readouterr().out == ""

        fma.upgrade(revision="r1")
        found = fma.current()
        assert isinstance(found, list)
        assert ids(found) == ["r1"]
        assert found[0].path == first.path
        assert capsys.readouterr().out.splitlines() == ["r1"]

        fma.upgrade()
        found = fma.current(verbose=True)
        assert isinstance(found, list)
        assert ids(found) == ["r2"]
        assert "Rev: r2 (head)" in capsys.readouterr().out
    assert cli(app, "current").splitlines() == ["r2 (head)"]


def test_heads_branches_history_show_return_scripts(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        fma.init()
        fma.revision(message="root", rev_id="aaa")
        fma.revision(message="left", rev_id="bbb")
        fma.revision(message="right", rev_id="ccc", head="aaa", splice=True)
        capsys.readouterr()

        heads = fma.heads()
        assert sorted(ids(heads)) == ["bbb", "ccc"]
        printed = capsys.readouterr().out.splitlines()
        assert sorted(printed) == sorted(s.cmd_format(False) for s in heads)
        assert sorted(ids(fma.heads(resolve_dependencies=True))) == ["bbb", "ccc"]

        assert ids(fma.branches()) == ["aaa"]
        assert "aaa (branchpoint)" in capsys.readouterr().out

        history = fma.history()
        assert sorted(ids(history[:2])) == ["bbb", "ccc"]
        assert ids(history[2:]) == ["aaa"]
        assert all(isinstance(s, Script) for s in history)
        assert len(capsys.readouterr().out.splitlines()) == 3
        assert ids(fma.history(rev_range="aaa:bbb")) == ["bbb", "aaa"]
        assert ids(fma.history(rev_range=":aaa")) == ["aaa"]

        shown = fma.show(revision="bbb")
        assert ids(shown) == ["bbb"]
        assert "Rev: bbb (head)" in capsys.readouterr().out
        assert sorted(ids(fma.show(revision="heads"))) == ["bbb", "ccc"]

    assert sorted(cli(app, "heads").splitlines()) == sorted(printed)


def test_history_range_with_current(
    app: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        fma.init()
        for rev_id in ("r1", "r2", "r3", "r4"):
            fma.revision(message=rev_id, rev_id=rev_id)
        fma.upgrade(revision="r2")
        capsys.readouterr()

        assert ids(fma.history(rev_range="current:")) == ["r4", "r3", "r2"]
        printed = capsys.readouterr().out.splitlines()
        assert [line.split(" -> ")[1].split(",")[0] for line in printed] == [
            "r4 (head)",
            "r3",
            "r2",
        ]
        assert ids(fma.history(rev_range=":current")) == ["r2", "r1"]
        assert ids(fma.history(rev_range="r1:current")) == ["r2", "r1"]

        fma.downgrade(revision="base")
        assert ids(fma.history(rev_range=":current")) == []


def test_multidb_return_values(
    multi: tuple[Flask, dict[str | None, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, urls = multi
    with app.app_context():
        fma.init(multidb=True)
        script = fma.migrate(message="both")
        assert isinstance(script, Script)
        body = Path(script.path).read_text()
        assert "op.create_table('user'" in body
        assert "op.create_table('session_users'" in body

        assert fma.current() == {None: [], "users": []}

        # The revision runs once per database; its id is listed once.
        assert fma.upgrade() == [script.revision]
        for url in urls.values():
            assert version_rows(url) == [script.revision]
        assert "session_users" in table_names(urls["users"])
        capsys.readouterr()

        found = fma.current()
        assert isinstance(found, dict)
        assert set(found) == {None, "users"}
        for scripts in found.values():
            assert ids(scripts) == [script.revision]
        assert capsys.readouterr().out.splitlines() == [f"{script.revision} (head)"] * 2

        assert fma.upgrade() == []
        assert fma.downgrade() == [script.revision]
        for url in urls.values():
            assert version_rows(url) == []

        # Offline, each database's SQL goes to its own file.
        assert fma.upgrade(sql=True) == [script.revision]
        assert "CREATE TABLE session_users" in (tmp_path / "bind-users.sql").read_text()
        for url in urls.values():
            assert version_rows(url) == []

        assert fma.stamp() == [script.revision]
        for url in urls.values():
            assert version_rows(url) == [script.revision]


def test_aioflask_multidb_current_returns_dict(
    async_app: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    app, urls = async_app((None, "users"))
    with app.app_context():
        fma.init(template="aioflask-multidb")
        script = fma.migrate(message="async", rev_id="as1")
        assert isinstance(script, Script)
        assert fma.current() == {None: [], "users": []}
        assert fma.upgrade() == ["as1"]
        found = fma.current()
        assert isinstance(found, dict)
        assert {key: ids(scripts) for key, scripts in found.items()} == {
            None: ["as1"],
            "users": ["as1"],
        }
        assert fma.downgrade() == ["as1"]
    assert table_names(urls["users"]) == {"alembic_version"}


# --------------------------------------------------------------------------
# quiet helpers


QUIET_HELPERS: list[Callable[..., Any]] = [
    fma.needs_upgrade,
    fma.needs_revision,
    fma.compare_metadata,
    fma.produce_migrations,
    fma.script_directory,
]


def test_quiet_helpers_are_public() -> None:
    for name in (
        "needs_upgrade",
        "needs_revision",
        "compare_metadata",
        "produce_migrations",
        "script_directory",
        "migration_context",
        "operations",
    ):
        assert name in fma.__all__


@pytest.mark.parametrize("helper", QUIET_HELPERS, ids=lambda f: f.__name__)
def test_quiet_helper_missing_directory_raises_file_not_found(
    app: Flask, helper: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        with pytest.raises(FileNotFoundError, match="'migrations' not found"):
            helper()
        with pytest.raises(FileNotFoundError, match="'elsewhere' not found"):
            helper("elsewhere")
    assert_silent(capsys)


def test_quiet_helper_without_migrate_raises_runtime_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = Flask("plainapp", root_path=str(tmp_path))
    with app.app_context():
        with pytest.raises(fma.MigrateNotSetUp, match="Migrate"):
            fma.needs_upgrade()
        with pytest.raises(fma.MigrateNotSetUp):
            with fma.migration_context():
                pass  # pragma: no cover
    assert_silent(capsys)


def test_quiet_helpers_answer_without_printing(
    single: tuple[Flask, str],
    make_app: AppFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, url = single
    with app.app_context():
        fma.init()
        capsys.readouterr()
        directory = fma.script_directory()
        assert isinstance(directory, ScriptDirectory)
        assert directory.get_heads() == []
        assert fma.needs_upgrade() is False  # an empty history needs nothing
        assert fma.needs_revision() is True
        (diff,) = fma.compare_metadata()
        assert diff[0] == "add_table" and diff[1].name == "user"
        produced = fma.produce_migrations()
        assert isinstance(produced, MigrationScript)
        assert produced.upgrade_ops is not None
        assert not produced.upgrade_ops.is_empty()
        assert_silent(capsys)

        script = fma.migrate(message="users")
        assert isinstance(script, Script)
        capsys.readouterr()
        assert fma.script_directory().get_heads() == [script.revision]
        assert fma.needs_upgrade() is True
        assert fma.needs_revision() is True  # the table exists only on paper
        # The helpers only read: nothing was created.
        assert table_names(url) == {"alembic_version"}
        assert_silent(capsys)

        fma.upgrade()
        capsys.readouterr()
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is False
        assert fma.compare_metadata() == []
        produced = fma.produce_migrations()
        assert isinstance(produced, MigrationScript)
        assert produced.upgrade_ops is not None and produced.upgrade_ops.is_empty()
        assert_silent(capsys)

        # A directory given as an argument, as a path.
        assert fma.needs_upgrade(tmp_path / "migrations") is False

    changed = make_app(url, models=models_with_email)
    with changed.app_context():
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is True
        (diff,) = fma.compare_metadata()
        assert diff[0] == "add_column"
        assert (diff[2], diff[3].name) == ("user", "email")
    assert_silent(capsys)


def test_quiet_helpers_multidb_answer_per_bind(
    multi: tuple[Flask, dict[str | None, str]],
    make_app: AppFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app, urls = multi
    with app.app_context():
        fma.init(multidb=True)
        fma.migrate(message="both")
        capsys.readouterr()
        assert fma.needs_upgrade() is True
        assert fma.needs_revision() is True
        found = fma.compare_metadata()
        assert isinstance(found, dict)
        assert {key: [d[1].name for d in diffs] for key, diffs in found.items()} == {
            None: ["user"],
            "users": ["session_users"],
        }
        produced = fma.produce_migrations()
        assert isinstance(produced, dict)
        assert set(produced) == {None, "users"}
        assert all(isinstance(m, MigrationScript) for m in produced.values())
        assert_silent(capsys)

        fma.upgrade()
        capsys.readouterr()
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is False
        assert fma.compare_metadata() == {None: [], "users": []}
        assert_silent(capsys)

        # One database behind is enough.
        engine = sa.create_engine(urls["users"])
        with engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM alembic_version"))
        engine.dispose()
        assert fma.needs_upgrade() is True

    changed = make_app(
        urls[None], binds={"users": urls["users"]}, models=models_with_email
    )
    with changed.app_context():
        found = fma.compare_metadata()
        assert isinstance(found, dict)
        assert found["users"] == []
        assert [d[0] for d in found[None]] == ["add_column"]
        assert fma.needs_revision() is True
    assert_silent(capsys)


@pytest.mark.parametrize(
    "template", ["flask", "flask-multidb", "aioflask", "aioflask-multidb"]
)
def test_quiet_helpers_follow_the_template(
    template: str, make_app: AppFactory, sqlite_server: Server
) -> None:
    urls = {None: sqlite_server.new_database(), "users": sqlite_server.new_database()}
    app = make_app(urls[None], binds={"users": urls["users"]})
    with app.app_context():
        fma.init(template=template)
        fma.migrate(message="first")
        fma.upgrade()
        if template.endswith("-multidb"):
            assert fma.compare_metadata() == {None: [], "users": []}
            assert set(fma.produce_migrations()) == {None, "users"}  # type: ignore[arg-type]
        else:
            # The single-database templates leave the bind alone.
            assert fma.compare_metadata() == []
            assert isinstance(fma.produce_migrations(), MigrationScript)
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is False


def test_quiet_helpers_honour_custom_version_table(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    app = make_app(url, version_table="my_versions")
    with app.app_context():
        fma.init()
        fma.migrate(message="users", rev_id="v1")
        fma.upgrade()
        assert version_rows(url, "my_versions") == ["v1"]
        assert "alembic_version" not in table_names(url)
        capsys.readouterr()
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is False
        with fma.migration_context() as context:
            assert context.get_current_revision() == "v1"
        fma.revision(message="more", rev_id="v2")
        capsys.readouterr()
        assert fma.needs_upgrade() is True
        assert_silent(capsys)
    # No stray version table was created by the helpers.
    assert "alembic_version" not in table_names(url)


def test_quiet_helpers_with_async_engines(
    async_app: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    app, urls = async_app()
    with app.app_context():
        fma.init(template="aioflask")
        fma.migrate(message="users", rev_id="a1")
        capsys.readouterr()
        assert fma.needs_upgrade() is True
        assert fma.needs_revision() is True
        assert [d[0] for d in fma.compare_metadata()] == ["add_table"]  # type: ignore[index]
        assert_silent(capsys)

        fma.upgrade()
        capsys.readouterr()
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is False
        assert fma.compare_metadata() == []
        assert_silent(capsys)

        # Alembic's Operations are synchronous: refused with a clear reason.
        with pytest.raises(TypeError, match="is async.*synchronous engine"):
            with fma.migration_context():
                pass  # pragma: no cover
        with pytest.raises(TypeError, match="is async"):
            with fma.operations():
                pass  # pragma: no cover
        assert_silent(capsys)
    assert version_rows(urls[None]) == ["a1"]


# --------------------------------------------------------------------------
# migration_context() and operations()


@pytest.fixture
def items(single: tuple[Flask, str]) -> tuple[Flask, str]:
    """The ``single`` app with an ``item`` table created by revision ``i1``."""
    app, url = single
    with app.app_context():
        fma.init()
        table_revision("i1", "item")
        fma.upgrade()
    return app, url


ITEM = sa.table("item", sa.column("id", sa.Integer))


def item_ids(url: str) -> list[int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(conn.scalars(sa.select(ITEM.c.id)))
    finally:
        engine.dispose()


def column_names(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {c["name"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_migration_context_closes_its_connection(
    items: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = items
    with app.app_context():
        in_use = InUse(app.extensions["test_db"].engine)
        capsys.readouterr()
        with fma.migration_context() as context:
            assert isinstance(context, MigrationContext)
            assert context.get_current_revision() == "i1"
            assert context.connection is not None
            connection = context.connection
            assert not connection.closed
            assert in_use() == 1
        assert connection.closed
        assert in_use() == 0

        with pytest.raises(ZeroDivisionError):
            with fma.migration_context() as context:
                connection = context.connection
                1 / 0  # noqa: B018
        assert connection is not None and connection.closed
        assert in_use() == 0
        assert_silent(capsys)


class Boom(Exception):
    pass


def test_operations_commit_on_success_and_roll_back_on_error(
    items: tuple[Flask, str], server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = items
    with app.app_context():
        in_use = InUse(app.extensions["test_db"].engine)
        capsys.readouterr()
        with fma.operations() as op:
            assert isinstance(op, Operations)
            op.bulk_insert(ITEM, [{"id": 1}])
            op.add_column("item", sa.Column("note", sa.String(20)))
        assert in_use() == 0
        assert item_ids(url) == [1]
        assert "note" in column_names(url, "item")

        with pytest.raises(Boom):
            with fma.operations() as op:
                op.bulk_insert(ITEM, [{"id": 2}])
                op.execute(sa.insert(ITEM).values(id=3))
                raise Boom
        assert in_use() == 0
        assert item_ids(url) == [1]

        if server.backend == "postgresql":
            # Transactional DDL: the new column goes with the rollback. (MySQL
            # commits around each DDL statement and Python's sqlite3 runs DDL
            # outside transactions, so there it would stay.)
            with pytest.raises(Boom):
                with fma.operations() as op:
                    op.add_column("item", sa.Column("extra", sa.Integer))
                    raise Boom
            assert "extra" not in column_names(url, "item")
        assert_silent(capsys)


def test_migration_context_for_a_bind(
    multi: tuple[Flask, dict[str | None, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    app, urls = multi
    with app.app_context():
        fma.init(multidb=True)
        fma.migrate(message="both", rev_id="m1")
        fma.upgrade()
        engines = fsa_engines(app, app.extensions["test_db"])
        capsys.readouterr()
        for bind in (None, "users"):
            in_use = InUse(engines[bind])
            with fma.migration_context(bind) as context:
                assert context.get_current_revision() == "m1"
                assert context.connection is not None
                assert context.connection.engine is engines[bind]
                assert in_use() == 1
            assert in_use() == 0
        with fma.operations("users") as op:
            op.execute(sa.text("DELETE FROM alembic_version"))
        assert fma.needs_upgrade() is True
        assert_silent(capsys)
    assert version_rows(urls["users"]) == []
    assert version_rows(urls[None]) == ["m1"]


def test_needs_upgrade_counts_a_head_that_a_revision_depends_on(
    server: Server, make_app: AppFactory
) -> None:
    """At heads means "upgrade would run nothing", as deploy loops rely on.

    When a revision depends on the head of another branch, Alembic keeps
    only the dependent revision in the version table after upgrading.
    """
    url = server.new_database()
    app = make_app(url)
    with app.app_context():
        fma.init()
        fma.revision(message="main", rev_id="r1")
        fma.revision(message="side", rev_id="s1", head="base", branch_label="side")
        fma.revision(message="uses side", rev_id="r2", head="r1", depends_on="s1")
        assert fma.needs_upgrade() is True
        assert sorted(fma.upgrade(revision="heads")) == ["r1", "r2", "s1"]
        assert version_rows(url) == ["r2"]
        assert fma.upgrade(revision="heads") == []
        assert fma.needs_upgrade() is False
        assert [db.needs_upgrade for db in fma.status()] == [False]
