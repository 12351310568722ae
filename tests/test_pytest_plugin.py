"""The pytest plugin: built-in migration tests, and the database fixtures.

Each test writes a small Flask project (an app module, a migration
repository with hand-written revisions, a conftest.py and some tests) and
runs pytest on it with ``pytester``, the way a user would.
"""

from __future__ import annotations

import importlib
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import alembic.autogenerate
import alembic.command
import alembic.ddl
import pymysql
import pytest
import sqlalchemy as sa
import sqlalchemy.dialects.mysql
import sqlalchemy.dialects.postgresql
import sqlalchemy.orm
from flask import Flask

from flask_migrate_alt import init

from .conftest import POSTGRESQL_DRIVER, REPO, Server, dispose_engines, stack_limit

# Inline pytest runs forget the modules they imported; importing these here
# keeps them loaded, so that SQLAlchemy does not register its functions
# twice (a warning, which this suite turns into an error).
# The drivers too: SQLAlchemy recognises a driver's errors by the classes
# of the module it imported first.
_KEEP_LOADED = (
    alembic.autogenerate,
    alembic.command,
    alembic.ddl,
    sqlalchemy.dialects,
    # SQLAlchemy 1.4 refuses to register its inspection hooks twice, which
    # importing Flask-SQLAlchemy 2.x's ORM modules again would do.
    sqlalchemy.orm,
    importlib.import_module("flask_sqlalchemy"),
    importlib.import_module(POSTGRESQL_DRIVER.partition("+")[2] or "psycopg2"),
    pymysql,
)

APP = """
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_alt import Migrate

db = SQLAlchemy()


class Item(db.Model):
    __tablename__ = "item"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False, index=True)
    note = db.Column(db.String(100))
{extra_item}

class Tag(db.Model):
    __tablename__ = "tag"
    id = db.Column(db.Integer, primary_key=True)
    item_id = db.Column(db.Integer, db.ForeignKey("item.id"))
{extra_models}

def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
    app.config["SQLALCHEMY_BINDS"] = {binds!r}
    db.init_app(app)
    Migrate(app, db)
    return app
"""

