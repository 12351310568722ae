"""The module-level command functions, called from Python on SQLite.

These are what deploy scripts and ``flask_migrate`` users call directly:
``init(...)``, ``upgrade(...)`` and so on inside an app context.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import Script
from alembic.util import CommandError
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt.config import SEPARATOR_OPTION

from .conftest import (
    REPO,
    AppFactory,
    add_table_ops,
    default_models,
    no_models,
    table_names,
    version_rows,
)

# --------------------------------------------------------------------------
# helpers


@pytest.fixture
def ctx(app: Flask) -> Any:
    with app.app_context():
        yield app


def versions(tmp_path: Path, directory: str = "migrations") -> Path:
    return tmp_path / directory / "versions"


def table_revision(rev_id: str, table: str, **kwargs: Any) -> Script:
    """Create revision ``rev_id`` that creates ``table`` and drops it on downgrade."""
    script = fma.revision(message=f"create {table}", rev_id=rev_id, **kwargs)
    assert isinstance(script, Script)
    add_table_ops(script.path, table)
    return script


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("Error:")]


def assert_one_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    """Assert that stderr ends with exactly one ``Error:`` line; return it."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1, err
    assert err.rstrip("\n").splitlines()[-1] == lines[0]
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# --------------------------------------------------------------------------
# compatibility contract with Flask-Migrate 4.1

FLASK_MIGRATE_41_SIGNATURES: dict[str, list[tuple[str, Any]]] = {
    "init": [
        ("directory", None),
        ("multidb", False),
        ("template", None),
        ("package", False),
    ],
    "list_templates": [],
    "revision": [
        ("directory", None),
        ("message", None),
        ("autogenerate", False),
        ("sql", False),
        ("head", "head"),
        ("splice", False),
        ("branch_label", None),
        ("version_path", None),
        ("rev_id", None),
    ],
    "migrate": [
        ("directory", None),
        ("message", None),
        ("sql", False),
        ("head", "head"),
        ("splice", False),
        ("branch_label", None),
        ("version_path", None),
        ("rev_id", None),
        ("x_arg", None),
    ],
    "edit": [("directory", None), ("revision", "current")],
    "merge": [
        ("directory", None),
        ("revisions", ""),
        ("message", None),
        ("branch_label", None),
        ("rev_id", None),
    ],
    "upgrade": [
        ("directory", None),
        ("revision", "head"),
        ("sql", False),
        ("tag", None),
        ("x_arg", None),
    ],
    "downgrade": [
        ("directory", None),
        ("revision", "-1"),
        ("sql", False),
        ("tag", None),
        ("x_arg", None),
    ],
    "show": [("directory", None), ("revision", "head")],
    "history": [
        ("directory", None),
        ("rev_range", None),
        ("verbose", False),
        ("indicate_current", False),
    ],
    "heads": [
        ("directory", None),
        ("verbose", False),
        ("resolve_dependencies", False),
    ],
    "branches": [("directory", None), ("verbose", False)],
    "current": [("directory", None), ("verbose", False)],
    "stamp": [
        ("directory", None),
        ("revision", "head"),
        ("sql", False),
        ("tag", None),
        ("purge", False),
    ],
    "check": [("directory", None)],
}


