"""The migration commands, callable from Python and behind ``flask db``.

Each function has the name, parameters and defaults of its Flask-Migrate 4.1
counterpart, so that code calling ``flask_migrate.upgrade(...)`` keeps
working after changing the import. They need an app context of an app with
:class:`~flask_migrate_alt.Migrate` registered. Output goes to stdout as
Alembic prints it; failures end with :class:`~flask_migrate_alt.CommandFailed`
(see :func:`~flask_migrate_alt.catch_errors`).

Alembic is imported inside the functions: importing this module happens
whenever the app registers the extension.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import catch_errors
from .extension import current_state

if TYPE_CHECKING:
    from alembic.script import Script

    from .config import Config

__all__ = [
    "branches",
    "check",
    "current",
    "downgrade",
    "edit",
    "heads",
    "history",
    "init",
    "list_templates",
    "merge",
    "migrate",
    "revision",
    "show",
    "stamp",
    "upgrade",
]

XArg = str | Sequence[str] | None


def _config(
    directory: str | os.PathLike[str] | None,
    *,
    x_arg: XArg = None,
    opts: Sequence[str] | None = None,
) -> Config:
    """Return the Config for ``directory`` (default: the app's directory).

    Every command except ``init`` and ``list-templates`` gets its Config
    here, through ``Migrate.get_config`` so that subclasses overriding it
    and ``@migrate.configure`` callbacks are honoured.
    """
    state = current_state()
    path = os.fspath(directory) if directory is not None else state.directory
    if not os.path.isdir(path):
        raise RuntimeError(
            f"migration directory {path!r} not found; run 'flask db init' to "
            "create it, or point to it with -d/--directory"
        )
    return state.migrate.get_config(path, x_arg=x_arg, opts=opts)


def _alembic() -> Any:
    from alembic import command

    return command


@catch_errors
def list_templates() -> dict[str, str]:
    """Print the repository templates with their synopsis; return them."""
    from .config import Config, available_templates

    config = Config()
    templates = available_templates()
    config.print_stdout("Available templates:\n")
    for name, synopsis in templates.items():
        config.print_stdout("%s - %s", name, synopsis)
    return templates


def _resolve_template(template: str | None, multidb: bool) -> tuple[Path, str]:
    """Return (folder holding the template, template name) for ``init``."""
    from .config import available_templates, is_template, template_root

    if template is None:
        template = "flask-multidb" if multidb else "flask"
    if "/" in template or os.sep in template or template.startswith((".", "~")):
        path = Path(template).expanduser()
        if not is_template(path):
            raise RuntimeError(
                f"{template!r} is not a repository template: a template is a "
                "folder with env.py, script.py.mako and alembic.ini.mako"
            )
        return path.resolve().parent, path.name
    names = available_templates()
    if multidb and not template.endswith("-multidb") and f"{template}-multidb" in names:
        template = f"{template}-multidb"
    if template not in names:
        raise RuntimeError(
            f"unknown template {template!r}; available templates: "
            f"{', '.join(names)} (or pass the path of a template folder)"
        )
    return template_root(), template


@catch_errors
def init(
    directory: str | os.PathLike[str] | None = None,
    multidb: bool = False,
    template: str | None = None,
    package: bool = False,
) -> str:
    """Create a new migration repository; return its directory.

    :param multidb: use the multiple-database variant of the template.
    :param template: a template name (see :func:`list_templates`) or the
        path of a template folder.
    :param package: write ``__init__.py`` files, making the repository and
        its versions folder Python packages.
    """
    from .config import Config

    state = current_state()
    path = os.fspath(directory) if directory is not None else state.directory
    template_dir, name = _resolve_template(template, multidb)
    config = Config(template_directory=str(template_dir))
    config.set_main_option("script_location", path.replace("%", "%%"))
    config.config_file_name = os.path.join(path, "alembic.ini")
    config = state.migrate.call_configure_callbacks(config)
    _alembic().init(config, path, template=name, package=package)
    return path


@catch_errors
def revision(
    directory: str | os.PathLike[str] | None = None,
    message: str | None = None,
    autogenerate: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | Sequence[str] | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    *,
    x_arg: XArg = None,
) -> Script | list[Script | None] | None:
    """Create a new revision file; return the new ``Script``.

    With ``autogenerate``, the file is filled in by comparing the models
    with the database, and ``None`` is returned when nothing changed.
    """
    opts = ["autogenerate"] if autogenerate else None
    config = _config(directory, x_arg=x_arg, opts=opts)
    return _alembic().revision(  # type: ignore[no-any-return]
        config,
        message,
        autogenerate=autogenerate,
        sql=sql,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
    )


@catch_errors
def migrate(
    directory: str | os.PathLike[str] | None = None,
    message: str | None = None,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | Sequence[str] | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    x_arg: XArg = None,
) -> Script | list[Script | None] | None:
    """Autogenerate a revision from the model changes (``revision --autogenerate``)."""
    config = _config(directory, x_arg=x_arg, opts=["autogenerate"])
    return _alembic().revision(  # type: ignore[no-any-return]
        config,
        message,
        autogenerate=True,
        sql=sql,
        head=head,
        splice=splice,
        branch_label=branch_label,
        version_path=version_path,
        rev_id=rev_id,
    )


@catch_errors
def edit(
    directory: str | os.PathLike[str] | None = None, revision: str = "current"
) -> None:
    """Open a revision file in ``$EDITOR``."""
    _alembic().edit(_config(directory), revision)


@catch_errors
def merge(
    directory: str | os.PathLike[str] | None = None,
    revisions: str | Sequence[str] = "",
    message: str | None = None,
    branch_label: str | Sequence[str] | None = None,
    rev_id: str | None = None,
) -> Script | None:
    """Create a revision that merges ``revisions`` (default: all heads)."""
    if not revisions:
        revisions = "heads"
    return _alembic().merge(  # type: ignore[no-any-return]
        _config(directory),
        revisions,
        message=message,
        branch_label=branch_label,
        rev_id=rev_id,
    )


@catch_errors
def upgrade(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
) -> None:
    """Upgrade the database to ``revision`` (default: the head)."""
    _alembic().upgrade(_config(directory, x_arg=x_arg), revision, sql=sql, tag=tag)


@catch_errors
def downgrade(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "-1",
    sql: bool = False,
    tag: str | None = None,
    x_arg: XArg = None,
) -> None:
    """Downgrade the database to ``revision`` (default: one step back).

    Offline (``sql=True``) there is no database to count back from, so the
    default becomes ``head:-1``: the SQL that undoes the latest revision.
    """
    if sql and revision == "-1":
        revision = "head:-1"
    _alembic().downgrade(_config(directory, x_arg=x_arg), revision, sql=sql, tag=tag)


@catch_errors
def show(
    directory: str | os.PathLike[str] | None = None, revision: str = "head"
) -> None:
    """Show the revision denoted by ``revision``."""
    _alembic().show(_config(directory), revision)


@catch_errors
def history(
    directory: str | os.PathLike[str] | None = None,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
    *,
    x_arg: XArg = None,
) -> None:
    """List the revisions in chronological order, newest first."""
    _alembic().history(
        _config(directory, x_arg=x_arg),
        rev_range,
        verbose=verbose,
        indicate_current=indicate_current,
    )


@catch_errors
def heads(
    directory: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    resolve_dependencies: bool = False,
) -> None:
    """Show the current heads of the revision history."""
    _alembic().heads(
        _config(directory),
        verbose=verbose,
        resolve_dependencies=resolve_dependencies,
    )


@catch_errors
def branches(
    directory: str | os.PathLike[str] | None = None, verbose: bool = False
) -> None:
    """Show the branch points of the revision history."""
    _alembic().branches(_config(directory), verbose=verbose)


@catch_errors
def current(
    directory: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    *,
    x_arg: XArg = None,
) -> None:
    """Show the revision each database is at."""
    _alembic().current(_config(directory, x_arg=x_arg), verbose=verbose)


@catch_errors
def stamp(
    directory: str | os.PathLike[str] | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    purge: bool = False,
    *,
    x_arg: XArg = None,
) -> None:
    """Set the version table to ``revision`` without running migrations.

    :param purge: delete all entries of the version table first, for
        example after deleting revision files the database still names.
    """
    _alembic().stamp(
        _config(directory, x_arg=x_arg), revision, sql=sql, tag=tag, purge=purge
    )


@catch_errors
def check(
    directory: str | os.PathLike[str] | None = None, *, x_arg: XArg = None
) -> None:
    """Fail if autogenerate would write a new revision (models and database differ)."""
    _alembic().check(_config(directory, x_arg=x_arg))
