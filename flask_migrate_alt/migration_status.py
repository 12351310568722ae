"""Where each database stands: ``flask db status`` and :func:`status`.

Before and after a deploy the same three questions come up: is each
database at the head of the history, what would ``upgrade`` run, and do
the models still match the schema? ``current``, ``heads``, ``history -i``
and ``check`` each answer a part, print for people, and run ``env.py``
once per question. :func:`status` answers all three in one pass, with one
connection per database, and returns data that scripts can act on; the
command prints it for people, as JSON, or as an exit status.

Like the quiet helpers of :mod:`.inspection` it does not run ``env.py``: it
reads the history through the revision cache, connects with the app's own
engines (async ones included), and passes the ``context.configure()``
arguments given to ``Migrate`` and ``app.config["ALEMBIC_CONTEXT"]`` to
Alembic, so a custom ``version_table`` or ``include_object`` is honoured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from .databases import Database

__all__ = ["DatabaseStatus", "RevisionStatus", "status"]

#: Exit statuses of ``flask db status --exit-code``; 1 stays "the command
#: failed", as for every other command.
EXIT_UP_TO_DATE = 0
EXIT_UPGRADE_PENDING = 2
EXIT_MODELS_DIFFER = 3

# Without --verbose, the text output lists at most this many applied
# revisions (the latest) and this many pending ones (the first to run), and
# the upgrade plan line names at most this many revisions.
_SHOWN_APPLIED = 10
_SHOWN_PENDING = 20
_SHOWN_PLAN = 5


@dataclass(frozen=True)
class RevisionStatus:
    """One revision of the history, as seen from one database."""

    #: The revision id.
    revision: str
    #: The ids of its parents: none for a base, several for a merge.
    down_revisions: tuple[str, ...]
    #: The first paragraph of its docstring (the ``-m`` message).
    message: str
    #: The revision file.
    path: str
    #: Whether the database has it (it is current or an ancestor of one).
    applied: bool
    #: Whether no revision follows it.
    is_head: bool
    #: Whether the database's version table names it.
    is_current: bool
    #: The branch labels of the branch it belongs to.
    branch_labels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a dict of JSON types."""
        return {
            "revision": self.revision,
            "down_revisions": list(self.down_revisions),
            "message": self.message,
            "path": self.path,
            "applied": self.applied,
            "is_head": self.is_head,
            "is_current": self.is_current,
            "branch_labels": list(self.branch_labels),
        }


@dataclass(frozen=True)
class DatabaseStatus:
    """The state of migrations of one database."""

    #: ``None`` for the default database, else the bind key.
    bind_key: str | None
    #: The database URL, with the password hidden.
    url: str
    #: The revisions the version table names; empty when none is applied.
    current: tuple[str, ...]
    #: The heads of the history (revisions no other revision follows).
    heads: tuple[str, ...]
    #: Every revision of the history, oldest first.
    revisions: tuple[RevisionStatus, ...]
    #: The revisions ``flask db upgrade heads`` would run, in that order.
    pending: tuple[str, ...]
    #: Whether the models differ from the schema. ``None`` when it is not
    #: known: the database is not at the heads (the pending revisions will
    #: change the schema), or the comparison was skipped.
    models_differ: bool | None
    #: One line per difference autogenerate found, such as
    #: ``add column 'user.email'``.
    diff: tuple[str, ...]

    @property
    def name(self) -> str:
        """``"default"`` for the default database, else the bind key."""
        return "default" if self.bind_key is None else self.bind_key

    @property
    def needs_upgrade(self) -> bool:
        """Whether ``flask db upgrade`` has revisions to run."""
        return bool(self.pending)

    @property
    def needs_revision(self) -> bool | None:
        """Whether ``flask db migrate`` would write a revision (``None``: unknown)."""
        return self.models_differ

    @property
    def up_to_date(self) -> bool:
        """At the heads, with no known difference from the models.

        With ``compare=False`` only the revisions are checked.
        """
        return not self.needs_upgrade and self.models_differ is not True

    def to_dict(self) -> dict[str, Any]:
        """Return the fields and properties as a dict of JSON types."""
        return {
            "bind_key": self.bind_key,
            "name": self.name,
            "url": self.url,
            "current": list(self.current),
            "heads": list(self.heads),
            "pending": list(self.pending),
            "models_differ": self.models_differ,
            "diff": list(self.diff),
            "needs_upgrade": self.needs_upgrade,
            "needs_revision": self.needs_revision,
            "up_to_date": self.up_to_date,
            "revisions": [revision.to_dict() for revision in self.revisions],
        }


