"""The ``flask db`` command group: option parsing only.

Every command calls the function of the same name in
:mod:`flask_migrate_alt.commands`; there is no logic here beyond turning
options into arguments.

``-d/--directory`` and ``-x/--x-arg`` belong to the group, but Flask-Migrate
also accepted them after most subcommands, and people type both
``flask db -d m upgrade`` and ``flask db upgrade -d m``. They are declared
once here and attached to the group and to every subcommand; the values end
up in one :class:`DbOptions` object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from flask.cli import AppGroup

from . import commands
from .errors import catch_errors
from .state import using_state

__all__ = ["alembic_db", "check_command_name", "db"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class DbOptions:
    """The options shared by the group and its subcommands."""

    directory: str | None = None
    x_arg: list[str] = field(default_factory=list)


def _set_directory(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        ctx.ensure_object(DbOptions).directory = value


def _add_x_arg(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    ctx.ensure_object(DbOptions).x_arg.extend(value or ())


def _shared_options() -> list[click.Parameter]:
    return [
        click.Option(
            ["-d", "--directory"],
            default=None,
            envvar="FLASK_DB_DIRECTORY",
            expose_value=False,
            callback=_set_directory,
            help="Migration repository (default: 'migrations', or the "
            "directory given to Migrate; env: FLASK_DB_DIRECTORY).",
        ),
        click.Option(
            ["-x", "--x-arg"],
            multiple=True,
            expose_value=False,
            callback=_add_x_arg,
            help="Extra 'key=value' argument for env.py "
            "(context.get_x_argument()); may be repeated.",
        ),
    ]


@click.group(cls=AppGroup, params=_shared_options())
@click.pass_context
def db(ctx: click.Context) -> None:
    """Perform database migrations."""
    ctx.ensure_object(DbOptions)


_sql = click.option(
    "--sql", is_flag=True, help="Don't emit SQL to the database - dump to stdout."
)
_tag = click.option(
    "--tag", default=None, help="Arbitrary 'tag' name for custom env.py scripts."
)
_verbose = click.option("-v", "--verbose", is_flag=True, help="More verbose output.")
_message = click.option("-m", "--message", default=None, help="Revision message.")
_branch_label = click.option(
    "--branch-label", default=None, help="Branch label to apply to the new revision."
)
_rev_id = click.option(
    "--rev-id", default=None, help="Revision id to use instead of a generated one."
)


def _new_revision_options(f: F) -> F:
    """Options shared by ``revision`` and ``migrate``."""
    for option in reversed(
        [
            _message,
            _sql,
            click.option(
                "--head",
                default="head",
                help="Revision to base the new revision on (default: head).",
            ),
            click.option(
                "--splice",
                is_flag=True,
                help="Allow a non-head revision as the 'head' to splice onto.",
            ),
            _branch_label,
            click.option(
                "--version-path",
                default=None,
                help="Folder to put the new revision file in.",
            ),
            _rev_id,
            click.option(
                "--branch",
                default=None,
                help="Add the revision to this independent branch "
                "(created in versions/BRANCH/ the first time).",
            ),
        ]
    ):
        f = option(f)
    return f


@db.command("list-templates")
def list_templates() -> None:
    """List the available repository templates."""
    commands.list_templates()


@db.command()
@click.option("--multidb", is_flag=True, help="Multiple databases (SQLALCHEMY_BINDS).")
@click.option(
    "-t",
    "--template",
    default=None,
    help="Template name (see list-templates) or path of a template folder.",
)
@click.option(
    "--package", is_flag=True, help="Write __init__.py files in the repository."
)
@click.pass_obj
def init(shared: DbOptions, multidb: bool, template: str | None, package: bool) -> None:
    """Create a new migration repository."""
    commands.init(shared.directory, multidb=multidb, template=template, package=package)


@db.command()
@_new_revision_options
@click.option(
    "--autogenerate",
    is_flag=True,
    help="Fill in the revision by comparing the models with the database.",
)
@click.pass_obj
def revision(shared: DbOptions, /, autogenerate: bool, **options: Any) -> None:
    """Create a new revision file."""
    commands.revision(
        shared.directory, autogenerate=autogenerate, x_arg=shared.x_arg, **options
    )


@db.command()
@_new_revision_options
@click.pass_obj
def migrate(shared: DbOptions, /, **options: Any) -> None:
    """Autogenerate a new revision file (alias for 'revision --autogenerate')."""
    commands.migrate(shared.directory, x_arg=shared.x_arg, **options)


@db.command()
@click.argument("revision", default="head")
@click.pass_obj
def edit(shared: DbOptions, revision: str) -> None:
    """Edit a revision file in $EDITOR."""
    commands.edit(shared.directory, revision, x_arg=shared.x_arg)


@db.command()
@_message
@_branch_label
@_rev_id
@click.argument("revisions", nargs=-1)
@click.pass_obj
def merge(
    shared: DbOptions,
    message: str | None,
    branch_label: str | None,
    rev_id: str | None,
    revisions: tuple[str, ...],
) -> None:
    """Merge revisions (default: all heads) into a new revision file."""
    commands.merge(
        shared.directory,
        list(revisions),
        message=message,
        branch_label=branch_label,
        rev_id=rev_id,
        x_arg=shared.x_arg,
    )


@db.command()
@_sql
@_tag
@click.argument("revision", default="head")
@click.pass_obj
def upgrade(shared: DbOptions, sql: bool, tag: str | None, revision: str) -> None:
    """Upgrade to a later version (default: head)."""
    ran = commands.upgrade(
        shared.directory, revision, sql=sql, tag=tag, x_arg=shared.x_arg
    )
    _say_if_nothing_ran(ran, sql, revision)


@db.command()
@_sql
@_tag
@click.argument("revision", default="-1")
@click.pass_obj
def downgrade(shared: DbOptions, sql: bool, tag: str | None, revision: str) -> None:
    """Revert to a previous version (default: one step back)."""
    ran = commands.downgrade(
        shared.directory, revision, sql=sql, tag=tag, x_arg=shared.x_arg
    )
    _say_if_nothing_ran(ran, sql, revision)


def _say_if_nothing_ran(ran: list[str], sql: bool, revision: str) -> None:
    # On stderr: stdout is for what Flask-Migrate prints there (and for the
    # SQL of --sql), so that scripts reading it see the same text.
    if not ran and not sql:
        click.echo(f"Nothing to do: the database is already at {revision}.", err=True)


@db.command()
@click.argument("revision", default="head")
@click.pass_obj
def show(shared: DbOptions, revision: str) -> None:
    """Show the revision denoted by the given symbol."""
    commands.show(shared.directory, revision, x_arg=shared.x_arg)


@db.command()
@click.option(
    "-r", "--rev-range", default=None, help="Range of revisions, as [start]:[end]."
)
@_verbose
@click.option(
    "-i", "--indicate-current", is_flag=True, help="Mark the current revision."
)
@click.pass_obj
def history(
    shared: DbOptions, rev_range: str | None, verbose: bool, indicate_current: bool
) -> None:
    """List revisions in chronological order."""
    commands.history(
        shared.directory,
        rev_range,
        verbose=verbose,
        indicate_current=indicate_current,
        x_arg=shared.x_arg,
    )


@db.command()
@_verbose
@click.option(
    "--resolve-dependencies",
    is_flag=True,
    help="Treat dependency versions as down revisions.",
)
@click.pass_obj
def heads(shared: DbOptions, verbose: bool, resolve_dependencies: bool) -> None:
    """Show the current heads of the revision history."""
    commands.heads(
        shared.directory,
        verbose=verbose,
        resolve_dependencies=resolve_dependencies,
        x_arg=shared.x_arg,
    )


@db.command()
@_verbose
@click.pass_obj
def branches(shared: DbOptions, verbose: bool) -> None:
    """Show the branch points of the revision history."""
    commands.branches(shared.directory, verbose=verbose, x_arg=shared.x_arg)


@db.command()
@_verbose
@click.option(
    "--check-heads",
    is_flag=True,
    help="Exit with status 1 if a database is not at all head revisions.",
)
@click.pass_obj
def current(shared: DbOptions, verbose: bool, check_heads: bool) -> None:
    """Show the current revision of each database."""
    commands.current(
        shared.directory, verbose=verbose, check_heads=check_heads, x_arg=shared.x_arg
    )


@db.command()
@_sql
@_tag
@click.option("--purge", is_flag=True, help="Empty the version table before stamping.")
@click.argument("revision", default="head")
@click.pass_obj
def stamp(
    shared: DbOptions, sql: bool, tag: str | None, purge: bool, revision: str
) -> None:
    """Set the version table to a revision without running migrations."""
    commands.stamp(
        shared.directory, revision, sql=sql, tag=tag, purge=purge, x_arg=shared.x_arg
    )


@db.command()
@click.pass_obj
def check(
    shared: DbOptions,
) -> None:
    """Exit 1 if the models and the database differ (a migration is needed)."""
    commands.check(shared.directory, x_arg=shared.x_arg)


@db.command()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the status as JSON, and nothing else, on stdout.",
)
@click.option(
    "--exit-code",
    is_flag=True,
    help="Exit with status 2 if an upgrade is pending, 3 if the models differ "
    "from the database at head, 0 if up to date (1 stays an error).",
)
@click.option(
    "--no-compare",
    is_flag=True,
    help="Don't compare the models with the database (faster).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="List every revision instead of collapsing long runs.",
)
@click.pass_obj
def status(
    shared: DbOptions, as_json: bool, exit_code: bool, no_compare: bool, verbose: bool
) -> None:
    """Show the migration state of each database.

    For each database: its revisions, applied or pending, the upgrade plan,
    and whether the models differ from the schema. Nothing is changed.

    \b
    With --exit-code the exit status tells the state:
      0  up to date: at the heads, and the models match
      1  the command failed (an "Error:" line says why)
      2  an upgrade is pending ('flask db upgrade')
      3  at the heads, but the models differ ('flask db migrate')
    """
    from .migration_status import as_json as json_report
    from .migration_status import as_text, exit_status
    from .migration_status import status as database_status

    found = catch_errors(database_status)(
        shared.directory, x_arg=shared.x_arg, compare=not no_compare
    )
    if as_json:
        click.echo(json_report(found))
    else:
        click.echo(as_text(found, verbose=verbose), nl=False)
    if exit_code:
        click.get_current_context().exit(exit_status(found))


@db.command()
@click.argument("rev_range", required=False)
@click.option(
    "--warn-only",
    is_flag=True,
    help="Print the problems but exit with status 0.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the findings as a JSON array."
)
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="RULE",
    help="Check only this rule; may be repeated.",
)
@click.option(
    "--ignore", multiple=True, metavar="RULE", help="Skip this rule; may be repeated."
)
@click.pass_obj
def lint(
    shared: DbOptions,
    rev_range: str | None,
    warn_only: bool,
    as_json: bool,
    rules: tuple[str, ...],
    ignore: tuple[str, ...],
) -> None:
    """Review revisions for operations that are risky in production.

    REV_RANGE is one revision, or START:END: what an upgrade from START
    to END would run (base:heads is every revision); the default is the
    revisions the database does not have yet. Exits with status 1 if a
    problem is not accepted.
    """
    import json

    from .review import lint as review

    report = catch_errors(review)(
        shared.directory,
        rev_range,
        x_arg=shared.x_arg,
        rules=rules or None,
        ignore=ignore,
    )
    if as_json:
        click.echo(json.dumps([finding.as_dict() for finding in report], indent=2))
    else:
        for finding in report:
            click.echo(str(finding))
        click.echo(report.summary())
    if report.problems and not warn_only:
        click.get_current_context().exit(1)


def _attach_shared_options() -> None:
    for command in db.commands.values():
        shared = _shared_options()
        # The group reads FLASK_DB_DIRECTORY; a subcommand's -d only
        # overrides it when typed.
        shared[0].envvar = None
        command.params.extend(shared)


_attach_shared_options()


# --------------------------------------------------------------------------
# Flask-Alembic's grammar, for apps that register flask_migrate_alt.Alembic


@dataclass
class AlembicOptions(DbOptions):
    """``ctx.obj`` of the Alembic group: the extension, and the shared
    options of ``status`` and ``lint``."""

    alembic: Any = None


@click.group("db", cls=AppGroup)
@click.pass_context
def alembic_db(ctx: click.Context) -> None:
    """Perform database migrations."""
    ctx.obj = AlembicOptions()
    # status and lint work on this extension's repository, even when the
    # app also registered Migrate under another name. Looked up when a
    # command runs: only then is there an app context.
    ctx.with_resource(using_state(_alembic_state))


def _alembic() -> Any:
    from flask import current_app

    return current_app.extensions["alembic"]


def _alembic_state() -> Any:
    return _alembic()._migrate_state()


def _pass_alembic(f: F) -> F:
    """Pass the group's options with the app's ``Alembic`` extension set."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        obj = click.get_current_context().find_object(AlembicOptions)
        assert obj is not None
        obj.alembic = _alembic()
        return f(obj, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _format(script: Any, verbose: bool) -> str:
    return str(
        script.cmd_format(
            verbose,
            include_branches=True,
            include_doc=True,
            include_parents=True,
            tree_indicators=True,
        )
    )


@alembic_db.command("mkdir")
@_pass_alembic
def alembic_mkdir(obj: AlembicOptions) -> None:
    """Create the migration directory if it does not exist."""
    catch_errors(obj.alembic.mkdir)()


@alembic_db.command("current")
@_verbose
@click.option(
    "--check-heads",
    is_flag=True,
    help="Exit 1 if a database is not on all head revisions.",
)
@_pass_alembic
def alembic_current(obj: AlembicOptions, verbose: bool, check_heads: bool) -> None:
    """Show the current revisions."""
    alembic = obj.alembic
    for script in catch_errors(alembic.current)():
        click.echo(_format(script, verbose))
    if check_heads and catch_errors(alembic.needs_upgrade)():
        catch_errors(_fail)(
            "Database is not on all head revisions; run 'flask db upgrade'"
        )


def _fail(message: str) -> None:
    raise RuntimeError(message)


@alembic_db.command("check")
@_pass_alembic
def alembic_check(obj: AlembicOptions) -> None:
    """Exit 1 if the models differ from the database (a revision is needed)."""
    diffs = catch_errors(obj.alembic.compare_metadata)()
    if diffs:
        catch_errors(_fail)(
            f"Changes detected ({len(diffs)}): run 'flask db revision \"message\"' "
            "to write them into a revision"
        )
    click.echo("No changes detected.")


@alembic_db.command("heads")
@click.option(
    "--resolve-dependencies", is_flag=True, help="Treat dependencies as down revisions."
)
@_verbose
@_pass_alembic
def alembic_heads(
    obj: AlembicOptions, resolve_dependencies: bool, verbose: bool
) -> None:
    """Show the revisions that have no child revisions."""
    for script in catch_errors(obj.alembic.heads)(resolve_dependencies):
        click.echo(_format(script, verbose))


@alembic_db.command("branches")
@_verbose
@_pass_alembic
def alembic_branches(obj: AlembicOptions, verbose: bool) -> None:
    """Show the revisions that have more than one next revision."""
    alembic = obj.alembic
    for script in catch_errors(alembic.branches)():
        click.echo(_format(script, verbose))
        for name in script.nextrev:
            child = alembic.script_directory.get_revision(name)
            click.echo(f"    -> {_format(child, False)}")


@alembic_db.command("log")
@click.option("--start", default="base", help="Show since this revision.")
@click.option("--end", default="heads", help="Show until this revision.")
@_verbose
@_pass_alembic
def alembic_log(obj: AlembicOptions, start: str, end: str, verbose: bool) -> None:
    """Show the revisions, newest first."""
    for script in catch_errors(obj.alembic.log)(start, end):
        click.echo(_format(script, verbose))


@alembic_db.command("show")
@click.argument("revisions", nargs=-1)
@_pass_alembic
def alembic_show(obj: AlembicOptions, revisions: tuple[str, ...]) -> None:
    """Show the given revisions."""

    def found() -> Any:
        return obj.alembic.script_directory.get_revisions(revisions)

    for script in catch_errors(found)():
        click.echo(script.cmd_format(True))


@alembic_db.command("stamp")
@click.argument("target", default="heads")
@_pass_alembic
def alembic_stamp(obj: AlembicOptions, target: str) -> None:
    """Set the current revision without running migrations."""
    catch_errors(obj.alembic.stamp)(target)


@alembic_db.command("upgrade")
@click.argument("target", default="heads")
@_pass_alembic
def alembic_upgrade(obj: AlembicOptions, target: str) -> None:
    """Run migrations to upgrade the database."""
    catch_errors(obj.alembic.upgrade)(target)


@alembic_db.command("downgrade")
@click.argument("target", default="1")
@_pass_alembic
def alembic_downgrade(obj: AlembicOptions, target: str) -> None:
    """Run migrations to downgrade the database (default: one step)."""
    catch_errors(obj.alembic.downgrade)(target)


@alembic_db.command("revision")
@click.argument("message")
@click.option("--empty", is_flag=True, help="Create an empty script.")
@click.option(
    "-b", "--branch", default="default", help="Use this independent branch name."
)
@click.option(
    "-p",
    "--parent",
    multiple=True,
    default=["head"],
    help="Parent revision(s) of this revision.",
)
@click.option("--splice", is_flag=True, help="Allow a non-head parent revision.")
@click.option(
    "-d", "--depend", multiple=True, help="Revision(s) this revision depends on."
)
@click.option("-l", "--label", multiple=True, help="Label(s) to apply to the revision.")
@click.option("--path", default=None, help="Where to store the revision.")
@_pass_alembic
def alembic_revision(
    obj: AlembicOptions,
    message: str,
    empty: bool,
    branch: str,
    parent: tuple[str, ...],
    splice: bool,
    depend: tuple[str, ...],
    label: tuple[str, ...],
    path: str | None,
) -> None:
    """Generate a new revision (autogenerated unless --empty)."""
    catch_errors(obj.alembic.revision)(
        message,
        empty=empty,
        branch=branch,
        parent=list(parent),
        splice=splice,
        depend=list(depend) or None,
        label=list(label) or None,
        path=path,
    )


@alembic_db.command("merge")
@click.argument("revisions", nargs=-1)
@click.option("-m", "--message", default=None, help="Revision message.")
@click.option("-l", "--label", multiple=True, help="Label(s) to apply to the revision.")
@_pass_alembic
def alembic_merge(
    obj: AlembicOptions,
    revisions: tuple[str, ...],
    message: str | None,
    label: tuple[str, ...],
) -> None:
    """Generate a merge revision (default: of every head)."""
    catch_errors(obj.alembic.merge)(
        list(revisions) or "heads", message=message, label=list(label) or None
    )


def check_command_name(app: Any, name: str, group: click.Group) -> None:
    """Refuse to register ``group`` where the other extension's group is.

    ``Migrate`` and ``Alembic`` may share an app, each under its own name;
    under one name the second would silently replace the first.
    """
    existing = app.cli.commands.get(name)
    if existing is None or existing is group or existing not in (db, alembic_db):
        return
    owner = "Migrate" if existing is db else "Alembic"
    raise RuntimeError(
        f"the command group 'flask {name}' is already registered by {owner}; "
        "give each extension its own name, for example "
        "Migrate(app, db, command='migrate') or Alembic(app, command_name='alembic')"
    )


# Ours, on Flask-Alembic repositories too.
alembic_db.add_command(status)
alembic_db.add_command(lint)
