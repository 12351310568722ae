"""Bad input: one readable line, exit status 1, and nothing changed.

Every case runs twice, through the Python function (which raises
:class:`~flask_migrate_alt.CommandFailed`) and through ``flask db``; both
times the database and the migration files must be exactly as before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import make_url

import flask_migrate_alt as fma

from .conftest import (
    BACKENDS,
    POSTGRESQL_DRIVER,
    AppFactory,
    Server,
    _server_url,
    run_flask,
    table_names,
    version_rows,
)


def snapshot(path: Path) -> dict[str, str] | None:
    """Digest of every file below ``path`` (or of ``path`` itself), ``None`` if absent.

    Folders are listed too (an empty folder left behind is a change).
    Compared before and after a command to prove it touched nothing.
    """
    if not path.exists():
        return None
    items = [path] if path.is_file() else sorted(path.rglob("*"))
    return {
        str(item.relative_to(path)): (
            hashlib.sha256(item.read_bytes()).hexdigest() if item.is_file() else "dir"
        )
        for item in items
        if "__pycache__" not in item.parts
    }


def database_state(url: str | None) -> tuple[set[str], list[str]] | None:
    """The tables and the version rows of the database at ``url``."""
    if url is None:
        return None
    return table_names(url), version_rows(url)


@dataclass
class World:
    """What a case sets up: the app to run the command on, and what to watch."""

    tmp_path: Path
    make_app: AppFactory
    bare: Any
    servers: list[Server] = field(default_factory=list)
    #: The server ``database()`` makes databases on by default.
    backend: str = "sqlite"
    app: Flask | None = None
    #: The bind keys and URLs the app was made with.
    binds: dict[str, str] = field(default_factory=dict)
    #: The database that must not change (``None``: there is none to reach).
    url: str | None = None
    #: The folder (or file) that must not change.
    watched: Path | None = None
    #: Values the expected messages are formatted with.
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def migrations(self) -> Path:
        return self.tmp_path / "migrations"

    def database(self, backend: str | None = None) -> str:
        backend = backend or self.backend
        if backend == "sqlite":
            server = Server("sqlite", tmp_path=self.tmp_path)
        else:
            # Skips (or fails, in CI) when the server is not configured.
            server = Server(backend, url=_server_url(backend))
            self.servers.append(server)
        return server.new_database()

    def state(self) -> tuple[Any, ...]:
        return (
            database_state(self.url),
            [database_state(url) for url in self.binds.values()],
            snapshot(self.watched or self.migrations),
        )


# --------------------------------------------------------------------------
# setups


def _at_head(w: World, *revisions: str) -> None:
    """A database at the head of a history: ``rev1`` creates ``user``."""
    w.url = w.database()
    w.app = w.make_app(w.url)
    with w.app.app_context():
        fma.init()
        fma.migrate(message="users", rev_id="rev1")
        for rev in revisions:
            fma.revision(message=rev, rev_id=rev)
        fma.upgrade()


def _initialized(w: World) -> None:
    w.url = w.database()
    w.app = w.make_app(w.url)
    with w.app.app_context():
        fma.init()


def _not_initialized(w: World) -> None:
    w.url = w.database()
    w.app = w.make_app(w.url)


def _ambiguous(w: World) -> None:
    _at_head(w, "abcd1111", "abcd2222")


def _two_heads(w: World) -> None:
    _at_head(w)
    with w.app.app_context():  # type: ignore[union-attr]
        fma.revision(message="a", rev_id="reva")
        fma.revision(message="b", rev_id="revb", head="rev1", splice=True)


def _append_to_rev1(w: World, text: str) -> None:
    _at_head(w)
    path = next((w.migrations / "versions").glob("rev1_*.py"))
    body = path.read_text()
    path.write_text(body + text)
    w.facts["path"] = str(path)
    # The appended text starts on a new line right after the file's last one.
    w.facts["line"] = str(body.count("\n") + 2)


def _syntax_error(w: World) -> None:
    _append_to_rev1(w, "\ndef broken(:\n")


def _import_error(w: World) -> None:
    _append_to_rev1(w, "\nimport module_that_does_not_exist\n")


def _dangling_down_revision(w: World) -> None:
    _at_head(w)
    path = w.migrations / "versions" / "orphan_lost.py"
    path.write_text(
        "revision = 'orphan'\ndown_revision = 'nowhere'\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )
    w.facts["path"] = str(path)


def _template_folder_without_env(w: World) -> None:
    _not_initialized(w)
    (w.tmp_path / "notatemplate").mkdir()
    (w.tmp_path / "notatemplate" / "README").write_text("not a template\n")


def _unknown_template(w: World) -> None:
    from flask_migrate_alt.paths import available_templates

    _not_initialized(w)
    w.facts["templates"] = ", ".join(available_templates())


def _unreachable(scheme: str) -> Callable[[World], None]:
    def setup(w: World) -> None:
        # Nothing listens on port 1: the connection is refused at once.
        w.app = w.make_app(f"{scheme}://someone:Secr3tPassw0rd@127.0.0.1:1/nothing")
        with w.app.app_context():
            fma.init()
            fma.revision(message="users", rev_id="rev1")

    return setup


def _wrong_password(w: World) -> None:
    w.url = w.database("mysql")
    wrong = make_url(w.url).set(password="wrongpw")
    w.app = w.make_app(wrong.render_as_string(hide_password=False))
    with w.app.app_context():
        fma.init()
        fma.revision(message="users", rev_id="rev1")


def _no_migrate(w: World) -> None:
    _at_head(w)
    w.app, _ = w.bare(w.url, with_user=True)


def _env_reads_x_as_dict(w: World) -> None:
    _at_head(w)
    env = w.migrations / "env.py"
    # Since Alembic 1.13.1 get_x_argument(as_dictionary=True) takes "novalue"
    # as {"novalue": ""}; env.py files still split the values themselves.
    env.write_text(
        "from alembic import context\n"
        "x_args = dict(arg.split('=', 1) for arg in context.get_x_argument())\n"
        + env.read_text()
    )
    w.facts["env"] = str(env)


def _bind_key_not_identifier(w: World) -> None:
    w.url = w.database()
    w.app = w.make_app(w.url, binds={"my-logs": w.database()})
    with w.app.app_context():
        fma.init(multidb=True)


def _directory_is_a_file(w: World) -> None:
    _not_initialized(w)
    w.watched = w.tmp_path / "afile"
    w.watched.write_text("not a folder")


def _revision_file(w: World, rev: str) -> Path:
    return next((w.migrations / "versions").glob(f"{rev}_*.py"))


def _set_down_revision(w: World, rev: str, down: str) -> None:
    path = _revision_file(w, rev)
    body = path.read_text()
    new = body.replace("\ndown_revision = ", f"\ndown_revision = {down!r}  # ")
    assert new != body, "template changed"
    path.write_text(new)
    w.facts[f"{rev}_path"] = str(path)


def _self_loop(w: World) -> None:
    _at_head(w, "rev2")
    _set_down_revision(w, "rev2", "rev2")


def _cycle(w: World) -> None:
    _at_head(w, "rev2")
    _set_down_revision(w, "rev1", "rev2")
    w.facts["rev2_path"] = str(_revision_file(w, "rev2"))


def _labelled(w: World) -> None:
    _at_head(w)
    with w.app.app_context():  # type: ignore[union-attr]
        fma.revision(message="labelled", rev_id="rev2", branch_label="lab")
        fma.upgrade()
    w.facts["rev2_path"] = str(_revision_file(w, "rev2"))


def _duplicate_id(w: World) -> None:
    _at_head(w)
    with w.app.app_context():  # type: ignore[union-attr]
        fma.revision(message="second", rev_id="rev2")
    first = _revision_file(w, "rev2")
    copy = first.with_name("rev2_copy.py")
    copy.write_text(first.read_text())
    w.facts.update(first=str(first), copy=str(copy))


def _alembic_ini(w: World, change: Callable[[str], str]) -> None:
    _at_head(w)
    ini = w.migrations / "alembic.ini"
    ini.write_text(change(ini.read_text()))
    w.facts["ini"] = str(Path("migrations", "alembic.ini"))


def _ini_without_section_header(w: World) -> None:
    _alembic_ini(w, lambda text: "script_location = elsewhere\n" + text)


def _ini_with_duplicate_option(w: World) -> None:
    _alembic_ini(
        w, lambda text: text.replace("[alembic]\n", "[alembic]\nfoo = 1\nfoo = 2\n")
    )


def _ini_with_bad_interpolation(w: World) -> None:
    # The template's example, with the doubled % signs forgotten.
    _alembic_ini(
        w,
        lambda text: text.replace(
            "[alembic]\n", "[alembic]\nfile_template = %(rev)s_%(slug)s\n"
        ),
    )


def _multidb_at_head(w: World) -> None:
    w.url = w.database()
    w.binds = {"logs": w.database()}
    w.app = w.make_app(w.url, binds=w.binds)
    with w.app.app_context():
        fma.init(multidb=True)
        fma.migrate(message="tables", rev_id="rev1")
        fma.upgrade()
    # The SQL files would appear in the working directory.
    w.watched = w.tmp_path


# --------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[World], None]
    #: The Python call, made inside an app context; ``None``: CLI only.
    python: Callable[[], object] | None
    cli: list[str]
    #: Texts the one ``Error:`` line contains, formatted with ``World.facts``.
    expect: tuple[str, ...]
    status: int = 1
    #: Texts that must appear nowhere (passwords).
    hidden: tuple[str, ...] = ()
    #: The type of ``CommandFailed.__cause__``.
    cause: type[BaseException] | None = None
    #: What the CLI says instead, where it differs from the Python call.
    cli_expect: tuple[str, ...] | None = None
    #: Also run ``flask`` in a real process (on an app.py like the test's app).
    end_to_end: bool = False
    #: The databases to run on (where the database is involved).
    backends: tuple[str, ...] = ("sqlite",)


CASES = [
    Case(
        "unknown-revision",
        _at_head,
        lambda: fma.upgrade(revision="nosuchrev"),
        ["db", "upgrade", "nosuchrev"],
        ("Can't locate revision identified by 'nosuchrev'",),
    ),
    Case(
        "ambiguous-prefix",
        _ambiguous,
        lambda: fma.downgrade(revision="abcd"),
        ["db", "downgrade", "abcd"],
        (
            "Multiple revisions start with 'abcd': 'abcd1111', 'abcd2222'",
            "give more of the revision id",
        ),
    ),
    Case(
        "downgrade-below-base",
        _at_head,
        lambda: fma.downgrade(revision=-5),
        ["db", "downgrade", "--", "-5"],
        ("Relative revision -5 didn't produce 5 migrations",),
    ),
    Case(
        "multiple-heads",
        _two_heads,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("'flask db merge heads'", "upgrade heads'"),
    ),
    Case(
        "revision-syntax-error",
        _syntax_error,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("syntax error in {path}, line {line}",),
        cause=SyntaxError,
    ),
    Case(
        "revision-import-error",
        _import_error,
        # An upgrade at head reads revision files without importing them
        # (the revision cache); a downgrade has to run the broken one.
        lambda: fma.downgrade(revision="base"),
        ["db", "downgrade", "base"],
        ("No module named 'module_that_does_not_exist' (in {path}, line {line})",),
        cause=ImportError,
    ),
    Case(
        "down-revision-points-nowhere",
        _dangling_down_revision,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("down_revision 'nowhere'", "{path}"),
    ),
    Case(
        "no-migrations-directory",
        _not_initialized,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("migration directory 'migrations' not found", "run 'flask db init'"),
    ),
    Case(
        "init-into-non-empty-directory",
        _initialized,
        lambda: fma.init(),
        ["db", "init"],
        ("Directory migrations already exists and is not empty",),
    ),
    Case(
        "unknown-template",
        _unknown_template,
        lambda: fma.init(template="nosuch"),
        ["db", "init", "-t", "nosuch"],
        ("unknown template 'nosuch'; available templates: {templates}",),
    ),
    Case(
        "template-path-not-a-template",
        _template_folder_without_env,
        lambda: fma.init(template="./notatemplate"),
        ["db", "init", "-t", "./notatemplate"],
        ("'./notatemplate' is not a repository template",),
    ),
    Case(
        "unreachable-postgresql",
        _unreachable(POSTGRESQL_DRIVER),
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("database error:", "127.0.0.1", "refused"),
        hidden=("Secr3tPassw0rd",),
        cause=sa.exc.OperationalError,
    ),
    Case(
        "unreachable-mysql",
        _unreachable("mysql+pymysql"),
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("database error:", "127.0.0.1", "refused"),
        hidden=("Secr3tPassw0rd",),
        cause=sa.exc.OperationalError,
    ),
    Case(
        "wrong-password-mysql",
        _wrong_password,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("database error:", "Access denied for user 'root'"),
        hidden=("wrongpw",),
        cause=sa.exc.OperationalError,
    ),
    Case(
        "no-migrate-registered",
        _no_migrate,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("has no Migrate extension",),
        cause=fma.MigrateNotSetUp,
        # Without Migrate there is no 'db' command group: a usage error.
        status=2,
        cli_expect=("No such command 'db'",),
    ),
    Case(
        "malformed-x-arg",
        _env_reads_x_as_dict,
        lambda: fma.upgrade(x_arg="novalue"),
        ["db", "-x", "novalue", "upgrade"],
        ("env.py ({env}, line 2) expects every -x/--x-arg value as key=value",),
    ),
    Case(
        "migrate-sql",
        _at_head,
        lambda: fma.migrate(sql=True),
        ["db", "migrate", "--sql"],
        ("Using --sql with --autogenerate does not make any sense",),
    ),
    Case(
        "downgrade-sql-without-range",
        _at_head,
        lambda: fma.downgrade(revision="base", sql=True),
        ["db", "downgrade", "--sql", "base"],
        ("downgrade with --sql requires <fromrev>:<torev>",),
    ),
    Case(
        "merge-single-head",
        _at_head,
        lambda: fma.merge(message="nothing"),
        ["db", "merge", "-m", "nothing"],
        ("nothing to merge: the revision history has a single head, rev1",),
    ),
    Case(
        "directory-is-a-file",
        _directory_is_a_file,
        lambda: fma.init(directory="afile/migrations"),
        ["db", "init", "-d", "afile/migrations"],
        ("Not a directory: afile/migrations",),
    ),
    Case(
        "bind-key-not-identifier",
        _bind_key_not_identifier,
        lambda: fma.migrate(message="first"),
        ["db", "migrate", "-m", "first"],
        ("bind key 'my-logs'", "rename it"),
    ),
    Case(
        "stamp-purge-unknown-revision",
        _at_head,
        lambda: fma.stamp(revision="nosuch", purge=True),
        ["db", "stamp", "--purge", "nosuch"],
        ("Can't locate revision identified by 'nosuch'",),
        end_to_end=True,
        backends=tuple(BACKENDS),
    ),
    Case(
        "new-branch-bad-rev-id",
        _at_head,
        lambda: fma.revision(branch="NEW", rev_id="BAD-@"),
        ["db", "revision", "--branch", "NEW", "--rev-id", "BAD-@"],
        ("not allowed in revision identifier 'BAD-@'",),
        end_to_end=True,
    ),
    Case(
        "multidb-sql-unknown-revision",
        _multidb_at_head,
        lambda: fma.upgrade(revision="nosuch", sql=True),
        ["db", "upgrade", "--sql", "nosuch"],
        ("Can't locate revision identified by 'nosuch'",),
        end_to_end=True,
    ),
    Case(
        "rev-id-already-used",
        _at_head,
        lambda: fma.revision(message="again", rev_id="rev1"),
        ["db", "revision", "-m", "again", "--rev-id", "rev1"],
        ("revision id 'rev1' is already used by", "rev1_users.py"),
        end_to_end=True,
    ),
    Case(
        "merge-rev-id-already-used",
        _two_heads,
        lambda: fma.merge(message="join", rev_id="reva"),
        ["db", "merge", "-m", "join", "--rev-id", "reva"],
        ("revision id 'reva' is already used by",),
    ),
    Case(
        "branch-label-used-twice",
        _labelled,
        lambda: fma.revision(message="again", rev_id="rev3", branch_label="lab"),
        ["db", "revision", "-m", "again", "--rev-id", "rev3", "--branch-label", "lab"],
        ("branch label 'lab' is already used by revision rev2 ({rev2_path})",),
        end_to_end=True,
    ),
    Case(
        "duplicate-revision-id",
        _duplicate_id,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("revision id 'rev2' is defined twice, in ", "{first}", "{copy}"),
        end_to_end=True,
    ),
    Case(
        "duplicate-revision-id-history",
        _duplicate_id,
        lambda: fma.history(),
        ["db", "history"],
        ("revision id 'rev2' is defined twice, in ", "{first}", "{copy}"),
    ),
    Case(
        "down-revision-self-loop",
        _self_loop,
        lambda: fma.current(),
        ["db", "current"],
        ("revision rev2 names itself in its down_revision ({rev2_path})",),
        end_to_end=True,
        backends=tuple(BACKENDS),
    ),
    Case(
        "down-revision-self-loop-upgrade",
        _self_loop,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        ("revision rev2 names itself in its down_revision ({rev2_path})",),
    ),
    Case(
        "down-revision-cycle",
        _cycle,
        lambda: fma.current(),
        ["db", "current"],
        (
            "the down_revision values of revisions rev1, rev2 ({rev1_path}, "
            "{rev2_path}) form a cycle",
        ),
        end_to_end=True,
        backends=tuple(BACKENDS),
    ),
    Case(
        "down-revision-cycle-downgrade",
        _cycle,
        lambda: fma.downgrade(),
        ["db", "downgrade"],
        ("form a cycle",),
    ),
    Case(
        "ini-missing-section-header",
        _ini_without_section_header,
        lambda: fma.upgrade(),
        ["db", "upgrade"],
        (
            "malformed alembic.ini: {ini}, line 1: 'script_location = elsewhere' "
            "comes before any [section] header",
        ),
        end_to_end=True,
    ),
    Case(
        "ini-duplicate-option",
        _ini_with_duplicate_option,
        lambda: fma.current(),
        ["db", "current"],
        ("{ini}, line", "option 'foo' is set a second time in section [alembic]"),
        end_to_end=True,
    ),
    Case(
        "ini-bad-interpolation",
        _ini_with_bad_interpolation,
        lambda: fma.revision(message="next"),
        ["db", "revision", "-m", "next"],
        (
            "{ini}: option 'file_template' in section [alembic] has a bad "
            "%-substitution",
            "write a literal % as %%",
        ),
        end_to_end=True,
    ),
    Case(
        "unknown-option",
        _at_head,
        None,
        ["db", "upgrade", "--no-such-option"],
        ("No such option", "--no-such-option"),
        status=2,
    ),
]


def _params() -> list[Any]:
    params = []
    for case in CASES:
        for backend in case.backends:
            where = "" if backend == "sqlite" else f"-{backend}"
            for via in ("python", "cli", "flask"):
                if via == "python" and case.python is None:
                    continue
                if via == "flask" and not case.end_to_end:
                    continue
                params.append(
                    pytest.param(case, backend, via, id=f"{case.id}{where}-{via}")
                )
    return params


@pytest.fixture
def world(tmp_path: Path, make_app: AppFactory, bare: Any) -> Iterator[World]:
    made = World(tmp_path, make_app, bare)
    yield made
    for server in made.servers:
        server.drop_all()


APP = """
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_alt import Migrate

