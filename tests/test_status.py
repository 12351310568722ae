"""``flask db status`` and :func:`flask_migrate_alt.status`.

Each state a database can be in (empty, behind, at head with the models
matching or not, on a branched history, one of several databases, behind a
custom version table, on an async engine) is checked through the function
and through the command, on every database server.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import Script
from click.testing import Result
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt import DatabaseStatus, Migrate
from flask_migrate_alt.migration_status import describe_difference

from .conftest import (
    AppFactory,
    Server,
    default_models,
    run_flask,
    table_names,
    version_rows,
)
from .test_templates import AsyncDB, sync_url

# --------------------------------------------------------------------------
# helpers


def models_with_email(db: Any, bind_keys: list[str]) -> None:
    """The default models with an ``email`` column added to ``user``."""
    default_models(db, bind_keys, email=True)


def status_cli(app: Flask, *args: str, exit_code: int = 0) -> Result:
    """Run ``flask db status <args>``; assert its exit status."""
    result = app.test_cli_runner().invoke(args=["db", "status", *args])
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert "Error:" not in result.output
    return result


def failing_cli(app: Flask, *args: str) -> str:
    """Run ``flask db status <args>``; assert one ``Error:`` line, exit 1."""
    result = app.test_cli_runner().invoke(args=["db", "status", *args])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert lines[-1] == errors[0]
    return errors[0]


def failing_call(capsys: pytest.CaptureFixture[str], **kwargs: Any) -> str:
    """Call ``status(**kwargs)``: it raises an ordinary exception, prints nothing.

    Returns the one line ``flask db status`` shows for that exception.
    """
    from flask_migrate_alt.errors import describe

    capsys.readouterr()
    # Exception, not BaseException: a SystemExit (CommandFailed) fails here.
    with pytest.raises(Exception) as info:
        fma.status(**kwargs)
    assert capsys.readouterr() == ("", "")
    return describe(info.value)


def report(found: list[DatabaseStatus]) -> dict[str, Any]:
    """What ``--json`` must print for ``found``."""
    answers = [db.needs_revision for db in found]
    return {
        "databases": [db.to_dict() for db in found],
        "needs_upgrade": any(db.needs_upgrade for db in found),
        "needs_revision": True
        if any(answers)
        else (None if None in answers else False),
    }


def rows(text: str) -> list[str]:
    """The revision lines of the text output, without their tags."""
    return [
        line.strip().split("  ")[0]
        for line in text.splitlines()
        if line.startswith(("  [x] ", "  [ ] "))
    ]


def execute(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement))
    finally:
        engine.dispose()


def two_revisions() -> None:
    """a1 creates the ``user`` table of the models; a2 changes nothing."""
    fma.init()
    fma.migrate(message="create user", rev_id="a1")
    fma.revision(message="second", rev_id="a2")


@pytest.fixture
def single(make_app: AppFactory, server: Server) -> tuple[Flask, str]:
    """An app on a fresh database of each server, with a repository a1 -> a2."""
    url = server.new_database()
    app = make_app(url)
    with app.app_context():
        two_revisions()
    return app, url


# --------------------------------------------------------------------------
# the states of one database


def test_empty_database(
    single: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = single
    capsys.readouterr()
    with app.app_context():
        (db,) = fma.status()
    assert capsys.readouterr() == ("", "")
    assert db.bind_key is None
    assert db.name == "default"
    assert db.current == ()
    assert db.heads == ("a2",)
    assert db.pending == ("a1", "a2")
    assert db.models_differ is None and db.diff == ()
    assert db.needs_upgrade is True
    assert db.needs_revision is None
    assert db.up_to_date is False
    assert [(r.revision, r.applied, r.is_head, r.is_current) for r in db.revisions] == [
        ("a1", False, False, False),
        ("a2", False, True, False),
    ]
    first, second = db.revisions
    assert first.down_revisions == () and second.down_revisions == ("a1",)
    assert (first.message, second.message) == ("create user", "second")
    assert Path(second.path).name == "a2_second.py"

    out = status_cli(app).stdout
    assert "  Current: none (no revision applied)\n" in out
    assert "  Heads:   a2\n" in out
    assert rows(out) == ["[ ] a1", "[ ] a2"]
    assert "  [ ] a2  second (head)\n" in out
    assert "  Upgrade plan: a1, a2 (2 revisions; run 'flask db upgrade')\n" in out
    assert "  Models: unknown until upgraded\n" in out
    assert out.endswith("Status: upgrade pending; run 'flask db upgrade'\n")
    status_cli(app, "--exit-code", exit_code=2)
    # Reading the status changes nothing ('migrate' made the version table).
    assert table_names(url) == {"alembic_version"}
    assert version_rows(url) == []


def test_partially_upgraded(single: tuple[Flask, str]) -> None:
    app, url = single
    with app.app_context():
        assert fma.upgrade(revision="a1") == ["a1"]
        (db,) = fma.status()
    assert db.current == ("a1",)
    assert db.pending == ("a2",)
    assert [(r.revision, r.applied, r.is_current) for r in db.revisions] == [
        ("a1", True, True),
        ("a2", False, False),
    ]
    assert db.models_differ is None and db.needs_upgrade

    out = status_cli(app).stdout
    assert "  Current: a1\n" in out
    assert rows(out) == ["[x] a1", "[ ] a2"]
    assert "  [x] a1  create user (current)\n" in out
    assert "  Upgrade plan: a2 (1 revision; run 'flask db upgrade')\n" in out
    status_cli(app, "--exit-code", exit_code=2)
    assert version_rows(url) == ["a1"]


def test_at_head_with_models_matching(single: tuple[Flask, str]) -> None:
    app, _ = single
    with app.app_context():
        fma.upgrade()
        (db,) = fma.status()
    assert db.current == db.heads == ("a2",)
    assert db.pending == ()
    assert db.models_differ is False and db.diff == ()
    assert db.up_to_date and not db.needs_upgrade and db.needs_revision is False
    assert all(r.applied for r in db.revisions)

    out = status_cli(app).stdout
    assert "  Current: a2 (head)\n" in out
    assert "  [x] a2  second (head, current)\n" in out
    assert "  Upgrade plan: nothing to upgrade\n" in out
    assert "  Models: match the database\n" in out
    assert out.endswith("Status: up to date\n")
    status_cli(app, "--exit-code", exit_code=0)


def test_at_head_with_models_changed(
    single: tuple[Flask, str], make_app: AppFactory
) -> None:
    app, url = single
    with app.app_context():
        fma.upgrade()
    changed = make_app(url, models=models_with_email)
    with changed.app_context():
        (db,) = fma.status()
        (skipped,) = fma.status(compare=False)
    assert db.pending == ()
    assert db.models_differ is True and db.needs_revision is True
    assert db.diff == ("add column 'user.email' (VARCHAR(120))",)
    assert not db.up_to_date
    # Without the comparison only the revisions count.
    assert skipped.models_differ is None and skipped.diff == ()
    assert skipped.up_to_date

    out = status_cli(changed).stdout
    assert (
        "  Models: differ from the database (1 change; run 'flask db migrate'):\n"
        "    - add column 'user.email' (VARCHAR(120))\n"
    ) in out
    assert out.endswith(
        "Status: the models differ from the database; run 'flask db migrate' "
        "to write a revision\n"
    )
    status_cli(changed, "--exit-code", exit_code=3)
    out = status_cli(changed, "--no-compare", "--exit-code").stdout
    assert "  Models: not compared\n" in out
    assert "email" not in out
    assert out.endswith("Status: at head (models not compared)\n")


def test_differences_are_described(server: Server, make_app: AppFactory) -> None:
    url = server.new_database()
    app = make_app(url, models=models_with_email)
    with app.app_context():
        fma.init()
        fma.revision(message="empty", rev_id="a1")
        fma.upgrade()
    # A schema that drifted from the models in several ways.
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    sa.Table("legacy", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "user",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128)),
        sa.Column("age", sa.Integer),
    )
    metadata.create_all(engine)
    engine.dispose()
    with app.app_context():
        (db,) = fma.status()
    assert db.models_differ is True
    assert sorted(db.diff) == [
        "add column 'user.email' (VARCHAR(120))",
        "remove column 'user.age'",
        "remove table 'legacy'",
    ]
    out = status_cli(app, "--exit-code", exit_code=3).stdout
    assert "(3 changes; run 'flask db migrate'):" in out
    for line in db.diff:
        assert f"    - {line}\n" in out


# --------------------------------------------------------------------------
# branches


def branched_history() -> None:
    """a1, then two branches on it: b1 and c1 (two heads)."""
    fma.init()
    fma.migrate(message="create user", rev_id="a1")
    for rev_id in ("b1", "c1"):
        script = fma.revision(
            message=f"branch {rev_id}", rev_id=rev_id, head="a1", splice=True
        )
        assert isinstance(script, Script)


def test_branched_history_with_two_heads(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    app = make_app(url)
    with app.app_context():
        branched_history()
        (empty,) = fma.status()
        assert set(empty.heads) == {"b1", "c1"}
        assert empty.pending[0] == "a1"
        assert sorted(empty.pending) == ["a1", "b1", "c1"]
        fma.upgrade(revision="b1")
        (behind,) = fma.status()
    assert behind.current == ("b1",)
    assert behind.pending == ("c1",)
    applied = {r.revision: r.applied for r in behind.revisions}
    assert applied == {"a1": True, "b1": True, "c1": False}

    out = status_cli(app).stdout
    assert f"  Heads:   {', '.join(behind.heads)}\n" in out
    assert "  Current: b1 (head)\n" in out
    assert "  Upgrade plan: c1 (1 revision; run 'flask db upgrade heads')\n" in out
    assert "  [ ] c1  branch c1 (head)\n" in out
    assert out.endswith("Status: upgrade pending; run 'flask db upgrade heads'\n")
    status_cli(app, "--exit-code", exit_code=2)

    with app.app_context():
        assert fma.upgrade(revision="heads") == ["c1"]
        (done,) = fma.status()
    assert set(done.current) == {"b1", "c1"}
    assert done.pending == () and done.up_to_date
    status_cli(app, "--exit-code", exit_code=0)

    # On an empty database the plan is the order an upgrade really runs.
    other = make_app(server.new_database())
    with other.app_context():
        (fresh,) = fma.status()
        capsys.readouterr()
        assert list(fresh.pending) == fma.upgrade(revision="heads")


# --------------------------------------------------------------------------
# several databases, custom version table, async engines


def test_multiple_databases(server: Server, make_app: AppFactory) -> None:
    urls = {"default": server.new_database(), "logs": server.new_database()}
    app = make_app(urls["default"], binds={"logs": urls["logs"]})
    with app.app_context():
        two_revisions_multidb()
        fma.upgrade()
    execute(urls["logs"], "UPDATE alembic_version SET version_num = 'a1'")
    with app.app_context():
        found = fma.status()
    assert [db.bind_key for db in found] == [None, "logs"]
    default, logs = found
    # The URLs of the engines (Flask-SQLAlchemy adds options to MySQL's).
    for db, key in ((default, "default"), (logs, "logs")):
        assert (
            sa.engine.make_url(db.url).database
            == sa.engine.make_url(urls[key]).database
        )
    assert default.up_to_date and default.models_differ is False
    assert logs.current == ("a1",) and logs.pending == ("a2",)
    assert logs.models_differ is None

    out = status_cli(app).stdout
    assert out.index("Database: default (") < out.index("Database: logs (")
    assert out.endswith("Status: upgrade pending (logs); run 'flask db upgrade'\n")
    result = status_cli(app, "--json", "--exit-code", exit_code=2)
    assert json.loads(result.stdout) == report(found)
    assert json.loads(result.stdout)["needs_revision"] is None

    with app.app_context():
        fma.upgrade()
        assert all(db.up_to_date for db in fma.status())
    status_cli(app, "--exit-code", exit_code=0)


def two_revisions_multidb() -> None:
    fma.init(multidb=True)
    fma.migrate(message="create tables", rev_id="a1")
    fma.revision(message="second", rev_id="a2")


def test_custom_version_table(server: Server, make_app: AppFactory) -> None:
    url = server.new_database()
    app = make_app(url)
    app.config["ALEMBIC_CONTEXT"] = {"version_table": "my_versions"}
    with app.app_context():
        two_revisions()
        fma.upgrade(revision="a1")
        (db,) = fma.status()
    assert version_rows(url, "my_versions") == ["a1"]
    assert "alembic_version" not in table_names(url)
    assert db.current == ("a1",) and db.pending == ("a2",)
    assert "  Current: a1\n" in status_cli(app).stdout

    with app.app_context():
        fma.upgrade()
        (db,) = fma.status()
    # The version table is not taken for a table the models lack.
    assert db.models_differ is False and db.diff == ()
    status_cli(app, "--exit-code", exit_code=0)


@pytest.fixture
def async_app(tmp_path: Path, server: Server) -> Iterator[tuple[Flask, AsyncDB, str]]:
    """An app whose only engine is async, with a ``user`` table in its models."""
    url = server.new_database(async_driver=True)
    db = AsyncDB({None: url})
    sa.Table("user", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
    app = Flask("asyncapp", root_path=str(tmp_path))
    Migrate(app, db)
    yield app, db, url
    db.dispose()


def test_async_engine(async_app: tuple[Flask, AsyncDB, str]) -> None:
    app, db, url = async_app
    with app.app_context():
        fma.init(template="aioflask")
        fma.migrate(message="create user", rev_id="a1")
        (empty,) = fma.status()
        assert empty.pending == ("a1",) and empty.current == ()
        assert empty.url == sa.engine.make_url(url).render_as_string(hide_password=True)
        fma.upgrade()
        (done,) = fma.status()
    assert done.current == ("a1",) and done.models_differ is False
    status_cli(app, "--exit-code", exit_code=0)

    sa.Table("extra", db.metadata, sa.Column("id", sa.Integer, primary_key=True))
    with app.app_context():
        (changed,) = fma.status()
    assert changed.diff == ("add table 'extra'",)
    out = status_cli(app, "--exit-code", exit_code=3).stdout
    assert "    - add table 'extra'\n" in out
    assert version_rows(sync_url(url)) == ["a1"]


# --------------------------------------------------------------------------
# output formats


def test_json_matches_the_function(single: tuple[Flask, str]) -> None:
    app, _ = single
    with app.app_context():
        fma.upgrade(revision="a1")
        found = fma.status()
    result = status_cli(app, "--json")
    data = json.loads(result.stdout)
    assert data == report(found)
    assert data["needs_upgrade"] is True
    (db,) = data["databases"]
    assert db["current"] == ["a1"] and db["pending"] == ["a2"]
    assert db["revisions"][0] == {
        "revision": "a1",
        "down_revisions": [],
        "message": "create user",
        "path": found[0].revisions[0].path,
        "applied": True,
        "is_head": False,
        "is_current": True,
        "branch_labels": [],
    }
    # Nothing but JSON on stdout, even with --exit-code.
    result = status_cli(app, "--json", "--exit-code", exit_code=2)
    assert json.loads(result.stdout) == data

    with app.app_context():
        fma.upgrade()
    data = json.loads(status_cli(app, "--json").stdout)
    assert (data["needs_upgrade"], data["needs_revision"]) == (False, False)
    data = json.loads(status_cli(app, "--json", "--no-compare").stdout)
    assert data["needs_revision"] is None
    assert data["databases"][0]["up_to_date"] is True


def test_long_history_is_collapsed_unless_verbose(app: Flask, url: str) -> None:
    ids = [f"r{i:02d}" for i in range(40)]
    with app.app_context():
        fma.init()
        for rev_id in ids:
            fma.revision(message=f"step {rev_id}", rev_id=rev_id)
        fma.stamp(revision="r14")
        (db,) = fma.status(compare=False)
    assert len(db.revisions) == 40 and db.pending == tuple(ids[15:])

    out = status_cli(app).stdout
    lines = out.splitlines()
    shown = rows(out)
    # The latest 10 applied, the first 20 pending, and the head.
    assert shown == [
        *(f"[x] {rev}" for rev in ids[5:15]),
        *(f"[ ] {rev}" for rev in ids[15:35]),
        f"[ ] {ids[39]}",
    ]
    assert lines[3] == "  ... 5 applied revisions (--verbose lists them)"
    assert "  ... 4 pending revisions (--verbose lists them)" in lines
    assert (
        "  Upgrade plan: r15, r16, r17, ..., r39 "
        "(25 revisions; run 'flask db upgrade')" in lines
    )

    verbose = status_cli(app, "--verbose").stdout
    assert rows(verbose) == [
        *(f"[x] {rev}" for rev in ids[:15]),
        *(f"[ ] {rev}" for rev in ids[15:]),
    ]
    assert "..." not in verbose
    assert f"  Upgrade plan: {', '.join(ids[15:])} (25 revisions;" in verbose


def test_empty_history(app: Flask, url: str) -> None:
    with app.app_context():
        fma.init()
        (db,) = fma.status()
    # Reading the status creates nothing, not even a version table.
    assert table_names(url) == set()
    assert db.heads == db.current == db.pending == db.revisions == ()
    assert db.diff == ("add table 'user'",)
    out = status_cli(app, "--exit-code", exit_code=3).stdout
    assert "  Heads:   none (no revisions yet)\n" in out
    assert rows(out) == []


def test_help_documents_the_exit_codes(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["db", "status", "--help"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for line in (
        "0  up to date: at the heads, and the models match",
        "1  the command failed",
        "2  an upgrade is pending",
        "3  at the heads, but the models differ",
    ):
        assert line in out


def test_describe_difference() -> None:
    from sqlalchemy.dialects import postgresql

    metadata = sa.MetaData()
    user = sa.Table(
        "user",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(120)),
        comment="people",
    )
    post = sa.Table(
        "post",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer),
        schema="blog",
    )
    fk = sa.ForeignKeyConstraint(["user_id"], ["user.id"], name="fk_post_user")
    post.append_constraint(fk)
    unique = sa.UniqueConstraint(user.c.email, name="uq_email")
    user.append_constraint(unique)
    index = sa.Index("ix_user_email", user.c.email, unique=True)
    check = sa.CheckConstraint("id > 0", table=user)

    def one(diff: Any) -> str:
        (line,) = describe_difference(diff, postgresql.dialect())
        return line

    assert one(("add_table", post)) == "add table 'blog.post'"
    assert one(("remove_table", user)) == "remove table 'user'"
    assert (
        one(("add_column", "blog", "post", sa.Column("body", sa.Text)))
        == "add column 'blog.post.body' (TEXT)"
    )
    assert one(("remove_column", None, "user", user.c.email)) == (
        "remove column 'user.email'"
    )
    assert one(("add_index", index)) == (
        "add unique index 'ix_user_email' on 'user' (email)"
    )
    assert one(("remove_index", index)).startswith("remove unique index")
    assert one(("add_constraint", unique)) == (
        "add unique constraint 'uq_email' on 'user' (email)"
    )
    assert one(("remove_constraint", check)) == "remove check constraint on 'user'"
    assert one(("add_fk", fk)) == (
        "add foreign key 'fk_post_user' on 'blog.post' (user_id) -> user.id"
    )
    assert one(("add_table_comment", user, None)) == (
        "set the comment of table 'user' to 'people'"
    )
    assert one(("remove_table_comment", user)) == "remove the comment of table 'user'"
    # The changes to one column come as one list.
    assert describe_difference(
        [
            ("modify_type", None, "user", "email", {}, sa.String(50), sa.String(120)),
            ("modify_nullable", None, "user", "email", {}, True, False),
            (
                "modify_default",
                None,
                "user",
                "email",
                {},
                None,
                sa.DefaultClause(sa.text("'x'")),
            ),
            ("modify_comment", None, "user", "email", {}, None, "address"),
        ],
        postgresql.dialect(),
    ) == [
        "change the type of column 'user.email' from VARCHAR(50) to VARCHAR(120)",
        "make column 'user.email' NOT NULL",
        "change the server default of column 'user.email' from none to 'x'",
        "change the comment of column 'user.email' from None to 'address'",
    ]
    # What an extension adds is still readable.
    assert one(("replace_view", sa.table("active_users"))) == (
        "replace view 'active_users'"
    )
    assert describe_difference("something new") == ["something new"]


# --------------------------------------------------------------------------
# errors


def test_missing_directory(app: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    with app.app_context():
        message = failing_call(capsys, directory="nowhere")
    assert message.startswith("migration directory 'nowhere' not found; run")
    assert failing_cli(app, "-d", "nowhere", "--json") == f"Error: {message}"
    assert failing_cli(app, "--exit-code") == (
        "Error: migration directory 'migrations' not found; run 'flask db init' "
        "to create it, or point to it with -d/--directory (directory=...)"
    )


def test_unknown_revision_in_database(
    single: tuple[Flask, str], capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = single
    with app.app_context():
        fma.upgrade()
    execute(url, "UPDATE alembic_version SET version_num = 'deadbeef0000'")
    with app.app_context():
        message = failing_call(capsys)
    assert message.startswith(
        "the database is at revision 'deadbeef0000', which is not in the "
        "migration repository"
    )
    assert "flask db stamp --purge REVISION" in message
    assert failing_cli(app, "--json", "--exit-code") == f"Error: {message}"
    assert version_rows(url) == ["deadbeef0000"]


def test_unreachable_database(
    server: Server,
    make_app: AppFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if server.backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'app.db'}"
    else:
        missing = sa.engine.make_url(server.new_database()).set(
            database="fma_no_such_db"
        )
        url = missing.render_as_string(hide_password=False)
    app = make_app(url)
    with app.app_context():
        fma.init()
        message = failing_call(capsys)
    assert message.startswith("database error: ")
    assert failing_cli(app, "--exit-code") == f"Error: {message}"


def test_async_url_on_a_synchronous_engine(
    make_app: AppFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Flask-SQLAlchemy makes a synchronous engine of an async URL, which
    # fails on connecting with MissingGreenlet: one line, not a traceback.
    app = make_app(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")
    with app.app_context():
        fma.init()
        message = failing_call(capsys)
    assert message.startswith("cannot read the state of the database (MissingGreenlet")
    assert message.endswith("; check its URL and engine options")
    assert failing_cli(app, "--json") == f"Error: {message}"


def test_without_migrate(bare: Any, capsys: pytest.CaptureFixture[str]) -> None:
    app, _ = bare("sqlite://")
    with app.app_context():
        message = failing_call(capsys)
    assert "has no Migrate extension" in message


# --------------------------------------------------------------------------
# a real 'flask' process

APP = textwrap.dedent(
    """
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy
    from flask_migrate_alt import Migrate

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///status.db"
    db = SQLAlchemy(app)

    class Note(db.Model):
        id = db.Column(db.Integer, primary_key=True)

    Migrate(app, db)
    """
)


def test_flask_db_status_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return run_flask(tmp_path, "db", *args)

    assert flask("init").returncode == 0
    assert flask("migrate", "-m", "notes", "--rev-id", "n1").returncode == 0

    proc = flask("status", "--exit-code")
    assert proc.returncode == 2, proc.stderr
    assert "  [ ] n1  notes (head)\n" in proc.stdout

    assert flask("upgrade").returncode == 0
    proc = flask("status", "--json", "--exit-code")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["needs_upgrade"] is False and data["needs_revision"] is False
    assert data["databases"][0]["current"] == ["n1"]

    proc = flask("status", "-d", "elsewhere")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.splitlines()[-1].startswith(
        "Error: migration directory 'elsewhere' not found"
    )
    assert "Traceback" not in proc.stderr