def status(
    directory: str | os.PathLike[str] | None = None,
    *,
    x_arg: str | Sequence[str] | None = None,
    compare: bool = True,
) -> list[DatabaseStatus]:
    """Return the state of migrations of each database, printing nothing.

    One :class:`DatabaseStatus` for a single-database repository; for one
    made with a multiple-database template, the default database followed
    by each bind. The models are compared with a database only when it is
    at the heads, since the pending revisions would change its schema first.

    ``env.py`` is not run; ``x_arg`` reaches the ``Config`` that
    ``@migrate.configure`` callbacks see.

    Failures are ordinary exceptions for the caller to handle: Alembic's
    ``CommandError``, SQLAlchemy's database errors, ``RuntimeError`` for a
    mistake in the app's setup or the history, ``FileNotFoundError`` for a
    missing repository. ``flask db status`` turns them into an ``Error:``
    line and exit status 1.

    :param compare: compare the models with each database at the heads, as
        ``flask db check`` does; ``False`` skips that, which is faster.
    """
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from .config import app_config, script_directory
    from .databases import each_database
    from .errors import describe, repository_errors_named
    from .state import repository

    config = app_config(directory, x_arg=x_arg)
    with repository_errors_named(repository(directory)):
        history = _History(script_directory(config))

    def inspect(context: MigrationContext, db: Database) -> DatabaseStatus:
        return history.database_status(context, db, compare=compare)

    try:
        found = each_database(directory, inspect)
    except SQLAlchemyError as exc:
        if isinstance(exc, DBAPIError):
            raise  # the caller words driver errors itself
        # Such as MissingGreenlet, from an async URL given to a synchronous
        # engine: a mistake in the app's configuration, worth one line.
        raise RuntimeError(
            f"cannot read the state of the database ({describe(exc)}); check "
            "its URL and engine options"
        ) from exc
    return list(found.values()) if isinstance(found, dict) else [found]


class _History:
    """The revision history, read once and shared by every database."""

    def __init__(self, script: ScriptDirectory) -> None:
        self.script = script
        self.heads = tuple(script.get_heads())
        # walk_revisions() goes from the heads down, in topological order.
        self.scripts = list(reversed(list(script.walk_revisions())))
        self.ids = {sc.revision for sc in self.scripts}
        self.location = str(script.dir)

    def database_status(
        self, context: MigrationContext, db: Database, *, compare: bool
    ) -> DatabaseStatus:
        current = tuple(context.get_current_heads())
        where = "the database" if db.bind_key is None else f"database {db.name!r}"
        self.check_known(current, where)
        pending = self.plan(current, where)
        models_differ: bool | None = None
        diff: tuple[str, ...] = ()
        if compare and not pending:
            found = _differences(context, db)
            models_differ = bool(found)
            dialect = context.connection.dialect if context.connection else None
            diff = tuple(
                line for item in found for line in describe_difference(item, dialect)
            )
        waiting = set(pending)
        heads = set(self.heads)
        return DatabaseStatus(
            bind_key=db.bind_key,
            url=db.engine.url.render_as_string(hide_password=True),
            current=current,
            heads=self.heads,
            revisions=tuple(
                RevisionStatus(
                    revision=sc.revision,
                    down_revisions=_as_tuple(sc.down_revision),
                    message=sc.doc,
                    path=str(sc.path),
                    applied=sc.revision not in waiting,
                    is_head=sc.revision in heads,
                    is_current=sc.revision in current,
                    branch_labels=tuple(sorted(sc.branch_labels)),
                )
                for sc in self.scripts
            ),
            pending=pending,
            models_differ=models_differ,
            diff=diff,
        )

    def check_known(self, current: tuple[str, ...], where: str) -> None:
        """Fail on a version table naming a revision no file defines.

        Nothing about such a database can be worked out: which of its
        revisions are applied depends on the missing file's ancestors.
        """
        for rev in current:
            if rev not in self.ids:
                raise RuntimeError(
                    f"{where} is at revision {rev!r}, which is not in the "
                    f"migration repository {self.location!r}; restore that "
                    "revision file (check out the code that was deployed), or "
                    "run 'flask db stamp --purge REVISION' to record the "
                    "revision the schema really is at"
                )

    def plan(self, current: tuple[str, ...], where: str) -> tuple[str, ...]:
        """The revisions ``upgrade heads`` would run on ``current``, in order.

        Asked of Alembic the way its own upgrade asks it, so that the order
        is the one an upgrade follows across branches and dependencies.
        """
        from alembic.script.revision import RevisionError

        if set(current) == set(self.heads):
            return ()
        try:
            return upgrade_plan(self.script, current)
        except RevisionError as exc:
            raise RuntimeError(
                f"cannot work out what an upgrade of {where} would run from "
                f"{', '.join(current)}: {exc}; fix its version table with "
                "'flask db stamp --purge REVISION'"
            ) from exc


