"""``flask db lint`` and ``lint()``: reviewing revisions for risky operations.

Revision files are written by hand into a repository made by ``init()``, so
that each rule has a revision that breaks it next to a near-identical one
that does the same thing the safe way.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.util import CommandError
from click.testing import Result
from flask import Flask

from flask_migrate_alt import Finding, LintReport, init, lint, upgrade

from .conftest import Server, no_models, run_flask, version_rows

AppFactory = Callable[..., Flask]


def write_revision(
    rev_id: str,
    down: str | None,
    upgrade_body: str,
    downgrade_body: str = "op.execute('SELECT 1')",
    *,
    header: str = "",
    directory: Path = Path("migrations"),
) -> Path:
    """Write ``versions/<rev_id>_lint.py`` with the given function bodies.

    The default downgrade does something, so that ``empty-downgrade`` stays
    quiet in tests about other rules.
    """

    def body(code: str) -> str:
        return textwrap.indent(textwrap.dedent(code).strip(), "    ")

    path = directory / "versions" / f"{rev_id}_lint.py"
    path.write_text(
        f'"""Revision {rev_id}."""\n'
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        f"{textwrap.dedent(header)}\n"
        f"revision = {rev_id!r}\n"
        f"down_revision = {down!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body(upgrade_body)}\n\n\n"
        f"def downgrade() -> None:\n{body(downgrade_body)}\n"
    )
    return path


def invoke(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["db", "lint", *args])


def rules(found: list[Finding]) -> list[tuple[str, str]]:
    return [(f.revision, f.rule) for f in found]


def line_of(finding: Finding) -> str:
    assert finding.line is not None
    return Path(finding.path).read_text().splitlines()[finding.line - 1]


@pytest.fixture
def lint_app(make_app: AppFactory, url: str) -> Flask:
    """A SQLite app with an empty repository (tables don't matter offline)."""
    app = make_app(url, models=no_models)
    with app.app_context():
        init()
    return app


# --------------------------------------------------------------------------
# every rule, next to its safe form, on every database

BASE = """
op.create_table('user', sa.Column('id', sa.Integer, primary_key=True),
                sa.Column('name', sa.String(50)), sa.Column('email', sa.String(50)),
                sa.Column('legacy', sa.String(50)),
                sa.Column('nickname', sa.String(50)))
op.create_table('item', sa.Column('id', sa.Integer, primary_key=True),
                sa.Column('user_id', sa.Integer))
op.create_table('old', sa.Column('id', sa.Integer, primary_key=True))
"""

# (revision id, upgrade body, downgrade body or None, findings: rule -> the
# text of the line it points at; a rule starting with "pg:" only on
# PostgreSQL, "!pg:" everywhere else)
CASES: list[tuple[str, str, str | None, dict[str, str]]] = [
    (
        "nn_bad",
        "op.add_column('user', sa.Column('age', sa.Integer, nullable=False))",
        None,
        {"not-null-column": "op.add_column('user'"},
    ),
    (
        "nn_ok",
        "op.add_column('user', sa.Column('age2', sa.Integer, nullable=False,"
        " server_default='0'))",
        None,
        {},
    ),
    ("dropcol", "op.drop_column('user', 'legacy')", None, {"drop-column": "drop"}),
    ("droptab", "op.drop_table('old')", None, {"drop-table": "op.drop_table"}),
    (
        "rencol",
        "op.alter_column('user', 'nickname', new_column_name='nick')",
        None,
        {"rename-column": "new_column_name"},
    ),
    (
        "rentab",
        "op.rename_table('item', 'product')",
        None,
        {"rename-table": "rename_table"},
    ),
    (
        "retype",
        "op.alter_column('user', 'name', type_=sa.String(200))",
        None,
        {"type-change": "type_="},
    ),
    (
        "setnn",
        "op.alter_column('user', 'name', nullable=False)",
        None,
        {"set-not-null": "nullable=False"},
    ),
    (
        "ix_bad",
        "op.create_index('ix_user_name', 'user', ['name'])",
        None,
        {"pg:index-not-concurrent": "create_index"},
    ),
    (
        "ix_ok",
        """
        with op.get_context().autocommit_block():
            op.create_index('ix_user_email', 'user', ['email'],
                            postgresql_concurrently=True)
        """,
        None,
        {},
    ),
    (
        "dropix",
        "op.drop_index('ix_user_name', table_name='user')",
        None,
        {"pg:index-not-concurrent": "drop_index"},
    ),
    (
        "fk_bad",
        "op.create_foreign_key('fk_item_user', 'product', 'user', ['user_id'], ['id'])",
        None,
        {"foreign-key": "create_foreign_key"},
    ),
    (
        "fk_ok",
        """
        op.execute("DELETE FROM product WHERE user_id IS NULL")
        op.create_foreign_key('fk_item_user2', 'product', 'user', ['user_id'], ['id'])
        """,
        None,
        {},
    ),
    (
        "fk_nv",
        "op.create_foreign_key('fk_item_user3', 'product', 'user', ['user_id'],"
        " ['id'], postgresql_not_valid=True)",
        None,
        {"!pg:foreign-key": "postgresql_not_valid"},
    ),
    (
        "uq_bad",
        "op.create_unique_constraint('uq_user_email', 'user', ['email'])",
        None,
        {"unique-constraint": "create_unique_constraint"},
    ),
    (
        "uq_ok",
        """
        op.execute("DELETE FROM product WHERE id < 0")
        op.create_unique_constraint('uq_user_email2', 'user', ['email'])
        """,
        None,
        {},
    ),
    (
        "newtab",
        """
        audit = op.create_table('audit', sa.Column('id', sa.Integer, primary_key=True))
        op.add_column('audit', sa.Column('who', sa.Integer, nullable=False))
        op.create_index('ix_audit_who', 'audit', ['who'])
        op.create_foreign_key('fk_audit_user', 'audit', 'user', ['who'], ['id'])
        op.create_unique_constraint('uq_audit_who', 'audit', ['who'])
        op.alter_column('audit', 'who', type_=sa.BigInteger, nullable=False)
        op.bulk_insert(audit, [{'id': 1}])
        op.rename_table('audit', 'audit_log')
        op.drop_column('audit_log', 'who')
        """,
        None,
        {},
    ),
    (
        "batch",
        """
        with op.batch_alter_table('user') as batch_op:
            batch_op.add_column(sa.Column('z', sa.Integer, nullable=False))
            batch_op.drop_column('email')
        """,
        None,
        {"not-null-column": "batch_op.add_column", "drop-column": "batch_op.drop"},
    ),
    (
        "down_pass",
        "op.add_column('user', sa.Column('note', sa.Text))",
        "pass",
        {"empty-downgrade": "def downgrade"},
    ),
    (
        "down_raise",
        "op.add_column('user', sa.Column('note2', sa.Text))",
        "raise NotImplementedError('irreversible')",
        {"empty-downgrade": "def downgrade"},
    ),
    (
        "data",
        """
        rows = op.get_bind().execute(sa.text('SELECT id FROM product')).fetchall()
        for row in rows:
            op.execute(f"UPDATE product SET user_id = {row[0]}")
        """,
        None,
        {"not-inspectable": ".fetchall()"},
    ),
    ("last", "op.drop_column('user', 'name')", None, {"drop-column": "'name'"}),
]


def write_cases() -> None:
    write_revision("first", None, BASE, "op.drop_table('user')")
    down = "first"
    for rev_id, up, downgrade_body, _ in CASES:
        write_revision(rev_id, down, up, downgrade_body or "op.execute('SELECT 1')")
        down = rev_id


def expected(dialect: str) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for rev_id, _, _, hits in CASES:
        for rule, text in hits.items():
            if rule.startswith("pg:"):
                if dialect != "postgresql":
                    continue
                rule = rule[3:]
            elif rule.startswith("!pg:"):
                if dialect == "postgresql":
                    continue
                rule = rule[4:]
            found.setdefault(rev_id, {})[rule] = text
    return found


def test_every_rule_and_its_safe_form(make_app: AppFactory, server: Server) -> None:
    app = make_app(server.new_database(), models=no_models)
    with app.app_context():
        init()
        write_cases()
        # The pending revisions: the database has the first revision only.
        assert upgrade(revision="first") == ["first"]
        report = lint()

    assert isinstance(report, LintReport)
    assert report.revisions == [rev_id for rev_id, *_ in CASES]
    want = expected(server.backend)
    got: dict[str, dict[str, str]] = {}
    for finding in report:
        got.setdefault(finding.revision, {})[finding.rule] = line_of(finding)
        assert finding.accepted is False
        assert finding.database is None
        assert finding.path.endswith(f"{finding.revision}_lint.py")
    assert {rev: set(found) for rev, found in got.items()} == {
        rev: set(found) for rev, found in want.items()
    }
    for rev, found in want.items():
        for rule, text in found.items():
            assert text in got[rev][rule], (rev, rule, got[rev][rule])

    by_rule = {(f.revision, f.rule): f for f in report}
    dropped = by_rule["dropcol", "drop-column"]
    assert (dropped.table, dropped.column) == ("user", "legacy")
    assert "drops column user.legacy" in dropped.message
    assert "later release" in dropped.alternative
    raised = by_rule["down_raise", "empty-downgrade"]
    assert "cannot be downgraded" in raised.message
    data = by_rule["data", "not-inspectable"]
    assert "AttributeError" in data.message and "upgrade()" in data.message

    # The same through the command, with the database untouched.
    result = invoke(app)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert lines[-1] == f"{len(report)} problems in {len(CASES)} revisions (0 accepted)"
    assert lines[:-1] == [str(f) for f in report]
    assert version_rows(server_url(app)) == ["first"]


def server_url(app: Flask) -> str:
    return str(app.config["SQLALCHEMY_DATABASE_URI"])


def test_index_rule_follows_the_dialect(make_app: AppFactory, server: Server) -> None:
    app = make_app(server.new_database(), models=no_models)
    with app.app_context():
        init()
        write_revision("ix", None, "op.create_index('ix_a', 'user', ['name'])")
        found = lint(rev_range="ix")
    assert rules(found) == (
        [("ix", "index-not-concurrent")] if server.backend == "postgresql" else []
    )
    result = invoke(app, "ix")
    assert result.exit_code == (1 if server.backend == "postgresql" else 0)
    if server.backend != "postgresql":
        assert result.output == "No problems found in 1 revision.\n"


# --------------------------------------------------------------------------
# ranges


def chain(count: int) -> list[str]:
    """Revisions r1..rN, each dropping a column of its own."""
    ids = [f"r{n}" for n in range(1, count + 1)]
    for down, rev_id in zip([None, *ids], ids, strict=False):
        write_revision(rev_id, down, f"op.drop_column('user', 'c_{rev_id}')")
    return ids


def test_default_range_is_the_pending_revisions(
    make_app: AppFactory, server: Server
) -> None:
    app = make_app(server.new_database(), models=no_models)
    with app.app_context():
        init()
        # Real tables, so that the revisions can be applied.
        write_revision(
            "r1",
            None,
            "op.create_table('user', sa.Column('id', sa.Integer, primary_key=True),"
            " sa.Column('c_r2', sa.Integer), sa.Column('c_r3', sa.Integer))",
            "op.drop_table('user')",
        )
        write_revision("r2", "r1", "op.drop_column('user', 'c_r2')")
        write_revision("r3", "r2", "op.drop_column('user', 'c_r3')")
        # Nothing applied: the table r1 creates is new, so dropping its
        # columns later in the range is harmless.
        assert rules(lint()) == []
        assert lint().revisions == ["r1", "r2", "r3"]
        upgrade(revision="r1")
        assert rules(lint()) == [("r2", "drop-column"), ("r3", "drop-column")]
        upgrade(revision="r2")
        assert rules(lint()) == [("r3", "drop-column")]
        upgrade()
        everything = lint()
    assert everything == [] and everything.revisions == []
    result = invoke(app)
    assert result.exit_code == 0
    assert result.output == "No problems found in 0 revisions.\n"


def test_explicit_ranges(lint_app: Flask) -> None:
    with lint_app.app_context():
        chain(4)
        assert rules(lint(rev_range="r2")) == [("r2", "drop-column")]
        # START is the revision the database is at: not itself reviewed.
        assert lint(rev_range="r1:r3").revisions == ["r2", "r3"]
        assert lint(rev_range="r2:head").revisions == ["r3", "r4"]
        assert lint(rev_range="base:heads").revisions == ["r1", "r2", "r3", "r4"]
        assert lint(rev_range=":r2").revisions == ["r1", "r2"]
        assert lint(rev_range="r2:").revisions == ["r3", "r4"]
        assert lint(rev_range="head").revisions == ["r4"]
    result = invoke(lint_app, "r1:r3")
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "2 problems in 2 revisions (0 accepted)"


def test_tables_created_before_the_range_start_are_existing_tables(
    lint_app: Flask,
) -> None:
    # r1 creates a table, r2 adds a NOT NULL column to it: reviewed from
    # base, the table is new (empty) when r2 runs; reviewed from r1, the
    # table already exists and may hold rows.
    with lint_app.app_context():
        write_revision(
            "r1",
            None,
            "op.create_table('t', sa.Column('id', sa.Integer(), primary_key=True))",
            "op.drop_table('t')",
        )
        write_revision(
            "r2",
            "r1",
            "op.add_column('t', sa.Column('n', sa.Integer(), nullable=False))",
            "op.drop_column('t', 'n')",
        )
        assert rules(lint(rev_range="base:heads")) == []
        assert rules(lint(rev_range="r1:heads")) == [("r2", "not-null-column")]


def test_explicit_range_needs_no_database(make_app: AppFactory, tmp_path: Path) -> None:
    # A database file in a folder that does not exist cannot be opened.
    app = make_app(f"sqlite:///{tmp_path}/missing/app.db", models=no_models)
    with app.app_context():
        init()
        chain(2)
        assert rules(lint(rev_range="base:heads")) == [
            ("r1", "drop-column"),
            ("r2", "drop-column"),
        ]
        with pytest.raises(RuntimeError) as failed:
            lint()
    assert "cannot read the current revision from the database" in str(failed.value)
    assert "'base:heads'" in str(failed.value)
    result = invoke(app)
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot read the current revision")
    assert "Traceback" not in result.output
    assert len(result.output.splitlines()) == 1
    assert invoke(app, "base:heads").exit_code == 1  # findings, not an error


@pytest.mark.parametrize(
    ("rev_range", "message"),
    [
        ("nope", "Error: Can't locate revision identified by 'nope'"),
        ("r1:nope", "Error: Can't locate revision identified by 'nope'"),
        ("a:b:c", "Error: invalid revision range 'a:b:c'; give one revision"),
    ],
)
def test_bad_range(lint_app: Flask, rev_range: str, message: str) -> None:
    with lint_app.app_context():
        chain(1)
        # The Python function raises; only the command prints and exits.
        with pytest.raises((CommandError, RuntimeError)):
            lint(rev_range=rev_range)
    result = invoke(lint_app, rev_range)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert len(result.output.splitlines()) == 1


# --------------------------------------------------------------------------
# accepting reviewed findings


def test_accept_markers(lint_app: Flask) -> None:
    with lint_app.app_context():
        write_revision(
            "acc",
            None,
            """
            op.drop_column('user', 'a')  # flask-db-lint: accept drop-column
            # Reviewed: nothing reads it since 2.3.
            # flask-db-lint: accept drop-column -- removed in 2.3
            op.drop_column('user', 'b')
            op.drop_column(
                'user',
                'c',  # flask-db-lint: accept drop-column
            )
            op.drop_column('user', 'd')  # flask-db-lint: accept drop-table
            # flask-db-lint: accept drop-column

            op.drop_column('user', 'e')
            op.alter_column('user', 'f', type_=sa.Text, nullable=False)  # flask-db-lint: accept type-change
            """,  # noqa: E501
        )
        found = lint(rev_range="acc")
    summary = [(f.column, f.rule, f.accepted) for f in found]
    assert summary == [
        ("a", "drop-column", True),
        ("b", "drop-column", True),
        ("c", "drop-column", True),
        ("d", "drop-column", False),  # a marker for another rule
        ("e", "drop-column", False),  # a blank line between
        ("f", "type-change", True),
        ("f", "set-not-null", False),
    ]
    assert found.problems == [f for f in found if not f.accepted]

    result = invoke(lint_app, "acc")
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert sum(line.endswith("[accepted]") for line in lines) == 4
    assert lines[-1] == "3 problems in 1 revision (4 accepted)"


def test_module_level_marker_accepts_the_whole_revision(lint_app: Flask) -> None:
    with lint_app.app_context():
        write_revision(
            "whole",
            None,
            """
            op.drop_column('user', 'a')
            op.drop_table('old')
            """,
            header="# flask-db-lint: accept drop-column, drop-table\n",
        )
        found = lint(rev_range="whole")
    assert [(f.rule, f.accepted) for f in found] == [
        ("drop-column", True),
        ("drop-table", True),
    ]
    result = invoke(lint_app, "whole")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        "No problems found in 1 revision (2 accepted)."
    )