REVISION = '''
"""{message}

Revision ID: {rev}
Revises: {down}
"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''

R1 = (
    "create item",
    """
    op.create_table(
        "item",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
    )
    op.create_index("ix_item_name", "item", ["name"])
    """,
    """
    op.drop_index("ix_item_name", table_name="item")
    op.drop_table("item")
    """,
)
R2 = (
    "add note",
    """
    op.add_column("item", sa.Column("note", sa.String(100), nullable=True))
    """,
    """
    with op.batch_alter_table("item") as batch:
        batch.drop_column("note")
    """,
)
R3 = (
    "create tag",
    """
    op.create_table(
        "tag",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("item.id")),
    )
    """,
    """
    op.drop_table("tag")
    """,
)

CONFTEST = """
import pytest
from fmaapp import create_app


@pytest.fixture
def app():
    return create_app()
"""


def _body(code: str) -> str:
    return textwrap.indent(textwrap.dedent(code).strip() or "pass", "    ")


class Project:
    """A user project inside ``pytester.path``."""

    def __init__(self, pytester: pytest.Pytester, url: str) -> None:
        self.pytester = pytester
        self.url = url
        self.versions = pytester.path / "migrations" / "versions"

    def write_app(
        self,
        extra_item: str = "",
        extra_models: str = "",
        binds: dict[str, str] | None = None,
    ) -> None:
        source = APP.format(
            url=self.url,
            binds=binds or {},
            extra_item=textwrap.indent(extra_item, "    "),
            extra_models=extra_models,
        )
        self.pytester.makepyfile(fmaapp=source)

    def write_revision(
        self,
        rev: str,
        down: str | tuple[str, ...] | None,
        message: str,
        upgrade: str,
        downgrade: str,
    ) -> Path:
        path = self.versions / f"{rev}_{message.replace(' ', '_')}.py"
        path.write_text(
            REVISION.format(
                rev=rev,
                down=down,
                message=message,
                upgrade=_body(upgrade),
                downgrade=_body(downgrade),
            )
        )
        return path

    def write_history(self) -> None:
        down = None
        for rev, (message, up, down_code) in zip(
            ("r1", "r2", "r3"), (R1, R2, R3), strict=True
        ):
            self.write_revision(rev, down, message, up, down_code)
            down = rev

    def write_tests(self, **files: str) -> None:
        """Write test modules next to the project's tests/conftest.py."""
        self.pytester.makepyfile(
            **{f"tests/{name}": src for name, src in files.items()}
        )

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest_inprocess("-p", "no:cacheprovider", *args)


@pytest.fixture
def project(
    pytester: pytest.Pytester, make_app: Callable[..., Flask]
) -> Callable[..., Project]:
    """``project(url, multidb=False)``: a repository, the app, a conftest."""
    pytester.chdir()
    pytester.syspathinsert()

    def build(url: str, multidb: bool = False, conftest: bool = True) -> Project:
        made = Project(pytester, url)
        with make_app("sqlite://").app_context():
            init(str(pytester.path / "migrations"), multidb=multidb)
        if conftest:
            (pytester.path / "tests").mkdir(exist_ok=True)
            (pytester.path / "tests" / "conftest.py").write_text(CONFTEST)
        return made

    return build


def _leftovers(server: Server, configured_url: str) -> list[str]:
    """Databases on the server whose name starts with the configured one's."""
    if server.backend == "sqlite":
        return []
    name = sa.engine.make_url(configured_url).database
    assert server.url is not None
    engine = sa.create_engine(server.url)
    query = {
        "postgresql": "SELECT datname FROM pg_database WHERE datname LIKE :p",
        "mysql": "SELECT schema_name FROM information_schema.schemata "
        "WHERE schema_name LIKE :p",
    }[server.backend]
    with engine.connect() as conn:
        found = [row[0] for row in conn.execute(sa.text(query), {"p": f"{name}_%"})]
    engine.dispose()
    return found


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# --------------------------------------------------------------------------
# the built-in tests


def test_built_in_tests_are_off_by_default(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    made.pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = made.run("-v")
    result.assert_outcomes(passed=1)
    assert "test_single_head" not in result.stdout.str()


def test_built_in_tests_pass_on_a_good_history(
    project: Callable[..., Project], server: Server
) -> None:
    url = server.new_database()
    made = project(url)
    made.write_app()
    made.write_history()
    result = made.run("--flask-migrations", "-v")
    result.stdout.fnmatch_lines(
        [
            "*tests/conftest.py::test_single_head PASSED*",
            "*tests/conftest.py::test_upgrade_stepwise PASSED*",
            "*tests/conftest.py::test_models_match_database PASSED*",
            "*test_downgrade_leaves_no_trace[[]r1[]] PASSED*",
            "*test_up_down_up[[]r1[]] PASSED*",
            "*test_downgrade_leaves_no_trace[[]r3[]] PASSED*",
            "*test_up_down_up[[]r3[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=9)
    # The configured database is never used; nothing is left behind.
    assert _tables(url) == set()
    assert _leftovers(server, url) == []


def test_enabled_from_the_ini_file_with_an_app_factory(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url, conftest=False)
    made.write_app()
    made.write_history()
    made.pytester.makeini(
        "[pytest]\nflask_migrations = true\nflask_migrations_app = fmaapp:create_app\n"
        "flask_migrations_tests_path = conftest.py\n"
    )
    made.pytester.makeconftest("")
    result = made.run("-v")
    result.stdout.fnmatch_lines(["conftest.py::test_single_head PASSED*"])
    result.assert_outcomes(passed=9)


def test_a_missing_app_is_explained(project: Callable[..., Project], url: str) -> None:
    made = project(url, conftest=False)
    made.write_app()
    made.write_history()
    made.pytester.makeconftest("")
    result = made.run("--flask-migrations")
    result.stdout.fnmatch_lines(["*define an 'app' fixture*flask_migrations_app*"])
    assert "Traceback" not in result.stdout.str()


def test_a_missing_repository_is_explained(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url)
    made.write_app()
    made.pytester.makeini("[pytest]\nflask_migrations_directory = nowhere\n")
    result = made.run("--flask-migrations")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no migration repository at*nowhere*"])


def test_two_heads_fail_unless_declared(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    made.write_revision("b1", "r1", "side branch", "pass", "pass")
    result = made.run("--flask-migrations", "-k", "single_head")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the history has 2 heads*flask db merge*"])

    made.pytester.makeini("[pytest]\nflask_migrations_heads = 2\n")
    made.run("--flask-migrations", "-k", "single_head").assert_outcomes(passed=1)


def test_branch_folders_count_as_heads_like_flask_db_heads(
    project: Callable[..., Project], url: str, make_app: Callable[..., Flask]
) -> None:
    """A branch made with revision(branch=...) lives in versions/<branch>/.

    The plugin reads the history through the commands' own builder, so it
    sees the heads ``flask db heads`` shows: two here, not one.
    """
    import flask_migrate_alt as fma

    made = project(url)
    made.write_app()
    made.write_history()
    with make_app(url).app_context():
        fma.revision(
            directory=str(made.pytester.path / "migrations"),
            message="audit",
            branch="audit",
            rev_id="a1",
        )
        heads = fma.heads(directory=str(made.pytester.path / "migrations"))
    assert (made.versions / "audit").is_dir()
    assert sorted(h.revision for h in heads) == ["a1", "r3"]

    result = made.run("--flask-migrations", "-k", "single_head")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the history has 2 heads*"])
    made.pytester.makeini("[pytest]\nflask_migrations_heads = 2\n")
    made.run("--flask-migrations", "-k", "single_head").assert_outcomes(passed=1)


def test_models_that_differ_from_the_history_fail_with_the_difference(
    project: Callable[..., Project], server: Server
) -> None:
    made = project(server.new_database())
    made.write_app(extra_item="email = db.Column(db.String(120))")
    made.write_history()
    result = made.run("--flask-migrations", "-k", "models_match")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*models differ from the database*flask db migrate*", "*add column*email*"]
    )


def test_a_downgrade_that_leaves_a_trace_is_named(
    project: Callable[..., Project], server: Server
) -> None:
    url = server.new_database()
    made = project(url)
    made.write_app()
    made.write_history()
    path = made.write_revision("r2", "r1", "add note", R2[1], "pass")
    result = made.run("--flask-migrations")
    result.assert_outcomes(passed=7, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_downgrade_leaves_no_trace[[]r2[]]*",
            f"downgrading revision r2 ({path}) does not give back the schema*",
            "*table item column note: not there before, there after*",
            "*test_up_down_up[[]r2[]]*",
            f"upgrade revision r2 ({path}) failed*",
        ]
    )
    # The per-revision tests after the failure start from clean databases.
    assert (
        "test_up_down_up[r3] PASSED"
        in made.run("--flask-migrations", "-v").stdout.str()
    )
    assert _leftovers(server, url) == []


def test_a_failing_upgrade_names_revision_and_file(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    path = made.write_revision(
        "r3", "r2", "create tag", "raise RuntimeError('boom')", R3[2]
    )
    result = made.run("--flask-migrations", "-k", "stepwise")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"upgrade revision r3 ({path}) failed*boom*"])
    assert "Traceback" not in result.stdout.str()


def test_min_revision_and_skip_list(project: Callable[..., Project], url: str) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    made.pytester.makeini(
        "[pytest]\nflask_migrations_min_revision = r2\n"
        "flask_migrations_skip =\n    r3\n"
    )
    result = made.run("--flask-migrations", "-v", "-rs")
    result.assert_outcomes(passed=5, skipped=2)
    assert "[r1]" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*r3 is in flask_migrations_skip*"])


def test_bad_min_revision_and_app_are_one_line_failures(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    made.pytester.makeini("[pytest]\nflask_migrations_min_revision = zzz\n")
    result = made.run("--flask-migrations")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*flask_migrations_min_revision = 'zzz' matches 0 revisions*"]
    )
    assert "Traceback" not in result.stdout.str()
    assert "raise pytest.UsageError" not in result.stdout.str()

    made.pytester.makeini("[pytest]\n")
    made.write_tests(test_uses="def test_uses(migrated_db):\n    pass\n")
    result = made.run("--flask-migrations-app", "nomodule:create_app", "tests")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*flask_migrations_app = 'nomodule:create_app'*"])
    assert "raise pytest.UsageError" not in result.stdout.str()


def test_merged_and_dependent_revisions(
    project: Callable[..., Project], server: Server
) -> None:
    url = server.new_database()
    made = project(url)
    made.write_app()
    made.write_history()
    # r3 and s1 both follow r2; s2 needs r3 too; m merges them.
    table = "op.create_table('{0}', sa.Column('id', sa.Integer, primary_key=True))"
    made.write_revision(
        "s1", "r2", "side", table.format("side"), "op.drop_table('side')"
    )
    made.write_revision(
        "s2", "s1", "needs tag", table.format("side2"), "op.drop_table('side2')"
    )
    path = made.versions / "s2_needs_tag.py"
    path.write_text(path.read_text().replace("depends_on = None", "depends_on = 'r3'"))
    made.write_revision("m", ("r3", "s2"), "merge", "pass", "pass")
    made.write_app(
        extra_models="""
class Side(db.Model):
    __tablename__ = "side"
    id = db.Column(db.Integer, primary_key=True)


class Side2(db.Model):
    __tablename__ = "side2"
    id = db.Column(db.Integer, primary_key=True)
"""
    )
    result = made.run("--flask-migrations", "-v")
    # Before, downgrading the merge asked Alembic for "-1": "Ambiguous walk".
    result.stdout.fnmatch_lines(
        [
            "*test_downgrade_leaves_no_trace[[]m[]] PASSED*",
            "*test_up_down_up[[]m[]] PASSED*",
        ]
    )
    result.assert_outcomes(passed=15)
    assert _leftovers(server, url) == []


def test_tables_in_other_postgresql_schemas_are_compared(
    project: Callable[..., Project], postgresql_server: Server
) -> None:
    made = project(postgresql_server.new_database())
    made.write_app()
    made.write_history()
    made.write_revision(
        "r4",
        "r3",
        "audit schema",
        """
        op.execute("CREATE SCHEMA audit")
        op.create_table(
            "log", sa.Column("id", sa.Integer, primary_key=True), schema="audit"
        )
        """,
        'op.execute("DROP SCHEMA audit CASCADE")',
    )
    result = made.run("--flask-migrations", "-k", "no_trace")
    result.assert_outcomes(passed=4)

    # A downgrade that leaves the table (and its schema) behind is caught,
    # though the table is not in the default schema.
    made.write_revision(
        "r4",
        "r3",
        "audit schema",
        """
        op.execute("CREATE SCHEMA IF NOT EXISTS audit")
        op.create_table(
            "log", sa.Column("id", sa.Integer, primary_key=True), schema="audit"
        )
        """,
        "pass",
    )
    result = made.run("--flask-migrations", "-k", "no_trace and r4")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*schemas: before [[][]], after [[]'audit'[]]*",
            "*table audit.log: not there before, there after*",
        ]
    )


def test_sessions_left_open_do_not_block_the_drop(
    project: Callable[..., Project], server: Server
) -> None:
    url = server.new_database()
    made = project(url)
    made.write_app()
    made.write_history()
    # An app fixture that keeps its context pushed around the test: the
    # session's connection (in a transaction) outlives migrated_db.
    (made.pytester.path / "tests" / "conftest.py").write_text(
        "import pytest\nfrom fmaapp import create_app\n\n\n"
        "@pytest.fixture\ndef app():\n    app = create_app()\n"
        "    with app.app_context():\n        yield app\n"
    )
    made.write_tests(
        test_open="""
        from fmaapp import Item


        def test_open(app, migrated_db):
            assert Item.query.count() == 0


        def test_again(app, migrated_db):
            assert Item.query.count() == 0
        """
    )
    # Before, MariaDB's DROP DATABASE waited on the open transaction for a
    # year, and PostgreSQL's cut the connection under the session.
    result = made.pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
    assert _leftovers(server, url) == []


def test_multiple_databases(
    project: Callable[..., Project], tmp_path: Path, url: str
) -> None:
    made = project(url, multidb=True)
    made.write_app(
        extra_models=textwrap.dedent(
            """
            class Event(db.Model):
                __bind_key__ = "audit"
                __tablename__ = "event"
                id = db.Column(db.Integer, primary_key=True)
            """
        ),
        binds={"audit": f"sqlite:///{tmp_path / 'audit.db'}"},
    )
    for rev, down, (message, up, down_code) in (
        ("r1", None, R1),
        ("r2", "r1", R2),
        ("r3", "r2", R3),
    ):
        event = rev == "r1"
        made.write_revision(
            rev,
            down,
            message,
            "globals()[f'upgrade_{engine_name}']()",
            "globals()[f'downgrade_{engine_name}']()",
        )
        path = made.versions / f"{rev}_{message.replace(' ', '_')}.py"
        source = path.read_text().replace("def upgrade():", "def upgrade(engine_name):")
        source = source.replace("def downgrade():", "def downgrade(engine_name):")
        source += f"\n\ndef upgrade_():\n{_body(up)}\n"
        source += f"\n\ndef downgrade_():\n{_body(down_code)}\n"
        audit_up = (
            "op.create_table('event', sa.Column('id', sa.Integer(), primary_key=True))"
            if event
            else "pass"
        )
        audit_down = "op.drop_table('event')" if event else "pass"
        source += (
            f"\n\ndef upgrade_audit():\n    {audit_up}\n"
            f"\n\ndef downgrade_audit():\n    {audit_down}\n"
        )
        path.write_text(source)
    made.write_tests(
        test_both="""
        from fmaapp import Event, Item, db


        def test_both(app, migrated_db):
            assert set(migrated_db.urls) == {None, "audit"}
            with app.app_context():
                db.session.add_all([Item(name="a"), Event()])
                db.session.commit()
                assert Item.query.count() == Event.query.count() == 1
        """
    )
    result = made.run("--flask-migrations", "-v")
    result.assert_outcomes(passed=10)
    assert (
        not (tmp_path / "audit.db").exists()
        or _tables(f"sqlite:///{tmp_path / 'audit.db'}") == set()
    )


# --------------------------------------------------------------------------
# fixtures


USER_TESTS = """
import pathlib
from fmaapp import Item, db


def test_write(app, migrated_db):
    with app.app_context():
        db.session.add(Item(name="first"))
        db.session.commit()
        assert Item.query.count() == 1


def test_isolated(app, migrated_db):
    with app.app_context():
        assert Item.query.count() == 0
        db.session.add(Item(name="second"))
        db.session.commit()


def test_urls(app, migrated_db):
    assert migrated_db.url.database != {configured!r}
    with app.app_context():
        assert db.engine.url.database == migrated_db.url.database
"""


def test_migrated_db_replays_the_history_once(
    project: Callable[..., Project], server: Server
) -> None:
    url = server.new_database()
    made = project(url)
    made.write_app()
    made.write_history()
    counter = made.pytester.path / "replays.txt"
    made.write_revision(
        "r1",
        None,
        "create item",
        textwrap.dedent(R1[1])
        + f"\nwith open({str(counter)!r}, 'a') as f:\n    f.write('x')",
        R1[2],
    )
    made.write_tests(
        test_users=USER_TESTS.format(configured=sa.engine.make_url(url).database)
    )
    result = made.run("-v")
    result.assert_outcomes(passed=3)
    assert counter.read_text() == "x"
    assert _tables(url) == set()
    assert _leftovers(server, url) == []


def test_migrator_runs_a_data_migration(
    project: Callable[..., Project], server: Server
) -> None:
    made = project(server.new_database())
    made.write_app()
    made.write_history()
    made.write_revision(
        "r2",
        "r1",
        "add note",
        textwrap.dedent(R2[1])
        + (
            "\nop.execute(\"UPDATE item SET note = CONCAT('from ', name)\")"
            if server.backend == "mysql"
            else "\nop.execute(\"UPDATE item SET note = 'from ' || name\")"
        ),
        R2[2],
    )
    made.write_tests(
        test_data="""
        def test_backfill(migrator):
            assert migrator.upgrade("r1") == ["r1"]
            migrator.insert("item", [{"name": "ann"}, {"name": "bob"}])
            assert migrator.upgrade("r2") == ["r2"]
            rows = migrator.execute("SELECT name, note FROM item ORDER BY name").all()
            assert rows == [("ann", "from ann"), ("bob", "from bob")]
            assert migrator.current() == ("r2",)
            migrator.downgrade("r1")
            assert "note" not in {
                c["name"] for c in migrator.snapshot()["tables"]["item"]["columns"]
            }


        def test_unknown_revision(migrator):
            migrator.upgrade("nope")
        """
    )
    result = made.run("-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_unknown_revision*", "*nope*"])
    assert "Traceback" not in result.stdout.str()


def test_end_to_end_in_a_subprocess(project: Callable[..., Project], url: str) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    made.write_tests(
        test_users=USER_TESTS.format(configured=sa.engine.make_url(url).database)
    )
    result = made.pytester.runpytest_subprocess(
        "--flask-migrations", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=12)


# --------------------------------------------------------------------------
# flask_migrate_alt.testing without pytest


def _make_schema(url: str, server: Server) -> None:
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    parent = sa.Table(
        "parent",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(40), nullable=False, unique=True),
        sa.Column(
            "name_length", sa.Integer, sa.Computed("length(name)", persisted=True)
        ),
    )
    sa.Table(
        "child",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id"), index=True),
    )
    with engine.begin() as conn:
        metadata.create_all(conn)
        conn.execute(parent.insert(), [{"name": "a"}, {"name": "b"}])
        conn.execute(sa.text("CREATE VIEW names AS SELECT name FROM parent"))
        # Sorted before the view it reads from: copied after it all the same.
        conn.execute(sa.text("CREATE VIEW a_names AS SELECT name FROM names"))
    engine.dispose()


def test_database_copies_keep_schema_and_rows(server: Server, tmp_path: Path) -> None:
    from flask_migrate_alt.testing import DatabaseCopies, schema_snapshot

    configured = sa.engine.make_url(server.new_database())
    copies = DatabaseCopies(configured, tmp_path)
    template = copies.empty("template")
    rendered = template.render_as_string(hide_password=False)
    _make_schema(rendered, server)
    copy = copies.copy(template)
    assert copy.database != template.database
    snapshots: list[dict[str, Any]] = []
    rows = []
    for made in (template, copy):
        engine = sa.create_engine(made)
        with engine.connect() as conn:
            snapshots.append(schema_snapshot(conn))
            rows.append(conn.execute(sa.text("SELECT name FROM a_names")).all())
        engine.dispose()
    assert snapshots[0] == snapshots[1]
    assert snapshots[1]["tables"]["child"]["foreign_keys"]
    assert snapshots[1]["views"] == ["a_names", "names"]
    assert sorted(rows[1]) == [("a",), ("b",)]
    copies.drop_all()
    assert copies.made == []
    assert _leftovers(server, configured.render_as_string(hide_password=False)) == []


def test_templates_follow_changes_to_the_revision_files(
    project: Callable[..., Project], url: str, tmp_path: Path
) -> None:
    from flask_migrate_alt.testing import MigratedDatabases

    made = project(url)
    made.write_app()
    made.write_revision("r1", None, *R1)
    import importlib
    import sys

    sys.path.insert(0, str(made.pytester.path))
    try:
        app = importlib.import_module("fmaapp").create_app()
    finally:
        sys.path.remove(str(made.pytester.path))
        sys.modules.pop("fmaapp", None)
    directory = str(made.pytester.path / "migrations")
    templates = MigratedDatabases(tmp_path / "work")
    (tmp_path / "work").mkdir()
    try:
        first = templates.copy(app, directory)
        assert _tables(str(first[None])) == {"alembic_version", "item"}
        made.write_revision("r2", "r1", *R3)
        second = templates.copy(app, directory)
        assert _tables(str(second[None])) == {"alembic_version", "item", "tag"}
    finally:
        templates.close()
        dispose_engines(app, app.extensions["migrate"].db)
    assert list((tmp_path / "work").iterdir()) == []


ASYNC_APP = """
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy_lite import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from flask_migrate_alt import Migrate


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "item"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50), index=True)
    note: Mapped[str | None] = mapped_column(sa.String(100))


class Tag(Base):
    __tablename__ = "tag"
    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("item.id"))


db = SQLAlchemy()


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_ASYNC_ENGINES"] = {{"default": {{"url": {url!r}}}}}
    db.init_app(app)
    Migrate(app, db, metadata=Base.metadata)
    return app
"""


@stack_limit("flask-sqlalchemy-lite")
def test_async_engines_with_flask_sqlalchemy_lite(
    project: Callable[..., Project], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'configured.db'}"
    made = project(url)
    made.pytester.makepyfile(fmaapp=ASYNC_APP.format(url=url))
    made.write_history()
    made.write_tests(
        test_async="""
        import asyncio

        import sqlalchemy as sa
        from fmaapp import db


        def test_copy(app, migrated_db):
            async def count():
                async with db.async_engine.connect() as conn:
                    found = await conn.execute(sa.text("SELECT count(*) FROM item"))
                    return found.scalar()

            with app.app_context():
                assert db.async_engine.url.database == migrated_db.url.database
                assert asyncio.run(count()) == 0
        """
    )
    result = made.run("--flask-migrations", "-v")
    result.assert_outcomes(passed=10)
    assert (
        not (tmp_path / "configured.db").exists()
        or _tables(f"sqlite:///{tmp_path / 'configured.db'}") == set()
    )


@stack_limit("flask-sqlalchemy-lite")
def test_migrator_on_async_engines(
    project: Callable[..., Project], tmp_path: Path
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'configured.db'}"
    made = project(url)
    made.pytester.makepyfile(fmaapp=ASYNC_APP.format(url=url))
    made.write_history()
    made.write_tests(
        test_steps="""
        def test_steps(migrator):
            assert migrator.current() == ()
            migrator.upgrade("r2")
            migrator.insert("item", {"name": "ann"})
            # Read through a synchronous connection of its own: before, this
            # raised TypeError for an async engine.
            assert migrator.current() == ("r2",)
            migrator.upgrade()
            assert migrator.current() == ("r3",)
            assert migrator.execute("SELECT name FROM item").all() == [("ann",)]
        """
    )
    made.run("-v").assert_outcomes(passed=1)


def test_the_configured_database_need_not_exist(server: Server, tmp_path: Path) -> None:
    from flask_migrate_alt.testing import DatabaseCopies

    existing = sa.engine.make_url(server.new_database())
    if server.backend == "sqlite":
        configured = existing.set(database=str(tmp_path / "never-created.db"))
    else:
        configured = existing.set(database=f"{existing.database}_missing")
    copies = DatabaseCopies(configured, tmp_path)
    made = copies.empty()
    try:
        assert _tables(made.render_as_string(hide_password=False)) == set()
    finally:
        copies.drop_all()
    assert not (tmp_path / "never-created.db").exists()
    assert _leftovers(server, configured.render_as_string(hide_password=False)) == []


def test_a_server_refusing_create_database_leaves_the_configured_one_alone(
    project: Callable[..., Project], postgresql_server: Server
) -> None:
    # A role that may work in its database but not create databases.
    url = sa.engine.make_url(postgresql_server.new_database())
    role = f"fma_nocreate_{url.database}"
    assert postgresql_server.url is not None
    admin = sa.create_engine(postgresql_server.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN NOCREATEDB"))
        conn.execute(sa.text(f"ALTER DATABASE {url.database} OWNER TO {role}"))
    try:
        configured = url.set(username=role).render_as_string(hide_password=False)
        made = project(configured)
        made.write_app()
        made.write_history()
        made.write_tests(
            test_users="""
            def test_fixture(migrated_db):
                pass
            """
        )
        result = made.run("--flask-migrations")
        result.assert_outcomes(passed=1, failed=8, errors=1)
        output = result.stdout.str()
        assert "cannot create a test database" in output
        assert "CREATEDB" in output
        assert "Traceback" not in output
        assert _tables(configured) == set()
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(f"ALTER DATABASE {url.database} OWNER TO CURRENT_USER")
            )
            conn.execute(sa.text(f"DROP ROLE {role}"))
        admin.dispose()


def test_pytest_run_from_inside_the_tests_folder(
    project: Callable[..., Project], url: str
) -> None:
    made = project(url)
    made.write_app()
    made.write_history()
    made.pytester.makeini("[pytest]\npythonpath = .\n")
    made.write_tests(
        test_users="""
        def test_fixture(migrated_db, migrator):
            assert migrator.upgrade("r1") == ["r1"]
        """
    )
    made.pytester.chdir()
    import os

    os.chdir(made.pytester.path / "tests")
    result = made.pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--flask-migrations",
        "--rootdir",
        str(made.pytester.path),
    )
    result.assert_outcomes(passed=10)


# --------------------------------------------------------------------------
# Flask-Alembic repositories (flask_migrate_alt.Alembic)


PLUGIN_APP = """
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_alt import Alembic

db = SQLAlchemy()


class Author(db.Model):
    __tablename__ = "author"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(80), nullable=False)
    email = db.Column(db.String(120))


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
    db.init_app(app)
    Alembic(app)
    return app
"""


def test_built_in_tests_on_a_flask_alembic_repository(
    pytester: pytest.Pytester, server: Server
) -> None:
    url = server.new_database()
    pytester.chdir()
    pytester.syspathinsert()
    shutil.copytree(
        REPO / "tests" / "fixtures" / "flask_alembic_single",
        pytester.path / "migrations",
    )
    pytester.makepyfile(faapp=PLUGIN_APP.format(url=url))
    pytester.makeini("[pytest]\nflask_migrations_app = faapp:create_app\n")
    pytester.makeconftest("")
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--flask-migrations", "-v"
    )
    result.stdout.fnmatch_lines(
        [
            "*test_single_head PASSED*",
            "*test_upgrade_stepwise PASSED*",
            "*test_models_match_database PASSED*",
            "*test_up_down_up[[]1733141400[]] PASSED*",
        ]
    )
    assert result.ret == 0
    # Only databases made for the tests were used.
    assert _tables(url) == set()