def upgrade_plan(script: ScriptDirectory, current: Sequence[str]) -> tuple[str, ...]:
    """The revisions ``upgrade heads`` would run from ``current``, in order.

    :raises alembic.script.revision.RevisionError: ``current`` does not fit
        the history.
    """
    from .config import revisions_between

    return tuple(revisions_between(script, tuple(current), "heads", up=True))


def _differences(context: MigrationContext, db: Database) -> list[Any]:
    from alembic.autogenerate import compare_metadata

    if db.metadata is None or context.connection is None:
        return []
    return list(compare_metadata(context, db.metadata))


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


# --------------------------------------------------------------------------
# describing autogenerate's differences


def describe_difference(diff: Any, dialect: Any = None) -> list[str]:
    """Describe one entry of Alembic's ``compare_metadata()`` list in words.

    The entries are tuples such as ``("add_column", schema, table,
    Column)``, except that the changes to one column come as a list of
    ``modify_*`` tuples; each change gets one line. Types are written as
    ``dialect`` would write them. Entries added by extensions are written
    as their kind and arguments.
    """
    if isinstance(diff, list):
        return [line for item in diff for line in describe_difference(item, dialect)]
    if not isinstance(diff, tuple) or not diff or not isinstance(diff[0], str):
        return [str(diff)]
    kind, args = diff[0], diff[1:]
    describe = _DESCRIBERS.get(kind)
    if describe is not None:
        try:
            return [describe(args, dialect)]
        except (AttributeError, IndexError, TypeError, ValueError):
            pass  # a shape this version of Alembic does not produce
    words = " ".join(_object_name(arg) for arg in args)
    return [f"{kind.replace('_', ' ')} {words}".strip()]


def _quoted(*parts: str | None) -> str:
    return "'" + ".".join(part for part in parts if part) + "'"


def _object_name(value: Any) -> str:
    name = getattr(value, "name", None)
    return _quoted(name) if isinstance(name, str) else repr(value)


def _table_of(item: Any) -> str:
    table = item.table
    return _quoted(table.schema, table.name)


def _columns(names: Iterable[Any]) -> str:
    return ", ".join(str(getattr(item, "name", item)) for item in names)


def _type_text(type_: Any, dialect: Any) -> str:
    if type_ is None:
        return "unknown type"
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:
        # A type of one dialect may not compile on another; its repr still
        # names it.
        return repr(type_)


def _default_text(default: Any) -> str:
    if default is None:
        return "none"
    arg = getattr(default, "arg", default)
    if isinstance(arg, str):  # a plain value, as in server_default="x"
        return repr(arg)
    # text("...") and reflected defaults are SQL, quotes included.
    return str(getattr(arg, "text", arg))


def _table(args: tuple[Any, ...], dialect: Any, verb: str) -> str:
    table = args[0]
    return f"{verb} table {_quoted(table.schema, table.name)}"


def _column(args: tuple[Any, ...], dialect: Any, verb: str) -> str:
    schema, table, column = args[0], args[1], args[2]
    text = f"{verb} column {_quoted(schema, table, column.name)}"
    if verb == "add":
        text += f" ({_type_text(column.type, dialect)})"
    return text


def _index(args: tuple[Any, ...], dialect: Any, verb: str) -> str:
    index = args[0]
    kind = "unique index" if index.unique else "index"
    name = f" {_quoted(index.name)}" if index.name else ""
    return f"{verb} {kind}{name} on {_table_of(index)} ({_columns(index.expressions)})"


_CONSTRAINT_KINDS = {
    "UniqueConstraint": "unique constraint",
    "CheckConstraint": "check constraint",
    "PrimaryKeyConstraint": "primary key",
    "ForeignKeyConstraint": "foreign key",
}