@pytest.mark.parametrize(
    ("downgrade_body", "accepted"),
    [
        ("pass  # flask-db-lint: accept empty-downgrade", True),
        ("# flask-db-lint: accept empty-downgrade -- one-way\npass", True),
        ("raise NotImplementedError  # flask-db-lint: accept empty-downgrade", True),
        ("pass", False),
        ("pass  # flask-db-lint: accept drop-column", False),
    ],
)
def test_downgrade_marker(lint_app: Flask, downgrade_body: str, accepted: bool) -> None:
    with lint_app.app_context():
        write_revision(
            "down",
            None,
            "op.add_column('user', sa.Column('x', sa.Text))",
            downgrade_body,
        )
        found = lint(rev_range="down")
    assert [(f.rule, f.accepted) for f in found] == [("empty-downgrade", accepted)]
    assert line_of(found[0]).startswith("def downgrade")
    assert invoke(lint_app, "down").exit_code == (0 if accepted else 1)


def test_revision_without_operations_needs_no_downgrade(lint_app: Flask) -> None:
    # A merge point, or the empty base of a branch, has nothing to undo.
    with lint_app.app_context():
        write_revision("empty", None, "pass", "pass")
        assert lint(rev_range="empty") == []


def test_unknown_marker_is_reported(lint_app: Flask) -> None:
    with lint_app.app_context():
        write_revision(
            "typo",
            None,
            """
            op.drop_column('user', 'a')  # flask-db-lint: accept drop-colum
            op.drop_column('user', 'b')  # flask-db-lint: acept drop-column
            """,
        )
        found = lint(rev_range="typo")
    assert [(f.rule, f.line, f.accepted) for f in found] == [
        ("unknown-marker", 12, False),
        ("drop-column", 12, False),
        ("unknown-marker", 13, False),
        ("drop-column", 13, False),
    ]
    assert "the marker names 'drop-colum', not a rule" in found[0].message
    assert "'acept drop-column' does not read 'accept RULE'" in found[2].message
    assert invoke(lint_app, "typo").exit_code == 1