app = Flask("testapp")
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
app.config["SQLALCHEMY_BINDS"] = {binds!r}
db = SQLAlchemy(app)


class User(db.Model):
    __tablename__ = "user"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(128))


for key in {binds!r}:
    type(
        "Session_" + key,
        (db.Model,),
        {{
            "__tablename__": "session_" + key,
            "__bind_key__": key,
            "id": db.Column(db.Integer, primary_key=True),
            "token": db.Column(db.String(64)),
        }},
    )
Migrate(app, db)
"""


@pytest.mark.parametrize(("case", "backend", "via"), _params())
def test_bad_input(
    case: Case,
    backend: str,
    via: str,
    world: World,
    capsys: pytest.CaptureFixture[str],
) -> None:
    world.backend = backend
    case.setup(world)
    assert world.app is not None
    if via == "flask":
        # The same app, for the flask command in a process of its own.
        assert world.url is not None
        app_py = world.tmp_path / "app.py"
        app_py.write_text(APP.format(url=world.url, binds=world.binds))
    before = world.state()
    capsys.readouterr()

    if via == "flask":
        process = run_flask(world.tmp_path, *case.cli)
        assert process.returncode == case.status, process.stderr
        stderr, output = process.stderr, process.stdout + process.stderr
        failure = None
        expect = case.expect if case.cli_expect is None else case.cli_expect
    elif via == "python":
        assert case.python is not None
        with world.app.app_context(), pytest.raises(fma.CommandFailed) as info:
            case.python()
        assert info.value.code == 1
        captured = capsys.readouterr()
        stderr, output = captured.err, captured.out + captured.err
        assert f"Error: {info.value.message}\n" in stderr
        failure: BaseException | None = info.value
        expect = case.expect
    else:
        result = world.app.test_cli_runner().invoke(args=case.cli)
        assert result.exit_code == case.status, result.output
        stderr, output = result.stderr, result.output
        failure = result.exception if case.status == 1 else None
        expect = case.expect if case.cli_expect is None else case.cli_expect

    if failure is not None:
        assert isinstance(failure, fma.CommandFailed)
        if case.cause is not None:
            assert isinstance(failure.__cause__, case.cause)
    errors = [line for line in stderr.splitlines() if "Error:" in line]
    assert len(errors) == 1, stderr
    assert errors[0].startswith("Error:")
    for text in expect:
        assert text.format(**world.facts) in errors[0]
    assert "Traceback" not in output
    for secret in case.hidden:
        assert secret not in output
    assert world.state() == before