def _constraint(args: tuple[Any, ...], dialect: Any, verb: str) -> str:
    constraint = args[0]
    kind = _CONSTRAINT_KINDS.get(type(constraint).__name__, "constraint")
    name = f" {_quoted(constraint.name)}" if isinstance(constraint.name, str) else ""
    text = f"{verb} {kind}{name} on {_table_of(constraint)}"
    columns = getattr(constraint, "columns", None)
    if columns is not None and len(columns):
        text += f" ({_columns(columns)})"
    elements = getattr(constraint, "elements", None)
    if elements:
        targets = ", ".join(element.target_fullname for element in elements)
        text += f" -> {targets}"
    return text


def _foreign_key(args: tuple[Any, ...], dialect: Any, verb: str) -> str:
    fk = args[0]
    name = f" {_quoted(fk.name)}" if isinstance(fk.name, str) else ""
    targets = ", ".join(element.target_fullname for element in fk.elements)
    return (
        f"{verb} foreign key{name} on {_table_of(fk)} "
        f"({', '.join(fk.column_keys)}) -> {targets}"
    )


def _table_comment(args: tuple[Any, ...], dialect: Any, verb: str) -> str:
    table = args[0]
    where = _quoted(table.schema, table.name)
    if verb == "remove":
        return f"remove the comment of table {where}"
    return f"set the comment of table {where} to {table.comment!r}"


def _modification(args: tuple[Any, ...], dialect: Any, what: str) -> str:
    schema, table, column, _existing, old, new = args
    where = _quoted(schema, table, column)
    if what == "nullable":
        return f"make column {where} {'nullable' if new else 'NOT NULL'}"
    if what == "type":
        return (
            f"change the type of column {where} from "
            f"{_type_text(old, dialect)} to {_type_text(new, dialect)}"
        )
    if what == "default":
        return (
            f"change the server default of column {where} from "
            f"{_default_text(old)} to {_default_text(new)}"
        )
    return f"change the comment of column {where} from {old!r} to {new!r}"


def _bound(fn: Any, word: str) -> Any:
    return lambda args, dialect: fn(args, dialect, word)


_DESCRIBERS: dict[str, Any] = {
    "add_table": _bound(_table, "add"),
    "remove_table": _bound(_table, "remove"),
    "add_column": _bound(_column, "add"),
    "remove_column": _bound(_column, "remove"),
    "add_index": _bound(_index, "add"),
    "remove_index": _bound(_index, "remove"),
    "add_constraint": _bound(_constraint, "add"),
    "remove_constraint": _bound(_constraint, "remove"),
    "add_fk": _bound(_foreign_key, "add"),
    "remove_fk": _bound(_foreign_key, "remove"),
    "add_table_comment": _bound(_table_comment, "add"),
    "remove_table_comment": _bound(_table_comment, "remove"),
    "modify_nullable": _bound(_modification, "nullable"),
    "modify_type": _bound(_modification, "type"),
    "modify_default": _bound(_modification, "default"),
    "modify_comment": _bound(_modification, "comment"),
}


# --------------------------------------------------------------------------
# what the command prints


def exit_status(found: Sequence[DatabaseStatus]) -> int:
    """The status ``flask db status --exit-code`` exits with.

    An upgrade pending anywhere wins: the models can only be compared with
    a database once it is upgraded.
    """
    if any(db.needs_upgrade for db in found):
        return EXIT_UPGRADE_PENDING
    if any(db.models_differ for db in found):
        return EXIT_MODELS_DIFFER
    return EXIT_UP_TO_DATE


def _needs_revision(found: Sequence[DatabaseStatus]) -> bool | None:
    answers = [db.needs_revision for db in found]
    if any(answers):
        return True
    if any(answer is None for answer in answers):
        return None
    return False


def as_json(found: Sequence[DatabaseStatus]) -> str:
    """The ``--json`` output: every database, and the answers for all of them."""
    report = {
        "databases": [db.to_dict() for db in found],
        "needs_upgrade": any(db.needs_upgrade for db in found),
        "needs_revision": _needs_revision(found),
    }
    return json.dumps(report, indent=2)


def as_text(found: Sequence[DatabaseStatus], *, verbose: bool = False) -> str:
    """The text output: a block per database, then a line that sums it up."""
    blocks = ["\n".join(_database_lines(db, verbose)) for db in found]
    return "\n\n".join([*blocks, _summary(found)]) + "\n"


def _upgrade_command(db: DatabaseStatus) -> str:
    return "flask db upgrade heads" if len(db.heads) > 1 else "flask db upgrade"