# --------------------------------------------------------------------------
# output and options


def test_warn_only_prints_and_exits_zero(lint_app: Flask) -> None:
    with lint_app.app_context():
        chain(2)
    result = invoke(lint_app, "base:heads", "--warn-only")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(
        os.path.join("migrations", "versions", "r1_lint.py") + ":12: drop-column "
        "(revision r1): drops column user.c_r1: its data is lost"
    )
    assert "Safer: stop using the column in one release" in lines[0]
    assert lines[-1] == "2 problems in 2 revisions (0 accepted)"


def test_json_output(lint_app: Flask) -> None:
    with lint_app.app_context():
        chain(1)
        write_revision(
            "r2", "r1", "op.drop_table('t')  # flask-db-lint: accept drop-table"
        )
    result = invoke(lint_app, "base:heads", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert [(d["revision"], d["rule"], d["accepted"]) for d in data] == [
        ("r1", "drop-column", False),
        ("r2", "drop-table", True),
    ]
    assert data[0]["table"] == "user" and data[0]["column"] == "c_r1"
    assert data[0]["line"] == 12 and data[0]["database"] is None
    assert Path(data[0]["path"]).name == "r1_lint.py"
    assert set(data[0]) == {
        "rule",
        "revision",
        "path",
        "line",
        "message",
        "alternative",
        "table",
        "column",
        "database",
        "accepted",
    }
    only_accepted = invoke(lint_app, "r2", "--json")
    assert only_accepted.exit_code == 0
    assert [d["rule"] for d in json.loads(only_accepted.output)] == ["drop-table"]


def test_rule_and_ignore_options(lint_app: Flask) -> None:
    with lint_app.app_context():
        write_revision(
            "two",
            None,
            "op.drop_column('user', 'a')\nop.drop_table('old')",
            "pass",
        )
        assert [f.rule for f in lint(rev_range="two")] == [
            "drop-column",
            "drop-table",
            "empty-downgrade",
        ]
        assert [f.rule for f in lint(rev_range="two", rules=["drop-table"])] == [
            "drop-table"
        ]
        assert [
            f.rule for f in lint(rev_range="two", ignore=["drop-table", "drop-column"])
        ] == ["empty-downgrade"]
        with pytest.raises(RuntimeError) as failed:
            lint(rev_range="two", rules=["drop-tables"])
    assert "unknown lint rule 'drop-tables'" in str(failed.value)
    result = invoke(lint_app, "two", "--rule", "drop-column", "--rule", "drop-table")
    assert result.output.splitlines()[-1] == "2 problems in 1 revision (0 accepted)"
    result = invoke(
        lint_app, "two", "--ignore", "drop-column", "--ignore", "drop-table"
    )
    assert "empty-downgrade" in result.output and "drop-" not in result.output
    result = invoke(lint_app, "two", "--ignore", "nonsense")
    assert result.exit_code == 1
    assert result.output.startswith("Error: unknown lint rule 'nonsense'; the rules")


def test_revision_sees_offline_mode_and_x_arguments(
    lint_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with lint_app.app_context():
        write_revision(
            "ctx",
            None,
            """
            if not context.is_offline_mode():
                op.get_bind().execute(sa.text("SELECT 1")).fetchall()
            if context.get_x_argument(as_dictionary=True).get("purge") == "yes":
                op.drop_table("cache")
            """,
            header="from alembic import context\n",
        )
        with caplog.at_level(logging.DEBUG):
            assert lint(rev_range="ctx") == []
            found = lint(rev_range="ctx", x_arg="purge=yes")
    assert rules(found) == [("ctx", "drop-table")]
    # Each revision gets offline migration contexts, which Alembic logs.
    assert not [r for r in caplog.records if r.name.startswith("alembic")]
    result = invoke(lint_app, "-x", "purge=yes", "ctx")
    assert result.exit_code == 1 and "drops table cache" in result.output


def test_lint_changes_nothing(make_app: AppFactory, url: str) -> None:
    app = make_app(url, models=no_models)
    with app.app_context():
        init()
        write_revision(
            "r1",
            None,
            "op.create_table('t', sa.Column('id', sa.Integer, primary_key=True))",
            "op.drop_table('t')",
        )
        write_revision("r2", "r1", "op.drop_table('t')")
        upgrade(revision="r1")
        assert rules(lint()) == [("r2", "drop-table")]
        assert version_rows(url) == ["r1"]
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        assert "t" in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_not_inspectable_revision_does_not_stop_the_lint(lint_app: Flask) -> None:
    with lint_app.app_context():
        write_revision(
            "broken",
            None,
            """
            helper()
            """,
            header="def helper():\n    raise ValueError('needs the real data')\n",
        )
        write_revision("after", "broken", "op.drop_table('x')")
        write_revision(
            "undo",
            "after",
            "op.drop_table('y')",
            "op.get_bind().execute(sa.text('x')).one()",
        )
        found = lint(rev_range="base:heads")
    assert rules(found) == [
        ("broken", "not-inspectable"),
        ("after", "drop-table"),
        ("undo", "drop-table"),
        ("undo", "not-inspectable"),
    ]
    assert "ValueError (needs the real data)" in found[0].message
    assert line_of(found[0]).strip() == "raise ValueError('needs the real data')"
    assert "downgrade()" in found[3].message
    # Accepted like any other finding, on the line it names.
    path = Path(found[0].path)
    marker = "  # flask-db-lint: accept not-inspectable"
    path.write_text(path.read_text().replace("data')\n", f"data'){marker}\n"))
    with lint_app.app_context():
        found = lint(rev_range="broken")
    assert [(f.rule, f.accepted) for f in found] == [("not-inspectable", True)]


def test_revision_asks_context_for_the_migration_context(
    make_app: AppFactory, server: Server
) -> None:
    app = make_app(server.new_database(), models=no_models)
    with app.app_context():
        init()
        # Older revision files ask the environment, not op, for the dialect;
        # before, lint reported them as not-inspectable ("No context has
        # been configured yet").
        write_revision(
            "ctx",
            None,
            "op.drop_table('cache_' + context.get_context().dialect.name)",
            header="from alembic import context\n",
        )
        found = lint(rev_range="ctx")
    assert rules(found) == [("ctx", "drop-table")]
    assert f"drops table cache_{server.backend}" in found[0].message
    result = invoke(app, "ctx")
    assert result.exit_code == 1
    assert f"drops table cache_{server.backend}:" in result.output


def test_async_url_on_a_synchronous_engine_is_one_error_line(
    make_app: AppFactory, sqlite_server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    # Flask-SQLAlchemy makes a synchronous engine of an async URL: it fails
    # on connecting, with MissingGreenlet (before: a traceback). (aiosqlite
    # only: asyncpg and aiomysql leave an unawaited coroutine behind.)
    app = make_app(sqlite_server.new_database(async_driver=True), models=no_models)
    with app.app_context():
        init()
        chain(1)
        capsys.readouterr()
        with pytest.raises(RuntimeError) as failed:
            lint()
        assert rules(lint(rev_range="r1")) == [("r1", "drop-column")]
    message = str(failed.value)
    assert message.startswith("cannot read the current revision from the database")
    assert "MissingGreenlet" in message
    assert capsys.readouterr() == ("", "")  # the function prints nothing
    result = invoke(app)
    assert result.exit_code == 1
    assert result.output == f"Error: {message}\n"


# --------------------------------------------------------------------------
# several databases


MULTIDB_REVISION = textwrap.dedent(
    '''\
    """A multiple-database revision."""
    from alembic import op
    import sqlalchemy as sa

    revision = "multi"
    down_revision = None
    branch_labels = None
    depends_on = None


    def upgrade(engine_name: str) -> None:
        globals().get(f"upgrade_{engine_name}", _nothing)()


    def downgrade(engine_name: str) -> None:
        globals().get(f"downgrade_{engine_name}", _nothing)()


    def _nothing() -> None:
        pass


    def upgrade_() -> None:
        op.create_index("ix_a", "user", ["name"])


    def downgrade_() -> None:
        op.drop_index("ix_a", table_name="user", postgresql_concurrently=True)


    def upgrade_users() -> None:
        op.create_index("ix_b", "account", ["name"])
        op.drop_column("account", "legacy")


    def downgrade_users() -> None:
        pass  # flask-db-lint: accept empty-downgrade
    '''
)


def test_multiple_databases(
    make_app: AppFactory, sqlite_server: Server, server: Server
) -> None:
    # The default database is SQLite; the 'users' bind is on each server.
    app = make_app(
        sqlite_server.new_database(),
        binds={"users": server.new_database()},
        models=no_models,
    )
    with app.app_context():
        init(multidb=True)
        Path("migrations", "versions", "multi_x.py").write_text(MULTIDB_REVISION)
        # Nothing applied yet: the pending range of each database.
        pending = lint()
        explicit = lint(rev_range="multi")
    assert pending == explicit
    on_users = [(f.rule, f.table, f.accepted) for f in pending if f.database == "users"]
    want = [("drop-column", "account", False), ("empty-downgrade", None, True)]
    if server.backend == "postgresql":
        want.insert(0, ("index-not-concurrent", "account", False))
    assert sorted(on_users) == sorted(want)
    # SQLite has no concurrent index builds: nothing on the default database.
    assert [f for f in pending if f.database is None] == []
    empty = next(f for f in pending if f.rule == "empty-downgrade")
    assert line_of(empty).startswith("def downgrade_users")
    result = invoke(app, "multi")
    assert result.exit_code == 1
    assert "(revision multi, database 'users')" in result.output


# --------------------------------------------------------------------------
# a real 'flask' process


def test_flask_db_lint_subprocess(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """
            from flask import Flask
            from flask_sqlalchemy import SQLAlchemy
            from flask_migrate_alt import Migrate

            app = Flask(__name__)
            app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///app.db"
            # Flask-SQLAlchemy 2.x warns on stderr without it.
            app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
            db = SQLAlchemy(app)
            Migrate(app, db)
            """
        )
    )

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return run_flask(tmp_path, "db", *args)

    assert flask("init").returncode == 0
    write_revision(
        "gone",
        None,
        "op.drop_table('legacy')",
        directory=tmp_path / "migrations",
    )
    proc = flask("lint")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[-1] == "1 problem in 1 revision (0 accepted)"
    assert proc.stdout.startswith(
        os.path.join("migrations", "versions", "gone_lint.py") + ":12: drop-table"
    )
    assert proc.stderr == ""
    proc = flask("lint", "--warn-only")
    assert proc.returncode == 0 and "drop-table" in proc.stdout
    proc = flask("lint", "nope")
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: Can't locate revision identified by 'nope'")
    assert "Traceback" not in proc.stderr


def test_finding_text() -> None:
    finding = Finding(
        rule="drop-table",
        revision="abc",
        path=os.path.join(os.getcwd(), "versions", "abc_x.py"),
        line=7,
        message="drops table t: it hurts",
        alternative="do not",
        database="users",
        accepted=True,
    )
    assert str(finding) == (
        os.path.join("versions", "abc_x.py") + ":7: drop-table (revision abc, "
        "database 'users'): drops table t: it hurts. Safer: do not. [accepted]"
    )
    report = LintReport([finding], ["abc", "def"])
    assert report.problems == []
    assert report.summary() == "No problems found in 2 revisions (1 accepted)."