@pytest.mark.parametrize("name", sorted(FLASK_MIGRATE_41_SIGNATURES))
def test_signature_matches_flask_migrate_41(name: str) -> None:
    params = list(inspect.signature(getattr(fma, name)).parameters.values())
    positional = [
        (p.name, p.default)
        for p in params
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == FLASK_MIGRATE_41_SIGNATURES[name]
    # Anything beyond Flask-Migrate's parameters is keyword-only with a
    # default, so calls written for Flask-Migrate bind the same way.
    for p in params[len(positional) :]:
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, p
        assert p.default is not inspect.Parameter.empty, p


def test_all_commands_are_public() -> None:
    for name in FLASK_MIGRATE_41_SIGNATURES:
        assert name in fma.__all__
        assert callable(getattr(fma, name))


# --------------------------------------------------------------------------
# init and list_templates


def test_list_templates_prints_and_returns(capsys: pytest.CaptureFixture[str]) -> None:
    templates = fma.list_templates()
    assert set(templates) == {"flask", "flask-multidb", "aioflask", "aioflask-multidb"}
    for name, synopsis in templates.items():
        readme = REPO / "templates" / name / "README"
        assert synopsis == readme.read_text().splitlines()[0].strip()
        assert synopsis
    out = capsys.readouterr().out
    assert "Available templates:" in out
    for name, synopsis in templates.items():
        assert f"{name} - {synopsis}" in out.splitlines()


def test_init_creates_repository_and_returns_directory(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = fma.init()
    assert result == "migrations"
    repo = tmp_path / "migrations"
    for name in ("env.py", "alembic.ini", "script.py.mako", "README"):
        assert (repo / name).is_file()
    assert (repo / "versions").is_dir()
    template = REPO / "templates" / "flask"
    assert (repo / "env.py").read_text() == (template / "env.py").read_text()
    assert not (repo / "__init__.py").exists()
    assert "Generating" in capsys.readouterr().out


def test_init_accepts_path_and_package(ctx: Flask, tmp_path: Path) -> None:
    target = tmp_path / "sub" / "migs"
    result = fma.init(target, package=True)
    assert result == str(target)
    assert (target / "__init__.py").is_file()
    assert (target / "versions" / "__init__.py").is_file()


@pytest.mark.parametrize(
    ("template", "multidb", "expected"),
    [
        (None, True, "flask-multidb"),
        ("aioflask", False, "aioflask"),
        ("aioflask", True, "aioflask-multidb"),
        ("flask-multidb", False, "flask-multidb"),
    ],
)
def test_init_picks_template(
    ctx: Flask, tmp_path: Path, template: str | None, multidb: bool, expected: str
) -> None:
    fma.init(multidb=multidb, template=template)
    generated = (tmp_path / "migrations" / "env.py").read_text()
    assert generated == (REPO / "templates" / expected / "env.py").read_text()


def test_init_from_template_path(ctx: Flask, tmp_path: Path) -> None:
    custom = tmp_path / "my-template"
    custom.mkdir()
    for f in (REPO / "templates" / "flask").iterdir():
        (custom / f.name).write_text(f.read_text())
    with (custom / "env.py").open("a") as f:
        f.write("# my custom env\n")
    fma.init(template=str(custom))
    assert "# my custom env" in (tmp_path / "migrations" / "env.py").read_text()


def test_init_unknown_template_lists_available(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(fma.CommandFailed) as info:
        fma.init(template="nope")
    assert info.value.code == 1
    line = assert_one_error(capsys, "nope")
    for name in ("flask", "flask-multidb", "aioflask", "aioflask-multidb"):
        assert name in line
    assert not (tmp_path / "migrations").exists()


def test_init_template_path_that_is_not_a_template(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "not-a-template"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(fma.CommandFailed):
        fma.init(template=str(folder))
    line = assert_one_error(capsys, "not-a-template", "is not a repository template")
    assert "env.py" in line
    assert not (tmp_path / "migrations").exists()


def test_init_into_non_empty_directory_fails_cleanly(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "migrations"
    repo.mkdir()
    (repo / "keep.txt").write_text("precious")
    with pytest.raises(fma.CommandFailed) as info:
        fma.init()
    assert isinstance(info.value.__cause__, CommandError)
    assert_one_error(capsys, "not empty")
    assert sorted(p.name for p in repo.iterdir()) == ["keep.txt"]
    assert (repo / "keep.txt").read_text() == "precious"


def test_init_twice_leaves_existing_repository(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    env = tmp_path / "migrations" / "env.py"
    env.write_text(env.read_text() + "# edited by me\n")
    capsys.readouterr()
    with pytest.raises(fma.CommandFailed):
        fma.init()
    assert_one_error(capsys)
    assert env.read_text().endswith("# edited by me\n")


# --------------------------------------------------------------------------
# revision


def test_revision_returns_script_with_rev_id(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    script = fma.revision(message="first one", rev_id="abc123")
    assert isinstance(script, Script)
    assert script.revision == "abc123"
    assert script.doc == "first one"
    path = Path(script.path)
    assert path.parent == versions(tmp_path)
    assert path.name == "abc123_first_one.py"
    assert "revision = 'abc123'" in path.read_text()
    assert "abc123_first_one.py" in capsys.readouterr().out


def test_revision_branch_label_head_and_splice(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    fma.revision(message="one", rev_id="aaa")
    fma.revision(message="two", rev_id="bbb")
    # A second root, labelled, starts a branch.
    other = fma.revision(
        message="other", rev_id="ccc", head="base", branch_label="side"
    )
    assert isinstance(other, Script)
    assert other.down_revision is None
    assert other.branch_labels == {"side"}
    assert "branch_labels = ('side',)" in Path(other.path).read_text()

    after_side = fma.revision(message="more side", rev_id="ddd", head="side@head")
    assert isinstance(after_side, Script)
    assert after_side.down_revision == "ccc"

    # Basing a revision on a non-head needs splice.
    capsys.readouterr()
    with pytest.raises(fma.CommandFailed):
        fma.revision(message="splice", rev_id="eee", head="aaa")
    assert_one_error(capsys, "splice")
    assert not list(versions(tmp_path).glob("eee_*"))
    spliced = fma.revision(message="splice", rev_id="eee", head="aaa", splice=True)
    assert isinstance(spliced, Script)
    assert spliced.down_revision == "aaa"

    capsys.readouterr()
    fma.heads()
    heads_out = capsys.readouterr().out
    assert "bbb (head)" in heads_out
    assert "ddd (side) (head)" in heads_out
    assert "eee (head)" in heads_out


def test_revision_version_path(
    ctx: Flask, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    extra = tmp_path / "more_versions"
    migrate_obj = ctx.extensions["migrate"].migrate

    @migrate_obj.configure
    def two_locations(config: Any) -> Any:
        config.set_main_option(SEPARATOR_OPTION, "os")
        config.set_main_option(
            "version_locations",
            os.pathsep.join([str(versions(tmp_path)), str(extra)]),
        )
        return config

    script = fma.revision(message="elsewhere", rev_id="vp1", version_path=str(extra))
    assert isinstance(script, Script)
    assert Path(script.path).parent == extra
    assert (extra / "vp1_elsewhere.py").is_file()
    assert not list(versions(tmp_path).glob("vp1_*"))

    capsys.readouterr()
    with pytest.raises(fma.CommandFailed):
        fma.revision(message="nowhere", version_path=str(tmp_path / "unknown"))
    assert_one_error(capsys, "not represented in current version locations")


def test_revision_autogenerate(ctx: Flask, tmp_path: Path, url: str) -> None:
    fma.init()
    script = fma.revision(message="auto", autogenerate=True, rev_id="auto1")
    assert isinstance(script, Script)
    body = Path(script.path).read_text()
    assert "op.create_table('user'" in body
    assert "op.drop_table('user')" in body
    # Autogenerate compares; it never creates the model tables.
    assert "user" not in table_names(url)


# --------------------------------------------------------------------------
# migrate (autogenerate)


def test_migrate_writes_revision_and_upgrade_applies_it(
    ctx: Flask, tmp_path: Path, url: str
) -> None:
    fma.init()
    script = fma.migrate(message="initial")
    assert isinstance(script, Script)
    files = list(versions(tmp_path).glob("*_initial.py"))
    assert [Path(script.path)] == files
    assert "op.create_table('user'" in files[0].read_text()
    assert table_names(url) == {"alembic_version"}  # autogenerate only reads

    fma.upgrade()
    assert table_names(url) == {"alembic_version", "user"}
    assert version_rows(url) == [script.revision]


def test_migrate_without_changes_writes_nothing(
    ctx: Flask, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fma.init()
    fma.migrate(message="initial")
    fma.upgrade()
    caplog.set_level(logging.INFO, logger="flask_migrate_alt")
    caplog.clear()
    assert fma.migrate(message="nothing") is None
    assert not list(versions(tmp_path).glob("*_nothing.py"))
    assert "No changes in schema detected." in caplog.messages
    # The same for 'revision --autogenerate'.
    assert fma.revision(message="nothing", autogenerate=True) is None
    assert not list(versions(tmp_path).glob("*_nothing.py"))


def test_user_process_revision_directives_replaces_default(
    make_app: AppFactory, url: str, tmp_path: Path
) -> None:
    calls: list[str] = []

    def directives(context: Any, revision: Any, directives: list[Any]) -> None:
        calls.append(directives[0].rev_id)
        directives[0].rev_id = f"custom{len(calls)}"

    app = make_app(url, models=no_models, process_revision_directives=directives)
    with app.app_context():
        fma.init()
        # No model changes, but the user's hook decides: the file is written.
        script = fma.migrate(message="empty")
        assert isinstance(script, Script)
        assert script.revision == "custom1"
        assert [p.name for p in versions(tmp_path).glob("*.py")] == ["custom1_empty.py"]
        assert len(calls) == 1


def test_compare_type_and_render_as_batch_defaults(
    make_app: AppFactory, url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(url)
    with app.app_context():
        fma.init()
        fma.migrate(message="initial")
        fma.upgrade()

    def short_names(db: Any, keys: list[str]) -> None:
        default_models(db, keys, name_length=10)

    changed = make_app(url, models=short_names)
    caplog.set_level(logging.INFO, logger="alembic")
    with changed.app_context():
        script = fma.migrate(message="shorter")
    assert isinstance(script, Script)
    assert any(
        "Detected type change from VARCHAR(length=128) to String(length=10)" in m
        for m in caplog.messages
    ), caplog.messages
    body = Path(script.path).read_text()
    assert "with op.batch_alter_table('user'" in body
    assert "type_=sa.String(length=10)" in body

    # Batch mode is what makes the ALTER work on SQLite.
    with changed.app_context():
        fma.upgrade()
    engine = sa.create_engine(url)
    try:
        columns = {c["name"]: c["type"] for c in sa.inspect(engine).get_columns("user")}
    finally:
        engine.dispose()
    assert columns["name"].length == 10


def test_compare_type_can_be_turned_off(
    make_app: AppFactory, url: str, tmp_path: Path
) -> None:
    app = make_app(url)
    with app.app_context():
        fma.init()
        fma.migrate(message="initial")
        fma.upgrade()

    def short_names(db: Any, keys: list[str]) -> None:
        default_models(db, keys, name_length=10)

    changed = make_app(url, models=short_names, compare_type=False)
    with changed.app_context():
        assert fma.migrate(message="shorter") is None
    assert not list(versions(tmp_path).glob("*_shorter.py"))


# --------------------------------------------------------------------------
# upgrade, downgrade, stamp, current


def test_upgrade_downgrade_steps(
    ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    table_revision("r1", "one")
    table_revision("r2", "two")

    fma.upgrade(revision="r1")
    assert table_names(url) == {"alembic_version", "one"}
    assert version_rows(url) == ["r1"]

    fma.upgrade()
    assert table_names(url) == {"alembic_version", "one", "two"}
    assert version_rows(url) == ["r2"]

    fma.downgrade()  # default: one step back
    assert table_names(url) == {"alembic_version", "one"}
    assert version_rows(url) == ["r1"]

    fma.downgrade(revision="base")
    assert table_names(url) == {"alembic_version"}
    assert version_rows(url) == []


def test_upgrade_sql_does_not_touch_database(
    ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    table_revision("r1", "one")
    capsys.readouterr()
    fma.upgrade(sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE one" in out
    assert "INSERT INTO alembic_version (version_num) VALUES ('r1')" in out
    assert table_names(url) == set()


def test_downgrade_sql_defaults_to_head_minus_one(
    ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    table_revision("r1", "one")
    table_revision("r2", "two")
    capsys.readouterr()
    fma.downgrade(sql=True)
    out = capsys.readouterr().out
    assert "DROP TABLE two" in out
    assert "DROP TABLE one" not in out
    assert "SET version_num='r1' WHERE alembic_version.version_num = 'r2'" in out
    assert table_names(url) == set()


def test_upgrade_with_tag_and_x_arg_reach_env(ctx: Flask, tmp_path: Path) -> None:
    fma.init()
    record = tmp_path / "seen.txt"
    env = tmp_path / "migrations" / "env.py"
    env.write_text(
        "from alembic import context\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(repr((context.get_tag_argument(), context.get_x_argument())))\n"
        "    f.write('\\n')\n" + env.read_text()
    )
    fma.upgrade(tag="v1", x_arg="a=1")
    fma.upgrade(x_arg=["a=1", "b=2"])
    fma.current(x_arg=("c=3",))
    assert record.read_text().splitlines() == [
        "('v1', ['a=1'])",
        "(None, ['a=1', 'b=2'])",
        "(None, ['c=3'])",
    ]


def test_current_shows_revision(
    ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    table_revision("r1", "one")
    capsys.readouterr()
    fma.current()
    assert "r1" not in capsys.readouterr().out
    fma.upgrade()
    capsys.readouterr()
    fma.current()
    assert capsys.readouterr().out.splitlines() == ["r1 (head)"]
    fma.current(verbose=True)
    out = capsys.readouterr().out
    assert "Current revision(s) for sqlite:///" in out
    assert "Rev: r1 (head)" in out


def test_stamp(ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fma.init()
    table_revision("r1", "one")
    table_revision("r2", "two")
    fma.stamp()
    assert version_rows(url) == ["r2"]
    assert table_names(url) == {"alembic_version"}  # no migration ran
    fma.stamp(revision="r1")
    assert version_rows(url) == ["r1"]

    capsys.readouterr()
    fma.stamp(revision="r2", sql=True)
    out = capsys.readouterr().out
    assert "INSERT INTO alembic_version (version_num) VALUES ('r2')" in out
    assert version_rows(url) == ["r1"]


def test_stamp_purge_replaces_unknown_version(
    ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    table_revision("r1", "one")
    fma.stamp()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'deleted99'"))
    engine.dispose()

    capsys.readouterr()
    with pytest.raises(fma.CommandFailed) as info:
        fma.stamp()
    assert isinstance(info.value.__cause__, CommandError)
    assert_one_error(capsys, "deleted99")
    assert version_rows(url) == ["deleted99"]

    fma.stamp(purge=True)
    assert version_rows(url) == ["r1"]


def test_check(ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]) -> None:
    fma.init()
    capsys.readouterr()
    # The database lacks the 'user' table the models declare.
    with pytest.raises(fma.CommandFailed) as info:
        fma.check()
    assert isinstance(info.value.__cause__, CommandError)
    assert_one_error(capsys, "New upgrade operations detected", "add_table")

    fma.migrate(message="initial")
    capsys.readouterr()
    with pytest.raises(fma.CommandFailed):
        fma.check()
    assert_one_error(capsys, "not up to date")

    fma.upgrade()
    capsys.readouterr()
    assert fma.check() is None
    assert "No new upgrade operations detected." in capsys.readouterr().out


# --------------------------------------------------------------------------
# inspecting history


def test_show_history_heads_branches(
    ctx: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    fma.revision(message="one", rev_id="aaa")
    fma.revision(message="two", rev_id="bbb")
    fma.revision(message="three", rev_id="ccc", head="aaa", splice=True)
    fma.upgrade(revision="bbb")
    capsys.readouterr()

    fma.show(revision="bbb")
    out = capsys.readouterr().out
    assert "Rev: bbb (head)" in out
    assert "Parent: aaa" in out
    assert "two" in out

    with pytest.raises(fma.CommandFailed):
        fma.show()  # default 'head': ambiguous with two heads
    assert_one_error(
        capsys, "several heads", "flask db merge heads", "flask db upgrade heads"
    )

    fma.history()
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines[:2]) == ["aaa -> bbb (head), two", "aaa -> ccc (head), three"]
    assert lines[2:] == ["<base> -> aaa (branchpoint), one"]
    fma.history(rev_range="aaa:bbb")
    assert capsys.readouterr().out.splitlines() == [
        "aaa -> bbb (head), two",
        "<base> -> aaa (branchpoint), one",
    ]
    fma.history(indicate_current=True)
    assert "aaa -> bbb (head) (current), two" in capsys.readouterr().out.splitlines()
    fma.history(verbose=True)
    assert "Rev: aaa (branchpoint)" in capsys.readouterr().out

    fma.heads()
    assert sorted(capsys.readouterr().out.splitlines()) == ["bbb (head)", "ccc (head)"]
    fma.heads(verbose=True)
    assert "Rev: bbb (head)" in capsys.readouterr().out
    fma.heads(resolve_dependencies=True)
    assert sorted(capsys.readouterr().out.splitlines()) == ["bbb (head)", "ccc (head)"]

    fma.branches()
    out = capsys.readouterr().out
    assert "aaa (branchpoint)" in out
    assert "    -> bbb (head)" in out.splitlines()
    assert "    -> ccc (head)" in out.splitlines()
    fma.branches(verbose=True)
    assert "Rev: aaa (branchpoint)" in capsys.readouterr().out


# --------------------------------------------------------------------------
# merge


def test_merge_named_revisions(ctx: Flask, capsys: pytest.CaptureFixture[str]) -> None:
    fma.init()
    fma.revision(message="root", rev_id="aaa")
    fma.revision(message="left", rev_id="bbb")
    fma.revision(message="right", rev_id="ccc", head="aaa", splice=True)
    script = fma.merge(
        revisions=["bbb", "ccc"], message="join", branch_label="joined", rev_id="mmm"
    )
    assert isinstance(script, Script)
    assert script.revision == "mmm"
    assert set(script.down_revision) == {"bbb", "ccc"}  # type: ignore[arg-type]
    assert script.branch_labels == {"joined"}
    assert Path(script.path).name == "mmm_join.py"
    capsys.readouterr()
    fma.heads()
    assert capsys.readouterr().out.splitlines() == ["mmm (joined) (head)"]


def test_merge_without_revisions_merges_all_heads(
    ctx: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    fma.revision(message="a", rev_id="aaa")
    fma.revision(message="b", rev_id="bbb", head="base", branch_label="b")
    fma.revision(message="c", rev_id="ccc", head="base", branch_label="c")
    script = fma.merge(message="all")
    assert isinstance(script, Script)
    assert set(script.down_revision) == {"aaa", "bbb", "ccc"}  # type: ignore[arg-type]
    capsys.readouterr()
    fma.heads()
    (only_head,) = capsys.readouterr().out.splitlines()
    assert only_head.startswith(f"{script.revision} ")
    assert only_head.endswith(" (head)")


# --------------------------------------------------------------------------
# edit


def test_edit_named_revision(ctx: Flask, editor: str) -> None:
    fma.init()
    first = fma.revision(message="one", rev_id="aaa")
    second = fma.revision(message="two", rev_id="bbb")
    assert isinstance(first, Script) and isinstance(second, Script)
    assert fma.edit(revision="aaa") is None
    assert Path(first.path).read_text().endswith(editor + "\n")
    assert editor not in Path(second.path).read_text()


def test_edit_current_revision(
    ctx: Flask, editor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    first = fma.revision(message="one", rev_id="aaa")
    second = fma.revision(message="two", rev_id="bbb")
    assert isinstance(first, Script) and isinstance(second, Script)
    capsys.readouterr()
    with pytest.raises(fma.CommandFailed):
        fma.edit()  # default 'current': the database is at no revision yet
    assert_one_error(capsys, "No current revisions")

    fma.upgrade(revision="aaa")
    fma.edit()
    assert editor in Path(first.path).read_text()
    assert editor not in Path(second.path).read_text()


# --------------------------------------------------------------------------
# directory as a path


def test_directory_as_pathlib_path(
    ctx: Flask, tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "elsewhere"
    fma.init(repo)
    script = fma.revision(repo, "one", rev_id="p1")
    assert isinstance(script, Script)
    assert Path(script.path).parent == repo / "versions"
    fma.upgrade(repo)
    assert version_rows(url) == ["p1"]
    capsys.readouterr()
    fma.current(repo)
    fma.heads(repo)
    fma.history(repo)
    fma.show(repo, "p1")
    out = capsys.readouterr().out
    assert "p1 (head)" in out
    assert "Rev: p1 (head)" in out
    fma.stamp(repo, "base")
    assert version_rows(url) == []
    assert not (tmp_path / "migrations").exists()


# --------------------------------------------------------------------------
# errors


def test_unknown_revision_raises_command_failed(
    ctx: Flask, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fma.init()
    capsys.readouterr()
    with pytest.raises(fma.CommandFailed) as info:
        fma.upgrade(revision="bogus")
    exc = info.value
    assert isinstance(exc, SystemExit)
    assert exc.code == 1
    assert isinstance(exc.__cause__, CommandError)
    assert "bogus" in exc.message
    line = assert_one_error(capsys, "bogus")
    assert line == f"Error: {exc.message}"


def test_missing_directory_says_to_run_init(
    ctx: Flask, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(fma.CommandFailed):
        fma.upgrade()
    assert_one_error(capsys, "'migrations'", "flask db init")
    with pytest.raises(fma.CommandFailed):
        fma.current(directory="nowhere")
    assert_one_error(capsys, "'nowhere'", "flask db init")


def test_app_without_migrate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = Flask("plainapp", root_path=str(tmp_path))
    with app.app_context():
        with pytest.raises(fma.CommandFailed) as info:
            fma.upgrade()
    assert isinstance(info.value.__cause__, fma.MigrateNotSetUp)
    assert_one_error(capsys, "'plainapp'", "Migrate(app, db)")
    assert not (tmp_path / "migrations").exists()


def test_catch_errors_on_own_function(capsys: pytest.CaptureFixture[str]) -> None:
    @fma.catch_errors
    def deploy(fail: str | None = None) -> int:
        """Deploy."""
        if fail == "runtime":
            raise RuntimeError("disk\nfull")
        if fail == "value":
            raise ValueError("a bug")
        if fail == "key":
            raise KeyError("not a user error")
        return 42

    assert deploy() == 42
    assert deploy.__name__ == "deploy"
    assert deploy.__doc__ == "Deploy."
    with pytest.raises(fma.CommandFailed) as info:
        deploy("runtime")
    assert info.value.code == 1
    assert str(info.value) == "disk full"
    assert capsys.readouterr().err == "Error: disk full\n"
    # Anything else is a bug: passed through unchanged, nothing printed.
    with pytest.raises(ValueError, match="a bug"):
        deploy("value")
    assert capsys.readouterr().err == ""
    with pytest.raises(KeyError, match="not a user error"):
        deploy("key")
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------
# the garbage collector


@pytest.mark.parametrize("speedups", ["1", "0"])
def test_recursive_version_locations_read_branch_folders_once(
    app: Flask,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    speedups: str,
) -> None:
    """With recursive_version_locations Alembic reads versions/<branch>/ itself;
    adding the folder again made it load each of its files twice (a warning)."""
    monkeypatch.setenv("FLASK_DB_SPEEDUPS", speedups)
    with app.app_context():
        fma.init()
        fma.revision(message="main", rev_id="m1")
        fma.revision(message="audit", branch="audit", rev_id="a1")
        ini = Path("migrations", "alembic.ini")
        ini.write_text(
            ini.read_text().replace(
                "[alembic]\n", "[alembic]\nrecursive_version_locations = true\n", 1
            )
        )
        capsys.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            heads = fma.heads()
    assert sorted(h.revision for h in heads) == ["a1", "m1"]