def _summary(found: Sequence[DatabaseStatus]) -> str:
    behind = [db.name for db in found if db.needs_upgrade]
    differ = [db.name for db in found if db.models_differ]
    several = len(found) > 1
    if behind:
        names = f" ({', '.join(behind)})" if several else ""
        command = _upgrade_command(next(db for db in found if db.needs_upgrade))
        return f"Status: upgrade pending{names}; run '{command}'"
    if differ:
        names = f" ({', '.join(differ)})" if several else ""
        return (
            f"Status: the models differ from the database{names}; run "
            "'flask db migrate' to write a revision"
        )
    if any(db.models_differ is None for db in found):
        return "Status: at head (models not compared)"
    return "Status: up to date"


def _database_lines(db: DatabaseStatus, verbose: bool) -> list[str]:
    heads = set(db.heads)
    lines = [f"Database: {db.name} ({db.url})"]
    if db.current:
        marked = [f"{rev} (head)" if rev in heads else rev for rev in db.current]
        lines.append(f"  Current: {', '.join(marked)}")
    else:
        lines.append("  Current: none (no revision applied)")
    lines.append(f"  Heads:   {', '.join(db.heads) or 'none (no revisions yet)'}")
    lines.extend(_revision_lines(db.revisions, verbose))
    if db.pending:
        plan = list(db.pending)
        if not verbose and len(plan) > _SHOWN_PLAN:
            plan = [*plan[:3], "...", plan[-1]]
        count = len(db.pending)
        lines.append(
            f"  Upgrade plan: {', '.join(plan)} "
            f"({count} revision{'s' if count != 1 else ''}; "
            f"run '{_upgrade_command(db)}')"
        )
    else:
        lines.append("  Upgrade plan: nothing to upgrade")
    if db.needs_upgrade:
        lines.append("  Models: unknown until upgraded")
    elif db.models_differ is None:
        lines.append("  Models: not compared")
    elif not db.models_differ:
        lines.append("  Models: match the database")
    else:
        count = len(db.diff)
        lines.append(
            f"  Models: differ from the database ({count} "
            f"change{'s' if count != 1 else ''}; run 'flask db migrate'):"
        )
        lines.extend(f"    - {line}" for line in db.diff)
    return lines


def _revision_lines(revisions: Sequence[RevisionStatus], verbose: bool) -> list[str]:
    """A line per revision, oldest first; long runs collapsed unless ``verbose``.

    Without ``verbose`` the lines kept are the latest applied revisions,
    the first pending ones, and every current revision and head; each run
    of others becomes one "..." line, so that a history of thousands of
    revisions takes a screen, not thousands of lines.
    """
    shown = set(range(len(revisions)))
    if not verbose:
        applied = [i for i, rev in enumerate(revisions) if rev.applied]
        pending = [i for i, rev in enumerate(revisions) if not rev.applied]
        marked = [i for i, rev in enumerate(revisions) if rev.is_current or rev.is_head]
        shown = {
            *applied[-_SHOWN_APPLIED:],
            *pending[:_SHOWN_PENDING],
            *marked,
        }
    width = max((len(rev.revision) for rev in revisions), default=0)
    lines: list[str] = []
    hidden: list[RevisionStatus] = []
    for index, rev in enumerate(revisions):
        if index not in shown:
            hidden.append(rev)
            continue
        if hidden:
            lines.append(_hidden_line(hidden))
            hidden = []
        lines.append(_revision_line(rev, width))
    if hidden:
        lines.append(_hidden_line(hidden))
    return lines


def _revision_line(rev: RevisionStatus, width: int) -> str:
    tags = []
    if rev.is_head:
        labels = ", ".join(rev.branch_labels)
        tags.append(f"head of {labels}" if labels else "head")
    if rev.is_current:
        tags.append("current")
    text = f"  [{'x' if rev.applied else ' '}] {rev.revision:<{width}}  {rev.message}"
    return f"{text} ({', '.join(tags)})" if tags else text


def _hidden_line(hidden: Sequence[RevisionStatus]) -> str:
    applied = sum(1 for rev in hidden if rev.applied)
    pending = len(hidden) - applied
    if not pending:
        what = f"{applied} applied revision{'s' if applied != 1 else ''}"
    elif not applied:
        what = f"{pending} pending revision{'s' if pending != 1 else ''}"
    else:
        what = f"{len(hidden)} revisions ({applied} applied, {pending} pending)"
    return f"  ... {what} (--verbose lists them)"
