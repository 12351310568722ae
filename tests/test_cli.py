"""The ``flask db`` command group, through Flask's CLI test runner."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result
from flask import Flask

from flask_migrate_alt import Config, Migrate
from flask_migrate_alt.config import SEPARATOR_OPTION

from .conftest import (
    AppFactory,
    add_table_ops,
    no_models,
    table_names,
    version_rows,
)


def run(app: Flask, *args: str, env: dict[str, str] | None = None) -> Result:
    """Invoke ``flask <args>`` and assert it succeeded."""
    result = app.test_cli_runner().invoke(args=list(args), env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def fail(app: Flask, *args: str) -> Result:
    """Invoke ``flask <args>``; assert exit status 1 and a single ``Error:`` line."""
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    return result


# --------------------------------------------------------------------------
# the command line of Flask-Migrate 4.1

# Options of each subcommand in Flask-Migrate 4.1, and its arguments as
# (name, nargs, default).
FLASK_MIGRATE_41_CLI: dict[str, tuple[set[str], list[tuple[str, int, Any]]]] = {
    "init": ({"-d", "--directory", "--multidb", "-t", "--template", "--package"}, []),
    "list-templates": (set(), []),
    "revision": (
        {
            "-d",
            "--directory",
            "-m",
            "--message",
            "--autogenerate",
            "--sql",
            "--head",
            "--splice",
            "--branch-label",
            "--version-path",
            "--rev-id",
        },
        [],
    ),
    "migrate": (
        {
            "-d",
            "--directory",
            "-m",
            "--message",
            "--sql",
            "--head",
            "--splice",
            "--branch-label",
            "--version-path",
            "--rev-id",
            "-x",
            "--x-arg",
        },
        [],
    ),
    "edit": ({"-d", "--directory"}, [("revision", 1, "head")]),
    "merge": (
        {"-d", "--directory", "-m", "--message", "--branch-label", "--rev-id"},
        [("revisions", -1, None)],
    ),
    "upgrade": (
        {"-d", "--directory", "--sql", "--tag", "-x", "--x-arg"},
        [("revision", 1, "head")],
    ),
    "downgrade": (
        {"-d", "--directory", "--sql", "--tag", "-x", "--x-arg"},
        [("revision", 1, "-1")],
    ),
    "show": ({"-d", "--directory"}, [("revision", 1, "head")]),
    "history": (
        {
            "-d",
            "--directory",
            "-r",
            "--rev-range",
            "-v",
            "--verbose",
            "-i",
            "--indicate-current",
        },
        [],
    ),
    "heads": ({"-d", "--directory", "-v", "--verbose", "--resolve-dependencies"}, []),
    "branches": ({"-d", "--directory", "-v", "--verbose"}, []),
    "current": ({"-d", "--directory", "-v", "--verbose"}, []),
    "stamp": (
        {"-d", "--directory", "--sql", "--tag", "--purge"},
        [("revision", 1, "head")],
    ),
    "check": ({"-d", "--directory"}, []),
}

FLAGS = {
    "--multidb",
    "--package",
    "--autogenerate",
    "--sql",
    "--splice",
    "--verbose",
    "--indicate-current",
    "--resolve-dependencies",
    "--purge",
    "--check-heads",
}

# Accepted by every subcommand here, though Flask-Migrate had them on fewer.
SHARED = {"-d", "--directory", "-x", "--x-arg"}

# The options this package adds to Flask-Migrate's, as documented.
ADDITIONS: dict[str, set[str]] = {
    "current": {"--check-heads"},
    "revision": {"--branch"},
    "migrate": {"--branch"},
}


def _option_names(command: click.Command) -> set[str]:
    return {
        name
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts + param.secondary_opts
    }


def test_group_has_flask_migrate_commands(app: Flask) -> None:
    group = app.cli.commands["db"]
    assert isinstance(group, click.Group)
    # Every Flask-Migrate 4.1 command, plus the two of our own.
    assert set(group.commands) == set(FLASK_MIGRATE_41_CLI) | {"lint", "status"}
    assert {"-d", "--directory", "-x", "--x-arg"} <= _option_names(group)


@pytest.mark.parametrize("name", sorted(FLASK_MIGRATE_41_CLI))
def test_command_options_match_flask_migrate(app: Flask, name: str) -> None:
    group = app.cli.commands["db"]
    assert isinstance(group, click.Group)
    command = group.commands[name]
    expected_options, expected_arguments = FLASK_MIGRATE_41_CLI[name]
    options = _option_names(command)
    assert expected_options <= options
    additions = ADDITIONS.get(name, set())
    assert options - expected_options - SHARED == additions
    for param in command.params:
        if isinstance(param, click.Option) and set(param.opts) & FLAGS:
            assert param.is_flag, param.opts
    arguments = [
        (p.name, p.nargs, p.default if p.nargs == 1 else None)
        for p in command.params
        if isinstance(p, click.Argument)
    ]
    assert arguments == expected_arguments


def test_help_lists_commands(app: Flask) -> None:
    result = run(app, "db", "--help")
    for name in FLASK_MIGRATE_41_CLI:
        assert name in result.output
    assert "Perform database migrations." in result.output


# --------------------------------------------------------------------------
# every command


def test_lifecycle(app: Flask, tmp_path: Path, url: str) -> None:
    result = run(app, "db", "list-templates")
    assert "flask - " in result.output
    assert "aioflask-multidb - " in result.output

    result = run(app, "db", "init")
    assert (tmp_path / "migrations" / "env.py").is_file()
    assert "Generating" in result.output

    result = run(app, "db", "migrate", "-m", "initial", "--rev-id", "r1")
    path = tmp_path / "migrations" / "versions" / "r1_initial.py"
    assert "op.create_table('user'" in path.read_text()
    assert "r1_initial.py" in result.output

    run(app, "db", "upgrade")
    result = run(app, "db", "check")
    assert "No new upgrade operations detected." in result.output
    run(app, "db", "downgrade")
    assert version_rows(url) == []

    result = run(app, "db", "revision", "-m", "by hand", "--rev-id", "r2")
    add_table_ops(tmp_path / "migrations" / "versions" / "r2_by_hand.py", "extra")

    result = run(app, "db", "upgrade", "--sql")
    assert "CREATE TABLE extra" in result.output
    assert table_names(url) == {"alembic_version"}

    run(app, "db", "upgrade", "r1")
    assert version_rows(url) == ["r1"]
    assert table_names(url) == {"alembic_version", "user"}

    result = run(app, "db", "current")
    assert result.stdout.splitlines() == ["r1"]
    result = run(app, "db", "current", "-v")
    assert "Rev: r1" in result.output

    run(app, "db", "upgrade")
    assert version_rows(url) == ["r2"]
    assert "extra" in table_names(url)

    result = run(app, "db", "history")
    assert result.stdout.splitlines() == [
        "r1 -> r2 (head), by hand",
        "<base> -> r1, initial",
    ]
    result = run(app, "db", "history", "-r", "r1:r2", "-i")
    assert "r1 -> r2 (head) (current), by hand" in result.stdout.splitlines()
    result = run(app, "db", "history", "-v")
    assert "Rev: r2 (head)" in result.output

    result = run(app, "db", "show", "r1")
    assert "Rev: r1" in result.output
    assert "initial" in result.output
    result = run(app, "db", "show")
    assert "Rev: r2 (head)" in result.output

    result = run(app, "db", "heads")
    assert result.stdout.splitlines() == ["r2 (head)"]
    result = run(app, "db", "heads", "-v", "--resolve-dependencies")
    assert "Rev: r2 (head)" in result.output

    result = run(app, "db", "downgrade", "--sql", "r2:r1")
    assert "DROP TABLE extra" in result.output
    assert version_rows(url) == ["r2"]

    run(app, "db", "downgrade")
    assert version_rows(url) == ["r1"]
    assert "extra" not in table_names(url)

    run(app, "db", "stamp", "r2")
    assert version_rows(url) == ["r2"]
    assert "extra" not in table_names(url)  # stamp runs no migration
    result = run(app, "db", "stamp", "--sql", "--tag", "t1", "r1")
    assert "INSERT INTO alembic_version (version_num) VALUES ('r1')" in result.output
    assert version_rows(url) == ["r2"]

    run(app, "db", "stamp", "--purge", "r1")
    assert version_rows(url) == ["r1"]
    run(app, "db", "downgrade", "base")
    assert version_rows(url) == []
    assert table_names(url) == {"alembic_version"}


def test_branches_and_merge(app: Flask, tmp_path: Path) -> None:
    run(app, "db", "init")
    run(app, "db", "revision", "-m", "root", "--rev-id", "aaa")
    run(app, "db", "revision", "-m", "left", "--rev-id", "bbb")
    fail(app, "db", "revision", "-m", "right", "--rev-id", "ccc", "--head", "aaa")
    run(
        app,
        "db",
        "revision",
        "-m",
        "right",
        "--rev-id",
        "ccc",
        "--head",
        "aaa",
        "--splice",
    )
    run(
        app,
        "db",
        "revision",
        "-m",
        "side",
        "--rev-id",
        "ddd",
        "--head",
        "base",
        "--branch-label",
        "side",
    )

    result = run(app, "db", "branches")
    assert "aaa (branchpoint)" in result.output
    result = run(app, "db", "branches", "-v")
    assert "Rev: aaa (branchpoint)" in result.output
    result = run(app, "db", "heads")
    assert sorted(result.stdout.splitlines()) == [
        "bbb (head)",
        "ccc (head)",
        "ddd (side) (head)",
    ]

    run(
        app,
        "db",
        "merge",
        "-m",
        "join",
        "--rev-id",
        "mmm",
        "--branch-label",
        "j",
        "bbb",
        "ccc",
    )
    merged = (tmp_path / "migrations" / "versions" / "mmm_join.py").read_text()
    assert "down_revision = ('bbb', 'ccc')" in merged
    assert "branch_labels = ('j',)" in merged

    run(app, "db", "merge", "-m", "everything", "--rev-id", "zzz")
    result = run(app, "db", "heads")
    (only_head,) = result.stdout.splitlines()
    assert only_head in ("zzz (j, side) (head)", "zzz (side, j) (head)")


def test_revision_version_path_and_autogenerate(app: Flask, tmp_path: Path) -> None:
    run(app, "db", "init")
    extra = tmp_path / "more_versions"
    migrate_obj = app.extensions["migrate"].migrate

    @migrate_obj.configure
    def two_locations(config: Config) -> Config:
        config.set_main_option(SEPARATOR_OPTION, "os")
        config.set_main_option(
            "version_locations",
            os.pathsep.join([str(tmp_path / "migrations" / "versions"), str(extra)]),
        )
        return config

    run(
        app,
        "db",
        "revision",
        "--autogenerate",
        "-m",
        "auto",
        "--rev-id",
        "a1",
        "--version-path",
        str(extra),
    )
    assert "op.create_table('user'" in (extra / "a1_auto.py").read_text()


def test_edit(app: Flask, tmp_path: Path, editor: str) -> None:
    run(app, "db", "init")
    run(app, "db", "revision", "-m", "one", "--rev-id", "aaa")
    run(app, "db", "revision", "-m", "two", "--rev-id", "bbb")
    versions = tmp_path / "migrations" / "versions"

    run(app, "db", "edit")  # default: head
    assert editor in (versions / "bbb_two.py").read_text()
    assert editor not in (versions / "aaa_one.py").read_text()
    run(app, "db", "edit", "aaa")
    assert editor in (versions / "aaa_one.py").read_text()


def test_init_options(app: Flask, tmp_path: Path) -> None:
    run(app, "db", "init", "--multidb", "--package")
    env = (tmp_path / "migrations" / "env.py").read_text()
    assert "multidb=True" in env
    assert (tmp_path / "migrations" / "__init__.py").is_file()
    run(app, "db", "-d", "aio", "init", "-t", "aioflask")
    assert (tmp_path / "aio" / "env.py").read_text() == (
        Path(__file__).resolve().parent.parent / "templates" / "aioflask" / "env.py"
    ).read_text()


# --------------------------------------------------------------------------
# -d/--directory


def test_directory_before_subcommand(app: Flask, tmp_path: Path) -> None:
    run(app, "db", "-d", "before", "init")
    assert (tmp_path / "before" / "env.py").is_file()
    run(app, "db", "--directory", "before", "revision", "--rev-id", "b1")
    assert list((tmp_path / "before" / "versions").glob("b1_*.py"))
    assert not (tmp_path / "migrations").exists()


def test_directory_after_subcommand(app: Flask, tmp_path: Path, url: str) -> None:
    run(app, "db", "init", "-d", "after")
    assert (tmp_path / "after" / "env.py").is_file()
    run(app, "db", "migrate", "--directory", "after", "--rev-id", "a1")
    run(app, "db", "upgrade", "-d", "after")
    assert version_rows(url) == ["a1"]
    result = run(app, "db", "current", "-d", "after")
    assert result.stdout.splitlines() == ["a1 (head)"]
    assert not (tmp_path / "migrations").exists()


def test_subcommand_directory_wins_over_group(app: Flask, tmp_path: Path) -> None:
    run(app, "db", "-d", "group", "init", "-d", "sub")
    assert (tmp_path / "sub" / "env.py").is_file()
    assert not (tmp_path / "group").exists()


def test_directory_from_environment(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASK_DB_DIRECTORY", "fromenv")
    run(app, "db", "init")
    assert (tmp_path / "fromenv" / "env.py").is_file()
    run(app, "db", "revision", "--rev-id", "e1")
    assert list((tmp_path / "fromenv" / "versions").glob("e1_*.py"))

    # A -d typed on the command line wins over the variable.
    run(app, "db", "init", "-d", "typed")
    assert (tmp_path / "typed" / "env.py").is_file()
    run(app, "db", "-d", "typed2", "init")
    assert (tmp_path / "typed2" / "env.py").is_file()
    assert not (tmp_path / "migrations").exists()


def test_directory_with_percent_sign(app: Flask, tmp_path: Path, url: str) -> None:
    run(app, "db", "-d", "50%done", "init")
    run(app, "db", "-d", "50%done", "migrate", "--rev-id", "p1")
    run(app, "db", "-d", "50%done", "upgrade")
    assert version_rows(url) == ["p1"]


# --------------------------------------------------------------------------
# -x/--x-arg

RECORDING_ENV = """\
import json
from alembic import context
from flask_migrate_alt import environment

