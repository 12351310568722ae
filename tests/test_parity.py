"""What Flask-Alembic users rely on, in ``flask db`` and the Python API.

Flask-SQLAlchemy-Lite and plain SQLAlchemy apps, ``app.config["ALEMBIC"]``
and ``app.config["ALEMBIC_CONTEXT"]``, independent named branches,
``current --check-heads``, relative steps as integers, and custom revision
ids.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import Script, ScriptDirectory
from click.testing import Result
from flask import Flask
from sqlalchemy.orm import registry

import flask_migrate_alt as fma
from flask_migrate_alt import Config, Migrate
from flask_migrate_alt.config import SEPARATOR_OPTION

from .conftest import (
    AppFactory,
    Server,
    add_table_ops,
    default_models,
    stack_limit,
    table_names,
    version_rows,
)

# --------------------------------------------------------------------------
# helpers


def invoke(app: Flask, *args: str) -> Result:
    result = app.test_cli_runner().invoke(args=["db", *args])
    assert "Traceback" not in result.output
    return result


def run(app: Flask, *args: str) -> Result:
    """Run ``flask db <args>`` and assert it succeeded."""
    result = invoke(app, *args)
    assert result.exit_code == 0, result.output
    return result


def fail(app: Flask, *args: str) -> str:
    """Run ``flask db <args>``; assert exit status 1 and one ``Error:`` line.

    Returns that line.
    """
    result = invoke(app, *args)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert result.stderr.rstrip("\n").splitlines()[-1] == errors[0]
    return errors[0]


def ids(scripts: list[Script]) -> list[str]:
    return [s.revision for s in scripts]


def versions(tmp_path: Path) -> Path:
    return tmp_path / "migrations" / "versions"


def table_revision(rev_id: str, table: str, **kwargs: Any) -> Script:
    script = fma.revision(message=f"create {table}", rev_id=rev_id, **kwargs)
    assert isinstance(script, Script)
    add_table_ops(script.path, table)
    return script


def declarative_models() -> tuple[sa.MetaData, sa.MetaData]:
    """Two declarative bases: ``user`` on the first, ``event`` on the second.

    Made per test, so that no test sees another one's tables.
    """

    models, other_models = registry(), registry()

    @models.mapped
    class User:
        __tablename__ = "user"
        id = sa.Column(sa.Integer, primary_key=True)
        name = sa.Column(sa.String(64), nullable=False)

    @other_models.mapped
    class Event:
        __tablename__ = "event"
        id = sa.Column(sa.Integer, primary_key=True)

    return models.metadata, other_models.metadata


# --------------------------------------------------------------------------
# Flask-SQLAlchemy-Lite


@pytest.fixture
def lite_app(tmp_path: Path) -> Iterator[Callable[..., Flask]]:
    """Build an app with Flask-SQLAlchemy-Lite and Migrate.

    ``lite_app({"default": url, ...}, **migrate_kwargs)``.
    """
    from flask_sqlalchemy_lite import SQLAlchemy

    made: list[tuple[Flask, Any]] = []

    def build(engines: dict[str, str], **migrate_kwargs: Any) -> Flask:
        app = Flask("liteapp", root_path=str(tmp_path))
        app.config["SQLALCHEMY_ENGINES"] = engines
        db = SQLAlchemy(app)
        Migrate(app, db, **migrate_kwargs)
        made.append((app, db))
        return app

    yield build
    for app, db in made:
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()


@stack_limit("flask-sqlalchemy-lite")
def test_flask_sqlalchemy_lite_single_database(
    server: Server, lite_app: Callable[..., Flask], tmp_path: Path
) -> None:
    url, other_url = server.new_database(), server.new_database()
    user_md, _ = declarative_models()
    app = lite_app({"default": url, "other": other_url}, metadata=user_md)

    run(app, "init")
    run(app, "migrate", "-m", "users", "--rev-id", "l1")
    assert "op.create_table('user'" in (versions(tmp_path) / "l1_users.py").read_text()
    run(app, "upgrade")
    assert table_names(url) == {"alembic_version", "user"}
    # The single-database template uses the "default" engine only.
    assert table_names(other_url) == set()
    assert run(app, "current").stdout.splitlines() == ["l1 (head)"]

    with app.app_context():
        assert ids(fma.current()) == ["l1"]  # type: ignore[arg-type]
        assert fma.needs_upgrade() is False
        assert fma.needs_revision() is False
        assert fma.downgrade() == ["l1"]
    assert version_rows(url) == []


@stack_limit("flask-sqlalchemy-lite")
@pytest.mark.parametrize("default_key", [None, "default"])
def test_flask_sqlalchemy_lite_multiple_databases(
    server: Server,
    lite_app: Callable[..., Flask],
    tmp_path: Path,
    default_key: str | None,
) -> None:
    url, other_url = server.new_database(), server.new_database()
    user_md, event_md = declarative_models()
    app = lite_app(
        {"default": url, "other": other_url},
        metadata={default_key: user_md, "other": event_md},
    )

    run(app, "init", "--multidb")
    with app.app_context():
        script = fma.migrate(message="both", rev_id="lm1")
        assert isinstance(script, Script)
        body = Path(script.path).read_text()
        assert "def upgrade_other()" in body
        upgrade_other = body.split("def upgrade_other()")[1].split("def ")[0]
        assert "op.create_table('event'" in upgrade_other
        assert "op.create_table('user'" not in upgrade_other
        assert fma.upgrade() == ["lm1"]
        found = fma.current()
        assert isinstance(found, dict)
        assert {key: ids(s) for key, s in found.items()} == {
            None: ["lm1"],
            "other": ["lm1"],
        }
        assert fma.compare_metadata() == {None: [], "other": []}
    assert table_names(url) == {"alembic_version", "user"}
    assert table_names(other_url) == {"alembic_version", "event"}
    run(app, "check")
    run(app, "downgrade")
    assert version_rows(url) == version_rows(other_url) == []


# --------------------------------------------------------------------------
# plain SQLAlchemy


@pytest.fixture
def engines() -> Iterator[Callable[[str], sa.Engine]]:
    """Create engines that are disposed after the test."""
    made: list[sa.Engine] = []

    def create(url: str) -> sa.Engine:
        engine = sa.create_engine(url)
        made.append(engine)
        return engine

    yield create
    for engine in made:
        engine.dispose()


def test_plain_sqlalchemy_single_database(
    server: Server, engines: Callable[[str], sa.Engine], tmp_path: Path
) -> None:
    url = server.new_database()
    user_md, _ = declarative_models()
    app = Flask("plainapp", root_path=str(tmp_path))
    Migrate(app, metadata=user_md, engines=engines(url))

    run(app, "init")
    run(app, "migrate", "-m", "users", "--rev-id", "p1")
    run(app, "upgrade")
    assert table_names(url) == {"alembic_version", "user"}
    with app.app_context():
        assert ids(fma.current()) == ["p1"]  # type: ignore[arg-type]
        assert fma.needs_revision() is False
        with fma.migration_context() as context:
            assert context.get_current_revision() == "p1"
    run(app, "check")


def test_plain_sqlalchemy_multiple_databases(
    server: Server, engines: Callable[[str], sa.Engine], tmp_path: Path
) -> None:
    url, users_url = server.new_database(), server.new_database()
    user_md, event_md = declarative_models()
    app = Flask("plainapp", root_path=str(tmp_path))
    Migrate(
        app,
        metadata={None: event_md, "users": user_md},
        engines={None: engines(url), "users": engines(users_url)},
    )

    run(app, "init", "--multidb")
    run(app, "migrate", "-m", "both", "--rev-id", "pm1")
    run(app, "upgrade")
    assert table_names(url) == {"alembic_version", "event"}
    assert table_names(users_url) == {"alembic_version", "user"}
    with app.app_context():
        found = fma.current()
        assert isinstance(found, dict)
        assert {key: ids(s) for key, s in found.items()} == {
            None: ["pm1"],
            "users": ["pm1"],
        }
        assert fma.needs_revision() is False
    run(app, "check")


@stack_limit("flask-sqlalchemy-lite")
def test_missing_metadata_with_flask_sqlalchemy_lite(
    lite_app: Callable[..., Flask],
    sqlite_server: Server,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = lite_app({"default": sqlite_server.new_database()})
    run(app, "init")
    line = fail(app, "migrate")
    assert "pass metadata=..." in line
    assert "metadata=Model.metadata" in line
    with app.app_context():
        capsys.readouterr()
        with pytest.raises(fma.CommandFailed) as info:
            fma.migrate()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert "pass metadata=..." in capsys.readouterr().err
        # The quiet helpers raise the ordinary exception, and print nothing.
        with pytest.raises(RuntimeError, match=r"pass metadata=\.\.\."):
            fma.needs_revision()
    assert capsys.readouterr() == ("", "")


def test_missing_engines_without_flask_sqlalchemy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user_md, _ = declarative_models()
    app = Flask("plainapp", root_path=str(tmp_path))
    Migrate(app, metadata=user_md)
    run(app, "init")
    run(app, "revision", "--rev-id", "r1")  # needs no database
    for command in (["upgrade"], ["migrate"], ["current"]):
        line = fail(app, *command)
        assert "engines=..." in line
    with app.app_context():
        with pytest.raises(RuntimeError, match=r"engines=\.\.\."):
            fma.needs_upgrade()
    assert capsys.readouterr() == ("", "")


def test_flask_sqlalchemy_binds_need_no_extra_arguments(
    make_app: AppFactory, sqlite_server: Server, tmp_path: Path
) -> None:
    url, users_url = sqlite_server.new_database(), sqlite_server.new_database()
    app = make_app(url, binds={"users": users_url})
    run(app, "init", "--multidb")
    run(app, "migrate", "--rev-id", "f1")
    run(app, "upgrade")
    assert table_names(url) == {"alembic_version", "user"}
    assert table_names(users_url) == {"alembic_version", "session_users"}
    with app.app_context():
        assert fma.compare_metadata() == {None: [], "users": []}


# --------------------------------------------------------------------------
# app.config["ALEMBIC"]


def test_alembic_config_file_template_and_slug_length(
    app: Flask, tmp_path: Path
) -> None:
    app.config["ALEMBIC"] = {
        "file_template": "rev-%(rev)s-%(slug)s",
        "truncate_slug_length": 10,
    }
    run(app, "init")
    with app.app_context():
        script = fma.revision(message="a very long message here", rev_id="r1")
        assert isinstance(script, Script)
        assert Path(script.path) == versions(tmp_path) / "rev-r1-a_very_.py"
    run(app, "revision", "-m", "another long message", "--rev-id", "r2")
    assert (versions(tmp_path) / "rev-r2-another_.py").is_file()
    with app.app_context():
        assert ids(fma.heads()) == ["r2"]


def test_alembic_config_version_locations(app: Flask, tmp_path: Path, url: str) -> None:
    extra = tmp_path / "extra_versions"
    extra.mkdir()
    app.config["ALEMBIC"] = {"version_locations": [str(versions(tmp_path)), extra]}
    run(app, "init")
    with app.app_context():
        # Alembic asks where the first revision goes when there are several
        # locations; later ones go next to their parent.
        table_revision("r1", "one", version_path=str(versions(tmp_path)))
        script = table_revision("x1", "two", version_path=str(extra))
        assert Path(script.path).parent == extra
        assert script.down_revision == "r1"
        assert ids(fma.heads()) == ["x1"]
        assert ids(fma.history()) == ["x1", "r1"]
    result = run(app, "history")
    assert result.stdout.splitlines() == [
        "r1 -> x1 (head), create two",
        "<base> -> r1, create one",
    ]
    run(app, "upgrade")
    assert version_rows(url) == ["x1"]
    assert {"one", "two"} <= table_names(url)


def test_alembic_config_version_locations_add_to_the_repository(
    app: Flask, tmp_path: Path
) -> None:
    """As in Flask-Alembic: extra folders, given as paths or (name, path) pairs."""
    extra = tmp_path / "extra_versions"
    extra.mkdir()
    app.config["ALEMBIC"] = {"version_locations": [("extra", str(extra))]}
    run(app, "init")
    with app.app_context():
        table_revision("r1", "one", version_path=str(versions(tmp_path)))
        table_revision("x1", "two", version_path=str(extra))
        locations = {
            Path(location).resolve()
            for location in fma.script_directory().version_locations
        }
        assert locations == {versions(tmp_path).resolve(), extra.resolve()}
        assert ids(fma.history()) == ["x1", "r1"]


def test_alembic_config_accepts_doubled_percent_signs(
    app: Flask, tmp_path: Path
) -> None:
    """Flask-Alembic (like alembic.ini) needs "%%(rev)s"; "%(rev)s" works too."""
    app.config["ALEMBIC"] = {"file_template": "%%(rev)s-doubled"}
    run(app, "init")
    run(app, "revision", "-m", "x", "--rev-id", "d1")
    assert (versions(tmp_path) / "d1-doubled.py").is_file()


def test_branch_needs_its_folder_to_be_a_version_location(
    app: Flask, tmp_path: Path
) -> None:
    extra = tmp_path / "only_here"
    extra.mkdir()
    run(app, "init")
    ini = tmp_path / "migrations" / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            "[alembic]\n",
            f"[alembic]\npath_separator = os\nversion_locations = {extra}\n",
        )
    )
    result = app.test_cli_runner().invoke(
        args=["db", "revision", "--branch", "billing", "-m", "b"]
    )
    assert result.exit_code == 1
    assert "is not a version location" in result.stderr
    assert "add it there" in result.stderr
    assert not (versions(tmp_path) / "billing").exists()
    assert list(extra.iterdir()) == []


def test_migration_context_unknown_bind(app: Flask) -> None:
    run(app, "init")
    with (
        app.app_context(),
        pytest.raises(LookupError, match="no database with bind key 'nope'"),
    ):
        with fma.migration_context("nope"):
            pass


HOOK_MARKER = "# post-write-hook-marker"


def test_alembic_config_post_write_hooks(app: Flask, tmp_path: Path) -> None:
    code = (
        f"import sys; f = open(sys.argv[1], 'a'); f.write({HOOK_MARKER!r}); f.close()"
    )
    app.config["ALEMBIC"] = {
        "post_write_hooks": {
            "hooks": "marker",
            "marker.type": "exec",
            "marker.executable": sys.executable,
            "marker.options": f'-c "{code}" REVISION_SCRIPT_FILENAME',
        }
    }
    run(app, "init")
    with app.app_context():
        script = fma.revision(message="hooked", rev_id="h1")
        assert isinstance(script, Script)
        assert Path(script.path).read_text().endswith(HOOK_MARKER)
    result = run(app, "revision", "-m", "cli", "--rev-id", "h2")
    assert "Running post write hook 'marker'" in result.output
    assert (versions(tmp_path) / "h2_cli.py").read_text().endswith(HOOK_MARKER)


def test_alembic_config_script_location(
    bare: Any, sqlite_server: Server, tmp_path: Path
) -> None:
    app, db = bare(sqlite_server.new_database(), with_user=True)
    app.config["ALEMBIC"] = {"script_location": "from_config"}
    Migrate(app, db, directory="from_migrate")
    run(app, "init")
    assert (tmp_path / "from_config" / "env.py").is_file()
    with app.app_context():
        script = fma.revision(rev_id="s1")
        assert isinstance(script, Script)
        assert Path(script.path).parent == tmp_path / "from_config" / "versions"
    # -d still wins.
    run(app, "-d", "typed", "init")
    assert (tmp_path / "typed" / "env.py").is_file()
    assert not (tmp_path / "from_migrate").exists()
    assert not (tmp_path / "migrations").exists()


def test_alembic_config_precedence(app: Flask, tmp_path: Path) -> None:
    run(app, "init")
    ini = tmp_path / "migrations" / "alembic.ini"
    ini.write_text(
        ini.read_text().replace(
            "[alembic]\n", "[alembic]\nfile_template = ini-%%(rev)s\n", 1
        )
    )
    with app.app_context():
        script = fma.revision(rev_id="a1")
        assert isinstance(script, Script)
        assert Path(script.path).name == "ini-a1.py"

        # app.config["ALEMBIC"] wins over alembic.ini ...
        app.config["ALEMBIC"] = {"file_template": "cfg-%(rev)s"}
        script = fma.revision(rev_id="a2")
        assert isinstance(script, Script)
        assert Path(script.path).name == "cfg-a2.py"

        # ... and a configure callback wins over app.config["ALEMBIC"].
        migrate = app.extensions["migrate"].migrate

        @migrate.configure
        def callback(config: Config) -> Config:
            assert config.get_main_option("file_template") == "cfg-%(rev)s"
            config.set_main_option("file_template", "callback-%%(rev)s")
            return config

        script = fma.revision(rev_id="a3")
        assert isinstance(script, Script)
        assert Path(script.path).name == "callback-a3.py"
    run(app, "revision", "--rev-id", "a4")
    assert (versions(tmp_path) / "callback-a4.py").is_file()


# --------------------------------------------------------------------------
# app.config["ALEMBIC_CONTEXT"]


def test_alembic_context_reaches_configure_and_wins_over_migrate(
    server: Server, make_app: AppFactory
) -> None:
    url = server.new_database()
    app = make_app(url, version_table="kw_versions")
    app.config["ALEMBIC_CONTEXT"] = {"version_table": "ctx_versions"}
    state = app.extensions["migrate"]
    before = dict(state.configure_args)

    run(app, "init")
    run(app, "migrate", "--rev-id", "c1")
    run(app, "upgrade")
    assert version_rows(url, "ctx_versions") == ["c1"]
    assert not {"kw_versions", "alembic_version"} & table_names(url)
    assert state.configure_args == before  # restored after the command
    assert run(app, "current").stdout.splitlines() == ["c1 (head)"]

    with app.app_context():
        assert fma.needs_upgrade() is False
        assert ids(fma.current()) == ["c1"]  # type: ignore[arg-type]
        assert state.configure_args == before

        # Without ALEMBIC_CONTEXT the Migrate keyword argument applies again.
        del app.config["ALEMBIC_CONTEXT"]
        assert fma.current() == []
        assert fma.needs_upgrade() is True
        assert fma.stamp() == ["c1"]
    assert version_rows(url, "kw_versions") == ["c1"]


def test_alembic_context_include_object(
    make_app: AppFactory, url: str, tmp_path: Path
) -> None:
    def skip_user(obj: Any, name: str | None, type_: str, *args: Any) -> bool:
        return not (type_ == "table" and name == "user")

    app = make_app(url)
    app.config["ALEMBIC_CONTEXT"] = {"include_object": skip_user}
    run(app, "init")
    with app.app_context():
        assert fma.compare_metadata() == []
        assert fma.needs_revision() is False
        assert fma.migrate(message="nothing") is None
        assert "include_object" not in app.extensions["migrate"].configure_args
    run(app, "check")
    del app.config["ALEMBIC_CONTEXT"]
    fail(app, "check")


# --------------------------------------------------------------------------
# independent named branches


def invoice_models(db: Any, bind_keys: list[str]) -> None:
    """The default models plus an ``invoice`` table."""
    default_models(db, bind_keys)

    class Invoice(db.Model):  # type: ignore[name-defined]
        __tablename__ = "invoice"
        id = db.Column(db.Integer, primary_key=True)


def test_named_branch(server: Server, make_app: AppFactory, tmp_path: Path) -> None:
    url = server.new_database()
    app = make_app(url)
    billing = versions(tmp_path) / "billing"
    with app.app_context():
        fma.init()
        main = fma.migrate(message="users", rev_id="main1")
        assert isinstance(main, Script)

        base = fma.migrate(branch="billing", rev_id="b1")
        assert isinstance(base, Script)
        # (Script.path is relative to the working directory here.)
        assert Path(base.path).resolve() == billing / "b1_start_billing_branch.py"
        assert base.branch_labels == {"billing"}
        assert base.down_revision is None
        # An empty base, even with autogenerate: the models' tables belong
        # to the main branch.
        assert "op." not in Path(base.path).read_text()

        second = fma.revision(branch="billing", message="second", rev_id="b2")
        assert isinstance(second, Script)
        assert Path(second.path).resolve().parent == billing
        assert second.down_revision == "b1"
        assert sorted(ids(fma.heads())) == ["b2", "main1"]

        assert fma.upgrade(revision="billing@head") == ["b1", "b2"]
        assert version_rows(url) == ["b2"]
        assert "user" not in table_names(url)
        assert fma.upgrade(revision="heads") == ["main1"]
        assert version_rows(url) == ["b2", "main1"]

    changed = make_app(url, models=invoice_models)
    with changed.app_context():
        auto = fma.migrate(branch="billing", message="invoices", rev_id="b3")
        assert isinstance(auto, Script)
        assert Path(auto.path).resolve().parent == billing
        assert auto.down_revision == "b2"
        body = Path(auto.path).read_text()
        assert "op.create_table('invoice'" in body
        assert "'user'" not in body
        assert fma.upgrade(revision="billing@head") == ["b3"]
        assert "invoice" in table_names(url)

        merged = fma.merge(message="join", rev_id="m1")
        assert isinstance(merged, Script)
        assert set(merged.down_revision) == {"main1", "b3"}  # type: ignore[arg-type]
        assert ids(fma.heads()) == ["m1"]
        assert set(ids(fma.history())) == {"main1", "b1", "b2", "b3", "m1"}
        assert fma.upgrade() == ["m1"]
        assert version_rows(url) == ["m1"]
        assert fma.needs_revision() is False


def test_named_branch_from_the_command_line(app: Flask, tmp_path: Path) -> None:
    billing = versions(tmp_path) / "billing"
    run(app, "init")
    run(app, "revision", "--branch", "billing", "-m", "start", "--rev-id", "c1")
    first = (billing / "c1_start.py").read_text()
    assert "down_revision = None" in first
    assert "branch_labels = ('billing',)" in first

    run(app, "revision", "--branch", "billing", "-m", "more", "--rev-id", "c2")
    assert "down_revision = 'c1'" in (billing / "c2_more.py").read_text()

    run(app, "upgrade", "billing@head")
    result = run(app, "migrate", "--branch", "billing", "-m", "auto", "--rev-id", "c3")
    auto = (billing / "c3_auto.py").read_text()
    assert "down_revision = 'c2'" in auto
    assert "op.create_table('user'" in auto
    assert "c3_auto.py" in result.output

    assert run(app, "heads").stdout.splitlines() == ["c3 (billing) (head)"]
    assert run(app, "history").stdout.splitlines() == [
        "c2 -> c3 (billing) (head), auto",
        "c1 -> c2 (billing), more",
        "<base> -> c1 (billing), start",
    ]
    assert not list(versions(tmp_path).glob("*.py"))


def plain_alembic_heads(tmp_path: Path) -> list[str]:
    """The heads plain Alembic finds, with every versions folder as a location."""
    folders = [versions(tmp_path)] + sorted(
        p
        for p in versions(tmp_path).iterdir()
        if p.is_dir() and p.name != "__pycache__"
    )
    config = AlembicConfig()
    config.set_main_option("script_location", str(tmp_path / "migrations"))
    config.set_main_option(SEPARATOR_OPTION, "os")
    config.set_main_option(
        "version_locations", os.pathsep.join(str(p) for p in folders)
    )
    return sorted(ScriptDirectory.from_config(config).get_heads())


def test_named_branch_files_changed_between_commands(
    app: Flask, tmp_path: Path
) -> None:
    billing = versions(tmp_path) / "billing"
    with app.app_context():
        fma.init()
        fma.revision(message="main", rev_id="a1")
        fma.revision(branch="billing", rev_id="b1")
        fma.revision(branch="billing", message="two", rev_id="b2")
        assert sorted(ids(fma.heads())) == plain_alembic_heads(tmp_path)
        assert sorted(ids(fma.heads())) == ["a1", "b2"]

        (billing / "b2_two.py").unlink()
        assert sorted(ids(fma.heads())) == plain_alembic_heads(tmp_path)
        assert sorted(ids(fma.heads())) == ["a1", "b1"]
        third = fma.revision(branch="billing", message="three", rev_id="b3")
        assert isinstance(third, Script)
        assert third.down_revision == "b1"

        (billing / "b3_three.py").rename(billing / "b3_renamed.py")
        (shown,) = fma.show(revision="b3")
        assert Path(shown.path).resolve() == billing / "b3_renamed.py"
        assert sorted(ids(fma.heads())) == plain_alembic_heads(tmp_path)

        # Without its files the branch is gone, and starts anew.
        for path in billing.glob("*.py"):
            path.unlink()
        assert ids(fma.heads()) == plain_alembic_heads(tmp_path) == ["a1"]
        restart = fma.revision(branch="billing", rev_id="n1")
        assert isinstance(restart, Script)
        assert restart.down_revision is None
        assert restart.branch_labels == {"billing"}
    assert sorted(run(app, "heads").stdout.splitlines()) == [
        "a1 (head)",
        "n1 (billing) (head)",
    ]


# --------------------------------------------------------------------------
# current --check-heads


def test_current_check_heads(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    app = make_app(url)
    # An empty history and an empty database are at all (no) heads.
    run(app, "init")
    run(app, "current", "--check-heads")
    run(app, "revision", "--rev-id", "r1")
    run(app, "revision", "--rev-id", "r2")

    line = fail(app, "current", "--check-heads")
    assert "not at all head revisions" in line
    assert "'flask db upgrade'" in line
    with app.app_context():
        capsys.readouterr()
        with pytest.raises(fma.CommandFailed) as info:
            fma.current(check_heads=True)
        assert "flask db upgrade" in info.value.message
        assert fma.current() == []

        fma.upgrade(revision="r1")
        with pytest.raises(fma.CommandFailed):
            fma.current(check_heads=True)
        # What the database is at is still shown.
        assert "r1" in capsys.readouterr().out.splitlines()

        fma.upgrade()
        assert ids(fma.current(check_heads=True)) == ["r2"]  # type: ignore[arg-type]
    result = run(app, "current", "--check-heads")
    assert result.stdout.splitlines() == ["r2 (head)"]

    # With two heads, being at one of them is not enough.
    run(app, "revision", "--rev-id", "s1", "--head", "base", "--branch-label", "side")
    fail(app, "current", "--check-heads")
    run(app, "upgrade", "heads")
    run(app, "current", "--check-heads")


def test_current_check_heads_names_the_database_behind(
    make_app: AppFactory, sqlite_server: Server
) -> None:
    urls = {None: sqlite_server.new_database(), "users": sqlite_server.new_database()}
    app = make_app(urls[None], binds={"users": urls["users"]})
    run(app, "init", "--multidb")
    run(app, "migrate", "--rev-id", "m1")
    run(app, "upgrade")
    run(app, "current", "--check-heads")
    engine = sa.create_engine(urls["users"])
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alembic_version"))
    engine.dispose()
    line = fail(app, "current", "--check-heads")
    assert "database 'users'" in line
    assert "'flask db upgrade'" in line


# --------------------------------------------------------------------------
# integers as relative steps


def test_integer_revisions_are_relative_steps(
    server: Server, make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.new_database()
    app = make_app(url)
    with app.app_context():
        fma.init()
        for rev_id, table in [("r1", "one"), ("r2", "two"), ("r3", "three")]:
            table_revision(rev_id, table)

        assert fma.upgrade(revision=0) == []
        assert table_names(url) == set()  # not even the version table

        assert fma.upgrade(revision=1) == ["r1"]
        assert fma.upgrade(revision=2) == ["r2", "r3"]
        assert version_rows(url) == ["r3"]
        assert fma.downgrade(revision=-2) == ["r3", "r2"]
        assert version_rows(url) == ["r1"]
        assert fma.downgrade(revision=0) == []
        assert version_rows(url) == ["r1"]
        assert fma.upgrade(revision=2) == ["r2", "r3"]
        # A positive number of steps for downgrade goes down too.
        assert fma.downgrade(revision=2) == ["r3", "r2"]
        assert table_names(url) == {"alembic_version", "one"}

        capsys.readouterr()
        with pytest.raises(fma.CommandFailed):
            fma.upgrade(revision=5)
        assert "Error:" in capsys.readouterr().err
        assert version_rows(url) == ["r1"]

    run(app, "upgrade", "+1")
    assert version_rows(url) == ["r2"]


def test_numeric_revision_ids_are_never_step_counts(
    server: Server, make_app: AppFactory
) -> None:
    url = server.new_database()
    app = make_app(url)
    with app.app_context():
        fma.init()
        table_revision("1234", "one")
        table_revision("5678", "two")

        assert fma.upgrade(revision="1234") == ["1234"]
        assert fma.upgrade(revision="5678") == ["5678"]
        assert fma.downgrade(revision="1234") == ["5678"]
        assert version_rows(url) == ["1234"]
    run(app, "upgrade", "5678")
    assert version_rows(url) == ["5678"]
    run(app, "downgrade", "1234")
    assert version_rows(url) == ["1234"]


def test_small_numeric_ids_versus_steps(app: Flask, url: str) -> None:
    with app.app_context():
        fma.init()
        for rev_id, table in [("1", "one"), ("2", "two"), ("3", "three")]:
            table_revision(rev_id, table)
        fma.upgrade()
        # "1" is the revision: two revisions are undone to get there ...
        assert fma.downgrade(revision="1") == ["3", "2"]
        fma.upgrade()
        # ... 1 is one step.
        assert fma.downgrade(revision=1) == ["3"]
        assert version_rows(url) == ["2"]
        assert fma.upgrade(revision="3") == ["3"]
    run(app, "downgrade", "2")
    assert version_rows(url) == ["2"]


# --------------------------------------------------------------------------
# custom revision ids


def test_rev_id_factory(make_app: AppFactory, url: str, tmp_path: Path) -> None:
    counter = itertools.count(1)

    def timestamp() -> str:
        return f"20240101{next(counter):06d}"

    app = make_app(url, rev_id=timestamp)
    with app.app_context():
        fma.init()
        first = fma.revision(message="first")
        assert isinstance(first, Script)
        assert first.revision == "20240101000001"
        fma.upgrade()
        auto = fma.migrate(message="auto")
        assert isinstance(auto, Script)
        assert auto.revision == "20240101000002"
        explicit = fma.revision(message="mine", rev_id="mine")
        assert isinstance(explicit, Script)
        assert explicit.revision == "mine"
        side = fma.revision(message="side", head="base", branch_label="side")
        assert isinstance(side, Script)
        assert side.revision == "20240101000003"
        merged = fma.merge(message="join")
        assert isinstance(merged, Script)
        assert merged.revision == "20240101000004"

    run(app, "revision", "-m", "cli")
    assert (versions(tmp_path) / "20240101000005_cli.py").is_file()
    run(app, "revision", "-m", "explicit", "--rev-id", "given")
    assert (versions(tmp_path) / "given_explicit.py").is_file()
    run(app, "revision", "-m", "other", "--head", "base", "--branch-label", "other")
    assert (versions(tmp_path) / "20240101000006_other.py").is_file()
    run(app, "merge", "-m", "explicit merge", "--rev-id", "mmm")
    assert (versions(tmp_path) / "mmm_explicit_merge.py").is_file()
    run(app, "revision", "-m", "side2", "--head", "base", "--branch-label", "side2")
    run(app, "merge", "-m", "join again")
    assert (versions(tmp_path) / "20240101000008_join_again.py").is_file()

    with app.app_context():
        # The base of a new named branch too.
        branch = fma.revision(branch="billing")
        assert isinstance(branch, Script)
        assert branch.revision == "20240101000009"


def test_revision_depends_on(app: Flask) -> None:
    run(app, "init")
    with app.app_context():
        fma.revision(message="one", rev_id="d1")
        other = fma.revision(
            message="other", rev_id="o1", head="base", branch_label="x"
        )
        assert isinstance(other, Script)
        script = fma.revision(message="two", rev_id="d2", head="d1", depends_on="o1")
        assert isinstance(script, Script)
        assert script.down_revision == "d1"
        assert script.dependencies == "o1"
        # Upgrading to d2 must bring its dependency along.
        assert set(fma.upgrade(revision="d2")) == {"d1", "o1", "d2"}