with open({log!r}, "a", encoding="utf-8") as f:
    f.write(json.dumps(context.get_x_argument()) + "\\n")

if context.is_offline_mode():
    environment.run_offline(context)
else:
    environment.run_online(context)
"""


@pytest.fixture
def x_log(
    make_app: AppFactory, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Flask, Path]:
    """An app whose env.py appends get_x_argument() as JSON to a log file."""
    monkeypatch.setenv("EDITOR", "/bin/true")
    app = make_app(url, models=no_models)
    run(app, "db", "init")
    log = tmp_path / "x.log"
    (tmp_path / "migrations" / "env.py").write_text(RECORDING_ENV.format(log=str(log)))
    run(app, "db", "revision", "--rev-id", "r1")
    run(app, "db", "upgrade")
    return app, log


SUBCOMMANDS_RUNNING_ENV = [
    ["upgrade"],
    ["upgrade", "--sql"],
    ["downgrade", "--sql", "r1:base"],
    ["migrate", "-m", "nothing"],
    ["revision", "--autogenerate"],
    ["current"],
    ["stamp", "r1"],
    ["check"],
    ["history", "-i"],
    ["edit", "current"],
]


@pytest.mark.parametrize("subcommand", SUBCOMMANDS_RUNNING_ENV, ids=" ".join)
@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (["-x", "a=1"], [], ["a=1"]),
        ([], ["-x", "a=1"], ["a=1"]),
        (["-x", "a=1"], ["--x-arg", "b=2"], ["a=1", "b=2"]),
        (["-x", "a=1", "-x", "b=2"], [], ["a=1", "b=2"]),
        ([], [], []),
    ],
    ids=["group", "subcommand", "both", "repeated", "none"],
)
def test_x_arg_reaches_env_once(
    x_log: tuple[Flask, Path],
    subcommand: list[str],
    before: list[str],
    after: list[str],
    expected: list[str],
) -> None:
    app, log = x_log
    log.unlink(missing_ok=True)
    run(app, "db", *before, *subcommand, *after)
    assert [json.loads(line) for line in log.read_text().splitlines()] == [expected]


@pytest.mark.parametrize(
    "subcommand", [["heads"], ["branches"], ["show", "aaa"], ["history"], ["merge"]]
)
def test_x_arg_seen_by_configure_callback(app: Flask, subcommand: list[str]) -> None:
    # These commands never run env.py, but a configure callback may read -x.
    run(app, "db", "init")
    run(app, "db", "revision", "--rev-id", "aaa")
    run(
        app,
        "db",
        "revision",
        "--rev-id",
        "bbb",
        "--head",
        "base",
        "--branch-label",
        "b",
    )
    seen: list[list[str]] = []
    migrate_obj = app.extensions["migrate"].migrate

    @migrate_obj.configure
    def record(config: Config) -> Config:
        seen.append(list(config.cmd_opts.x))
        return config

    run(app, "db", "-x", "g=1", *subcommand, "-x", "s=2")
    assert seen == [["g=1", "s=2"]]


# --------------------------------------------------------------------------
# the Migrate extension and the CLI


def test_custom_command_name(bare: Any, url: str, tmp_path: Path) -> None:
    app, db = bare(url)
    Migrate(app, db, command="database")
    assert "database" in app.cli.commands
    assert "db" not in app.cli.commands
    run(app, "database", "init")
    assert (tmp_path / "migrations" / "env.py").is_file()
    result = app.test_cli_runner().invoke(args=["db", "init"])
    assert result.exit_code == 2
    assert "No such command 'db'" in result.output


@pytest.mark.parametrize("command", ["", None])
def test_no_command_group(bare: Any, url: str, command: str | None) -> None:
    app, db = bare(url)
    Migrate(app, db, command=command)
    assert app.cli.commands == {}
    assert "migrate" in app.extensions
    result = app.test_cli_runner().invoke(args=["db", "init"])
    assert result.exit_code == 2
    assert "No such command 'db'" in result.output


def test_no_command_group_with_init_app(bare: Any, url: str) -> None:
    app, db = bare(url)
    Migrate(command="").init_app(app, db)
    assert app.cli.commands == {}


def test_configure_callbacks_in_order_and_result_used(
    app: Flask, tmp_path: Path
) -> None:
    run(app, "db", "init")
    run(app, "db", "revision", "--rev-id", "main1")
    run(app, "db", "-d", "alt", "init")
    run(app, "db", "-d", "alt", "revision", "--rev-id", "alt1")

    calls: list[str] = []
    replacement: list[Config] = []
    migrate_obj = app.extensions["migrate"].migrate

    @migrate_obj.configure
    def first(config: Config) -> Config:
        calls.append("first")
        new = Config(str(tmp_path / "alt" / "alembic.ini"))
        new.set_main_option("script_location", str(tmp_path / "alt"))
        new.cmd_opts = config.cmd_opts
        replacement.append(new)
        return new

    @migrate_obj.configure
    def second(config: Config) -> Config:
        calls.append("second")
        assert config is replacement[-1]
        return config

    # 'migrations' is asked for, but the Config the callbacks returned wins.
    result = run(app, "db", "heads")
    assert result.stdout.splitlines() == ["alt1 (head)"]
    assert calls == ["first", "second"]


def test_get_config(app: Flask, tmp_path: Path) -> None:
    migrate_obj = app.extensions["migrate"].migrate
    config = migrate_obj.get_config(
        "somewhere", x_arg=["a=1", "b=2"], opts=["autogenerate"]
    )
    assert isinstance(config, Config)
    assert config.get_main_option("script_location") == "somewhere"
    assert config.config_file_name == os.path.join("somewhere", "alembic.ini")
    assert isinstance(config.cmd_opts, argparse.Namespace)
    assert config.cmd_opts.autogenerate is True
    assert config.cmd_opts.x == ["a=1", "b=2"]

    config = migrate_obj.get_config(x_arg="k=v")
    assert config.get_main_option("script_location") == "migrations"
    assert config.cmd_opts.x == ["k=v"]
    assert not getattr(config.cmd_opts, "autogenerate", False)

    config = migrate_obj.get_config(tmp_path / "50%off")
    assert config.get_main_option("script_location") == str(tmp_path / "50%off")
    assert config.cmd_opts.x == []


def test_get_config_runs_callbacks(app: Flask) -> None:
    migrate_obj = app.extensions["migrate"].migrate

    @migrate_obj.configure
    def mark(config: Config) -> Config:
        config.set_main_option("sqlalchemy.echo", "marked")
        return config

    assert migrate_obj.get_config().get_main_option("sqlalchemy.echo") == "marked"


def test_extension_state(make_app: AppFactory, url: str) -> None:
    def include_object(*args: Any) -> bool:
        return True

    app = make_app(url, directory="mig", include_object=include_object)
    state = app.extensions["migrate"]
    db = app.extensions["test_db"]
    assert isinstance(state.migrate, Migrate)
    assert state.db is db
    assert state.directory == "mig"
    assert state.configure_args == {
        "compare_type": True,
        "render_as_batch": True,
        "include_object": include_object,
    }
    assert state.metadata is db.metadata


# --------------------------------------------------------------------------
# errors


def test_unknown_revision(app: Flask) -> None:
    run(app, "db", "init")
    result = fail(app, "db", "upgrade", "bogus")
    assert "bogus" in result.stderr


def test_missing_repository(app: Flask) -> None:
    result = fail(app, "db", "upgrade")
    assert "'flask db init'" in result.stderr


def test_init_twice(app: Flask, tmp_path: Path) -> None:
    run(app, "db", "init")
    before = (tmp_path / "migrations" / "env.py").read_text()
    result = fail(app, "db", "init")
    assert "not empty" in result.stderr
    assert (tmp_path / "migrations" / "env.py").read_text() == before


def test_unknown_template(app: Flask, tmp_path: Path) -> None:
    result = fail(app, "db", "init", "-t", "nope")
    assert "flask-multidb" in result.stderr
    assert not (tmp_path / "migrations").exists()


def test_check_detects_changes(app: Flask) -> None:
    run(app, "db", "init")
    result = fail(app, "db", "check")
    assert "New upgrade operations detected" in result.stderr


def test_debug_shows_traceback(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    run(app, "db", "init")
    monkeypatch.setenv("FLASK_DEBUG", "1")
    result = app.test_cli_runner().invoke(args=["db", "upgrade", "bogus"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip("\n").splitlines()[-1].startswith("Error: ")
