"""Reviewing revision files for operations that hurt in production.

A revision that runs in a second on a developer's empty database can lock a
busy table for minutes, fail halfway through on rows that exist only in
production, or break the code still running during a deploy. Those are
cheap to catch while the revision is reviewed and expensive afterwards.

:func:`lint` runs each revision's ``upgrade()`` and ``downgrade()`` offline,
against a ``MigrationContext`` of the app's dialect, with an ``op`` that
records each operation instead of running it. Recording rather than
running means no database is needed, nothing is changed, and batch
operations (which would need a reflected table offline) are seen like any
other. The rules then look at the recorded operations; a marker comment in
the revision file accepts a finding once someone has reviewed it.

Alembic is imported inside the functions: the package imports this module.
"""

from __future__ import annotations

import ast
import inspect
import io
import logging
import os
import re
import tokenize
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .state import is_multidb, repository

if TYPE_CHECKING:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory

    from .databases import Database

__all__ = ["MARKER", "RULES", "Finding", "LintReport", "lint"]

#: The comment that accepts reviewed findings, as in
#: ``# flask-db-lint: accept drop-column``.
MARKER = "flask-db-lint"

#: Each rule: why the operation hurts, and what to do instead.
RULES: dict[str, tuple[str, str]] = {
    "not-null-column": (
        "the rows already in the table have no value for it, so adding it "
        "fails on a table with data (or rewrites the table under a lock)",
        "add it nullable or with a server_default, backfill it, then make it "
        "NOT NULL in a later revision",
    ),
    "drop-table": (
        "its data is lost, and the code still running during the deploy may "
        "still use it",
        "stop using the table in one release, back it up, and drop it in a "
        "later release",
    ),
    "drop-column": (
        "its data is lost, and the code still running during the deploy may "
        "still read or write it",
        "stop using the column in one release, back it up, and drop it in a "
        "later release",
    ),
    "rename-column": (
        "the code still running during the deploy uses the old name and fails "
        "until it is replaced",
        "add the new column, copy the data, switch the code to it, and drop "
        "the old column in a later release",
    ),
    "rename-table": (
        "the code still running during the deploy uses the old name and fails "
        "until it is replaced",
        "create the new table, copy the data, switch the code to it, and drop "
        "the old table in a later release",
    ),
    "type-change": (
        "changing a column's type can rewrite the whole table under an "
        "exclusive lock, and fails if an existing value does not convert",
        "add a column of the new type, backfill it, switch the code to it, "
        "then drop the old column",
    ),
    "set-not-null": (
        "the database checks every row while holding a lock that blocks "
        "writes, and the change fails if any row is still NULL",
        "backfill the NULLs first; on PostgreSQL add a CHECK (column IS NOT "
        "NULL) NOT VALID constraint and VALIDATE it before setting NOT NULL",
    ),
    "index-not-concurrent": (
        "PostgreSQL locks the table while it works: writes wait until CREATE "
        "INDEX is done, and everything waits for DROP INDEX",
        "pass postgresql_concurrently=True, inside 'with "
        "op.get_context().autocommit_block():'",
    ),
    "foreign-key": (
        "adding it checks every existing row while holding a lock, and fails "
        "if any row points to nothing",
        "check and clean the data first (an op.execute() earlier in the same "
        "upgrade counts as that check); on PostgreSQL pass "
        "postgresql_not_valid=True and run VALIDATE CONSTRAINT later",
    ),
    "unique-constraint": (
        "building its index reads the whole table under a lock that blocks "
        "writes, and fails on existing duplicates",
        "remove duplicates first (an op.execute() earlier in the same upgrade "
        "counts as that check); on PostgreSQL build a unique index "
        "concurrently, then ADD CONSTRAINT ... UNIQUE USING INDEX",
    ),
    "empty-downgrade": (
        "'flask db downgrade' would report success and leave the schema "
        "changes in place",
        "write the downgrade, or accept this rule on the downgrade function "
        "if the revision is meant to be irreversible",
    ),
    "not-inspectable": (
        "lint cannot see what it does, so it was not checked",
        "review it by hand and accept it once reviewed; queries through "
        "op.get_bind() cannot run offline",
    ),
    "unknown-marker": (
        "a misspelt marker accepts nothing",
        f"write it as '# {MARKER}: accept RULE[, RULE...]' with the rules "
        "listed in the documentation",
    ),
}

_MARKER_RE = re.compile(rf"#\s*{re.escape(MARKER)}\s*:\s*(.*)$")


@dataclass(frozen=True)
class Finding:
    """One operation that is likely to hurt when the revision runs in production."""

    #: The rule's id, such as ``"drop-column"``.
    rule: str
    #: The id of the revision.
    revision: str
    #: The revision file.
    path: str
    #: The line of the revision file the operation is called on (``None``
    #: when it is not known).
    line: int | None
    #: What the revision does and why it hurts, in one line.
    message: str
    #: The safer way to do it.
    alternative: str
    #: The table concerned, as ``schema.table`` when a schema is given.
    table: str | None = None
    #: The column concerned, if any.
    column: str | None = None
    #: The bind key of the database, for a multiple-database repository
    #: (``None`` for the default database).
    database: str | None = None
    #: Whether a marker comment in the revision file accepts it.
    accepted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The finding as a dict of plain values, for JSON."""
        return asdict(self)

    def __str__(self) -> str:
        path = _shown(self.path)
        where = f"{path}:{self.line}" if self.line else path
        about = f"revision {self.revision}"
        if self.database is not None:
            about += f", database {self.database!r}"
        text = f"{where}: {self.rule} ({about}): {self.message}. Safer: "
        text += f"{self.alternative}."
        return text + " [accepted]" if self.accepted else text


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it is inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith(os.pardir) else relative


class LintReport(list[Finding]):
    """The findings of :func:`lint`, in revision order, oldest first.

    It is a list of :class:`Finding`; :attr:`revisions` tells what was
    linted, so that an empty list can say how much was found clean.
    """

    def __init__(self, findings: Iterable[Finding], revisions: Sequence[str]) -> None:
        super().__init__(findings)
        #: The ids of the revisions linted, oldest first.
        self.revisions: list[str] = list(revisions)

    @property
    def problems(self) -> list[Finding]:
        """The findings no marker accepts."""
        return [finding for finding in self if not finding.accepted]

    def summary(self) -> str:
        """One line counting the problems, as ``flask db lint`` ends with."""
        problems = len(self.problems)
        accepted = len(self) - problems
        linted = _count(len(self.revisions), "revision")
        if not problems:
            also = f" ({accepted} accepted)" if accepted else ""
            return f"No problems found in {linted}{also}."
        return f"{_count(problems, 'problem')} in {linted} ({accepted} accepted)"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


# --------------------------------------------------------------------------
# the revision file's own text: line numbers and marker comments


@dataclass
class _Source:
    """What the markers of one revision file accept, by line."""

    lines: list[str] = field(default_factory=list)
    statements: list[ast.stmt] = field(default_factory=list)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(
        default_factory=dict
    )
    #: line -> rules accepted by a marker comment on that line
    marks: dict[int, set[str]] = field(default_factory=dict)
    #: rules accepted for the whole revision by a top-level marker
    everywhere: set[str] = field(default_factory=set)
    #: (line, what is wrong) of markers that accept nothing
    unknown: list[tuple[int, str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: str) -> _Source:
        source = cls()
        try:
            with open(path, "rb") as f:
                data = f.read()
            tree = ast.parse(data, filename=path)
            comments = [
                token
                for token in tokenize.tokenize(io.BytesIO(data).readline)
                if token.type == tokenize.COMMENT
            ]
        except (OSError, SyntaxError, ValueError, tokenize.TokenError):
            return source  # importing the file reports what is wrong with it
        source.lines = data.decode("utf-8", "replace").splitlines()
        source.statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
        top_defs = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                source.functions[node.name] = node
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                top_defs.append(source._extent(node))
        for token in comments:
            found = _MARKER_RE.search(token.string)
            if found is None:
                continue
            line, column = token.start
            rules = source._parse(line, found.group(1))
            at_top = column == 0 and not any(a <= line <= b for a, b in top_defs)
            if at_top:
                source.everywhere |= rules
            else:
                source.marks.setdefault(line, set()).update(rules)
        return source

    def _parse(self, line: int, text: str) -> set[str]:
        # Anything after " -- " is the reviewer's reason.
        words = text.split("--", 1)[0].split(None, 1)
        if len(words) != 2 or words[0] != "accept":
            what = f"the marker {text.strip()!r} does not read 'accept RULE'"
            self.unknown.append((line, what))
            return set()
        rules = {name for name in re.split(r"[,\s]+", words[1]) if name}
        for name in sorted(rules - set(RULES)):
            self.unknown.append((line, f"the marker names {name!r}, not a rule"))
        return rules & set(RULES)

    def _comments_above(self, line: int) -> set[int]:
        """The comment-only lines right above ``line``."""
        found = set()
        number = line - 1
        while 1 <= number <= len(self.lines):
            if not self.lines[number - 1].lstrip().startswith("#"):
                break
            found.add(number)
            number -= 1
        return found

    def _extent(self, node: ast.stmt) -> tuple[int, int]:
        """The lines of a def or class, with its decorators and trailing comments."""
        first = min([node.lineno, *(d.lineno for d in _decorators(node))])
        last = node.end_lineno or node.lineno
        # Comments indented under the last statement still belong to it.
        while last < len(self.lines) and (
            not self.lines[last].strip()
            or (
                self.lines[last].startswith((" ", "\t"))
                and self.lines[last].strip().startswith("#")
            )
        ):
            last += 1
        return first, last

    def _statement_lines(self, line: int) -> set[int]:
        """The lines a marker for the operation called on ``line`` may be on."""
        containing = [
            node
            for node in self.statements
            if node.lineno <= line <= (node.end_lineno or node.lineno)
        ]
        if not containing:
            return {line}
        node = min(containing, key=lambda n: (n.end_lineno or n.lineno) - n.lineno)
        last = node.end_lineno or node.lineno
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
            # A compound statement (with, if, for): only its header.
            last = max(node.lineno, body[0].lineno - 1)
        return set(range(node.lineno, last + 1)) | self._comments_above(node.lineno)

    def _function_lines(self, names: Iterable[str]) -> set[int]:
        found: set[int] = set()
        for name in names:
            node = self.functions.get(name)
            if node is not None:
                first, last = self._extent(node)
                found |= set(range(first, last + 1)) | self._comments_above(first)
        return found

    def accepts(self, finding: Finding, functions: Sequence[str]) -> bool:
        """Tell whether a marker in the file accepts ``finding``."""
        if finding.rule in self.everywhere:
            return True
        if finding.rule == "empty-downgrade":
            lines = self._function_lines(functions)
        elif finding.line is not None:
            lines = self._statement_lines(finding.line)
        else:
            return False
        return any(finding.rule in self.marks.get(n, ()) for n in lines)

    def function_line(self, names: Sequence[str]) -> int | None:
        for name in names:
            node = self.functions.get(name)
            if node is not None:
                return node.lineno
        return None


def _decorators(node: ast.stmt) -> list[ast.expr]:
    return list(getattr(node, "decorator_list", []))


# --------------------------------------------------------------------------
# running a revision offline and recording what it does


@dataclass
class _Recorded:
    operation: Any
    line: int | None


class _Recorder:
    """Collects the operations a revision invokes, with their line."""

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self.operations: list[_Recorded] = []
        self._seen: dict[str, bool] = {}

    def in_revision(self, filename: str) -> bool:
        known = self._seen.get(filename)
        if known is None:
            known = self._seen[filename] = os.path.realpath(filename) == self.path
        return known

    def record(self, operation: Any) -> None:
        # The innermost frame in the revision file is the call of op.<name>(),
        # also when the revision calls it through a helper of its own.
        frame = inspect.currentframe()
        line = None
        while frame is not None:
            if self.in_revision(frame.f_code.co_filename):
                line = frame.f_lineno
                break
            frame = frame.f_back
        del frame
        self.operations.append(_Recorded(operation, line))

    def failure_line(self, exc: BaseException) -> int | None:
        line = None
        tb = exc.__traceback__
        while tb is not None:
            if self.in_revision(tb.tb_frame.f_code.co_filename):
                line = tb.tb_lineno
            tb = tb.tb_next
        return line


def _offline_context(dialect_name: str) -> MigrationContext:
    from alembic import context as environment
    from alembic.runtime.migration import log as alembic_log

    # Alembic logs "Context impl ..." for each context; lint makes two per
    # revision, and an app logging at INFO would show them all.
    def quiet(record: logging.LogRecord) -> bool:
        return False

    alembic_log.addFilter(quiet)
    try:
        # Configured through the EnvironmentContext lint runs in (offline),
        # so that a revision asking context.get_context() for the dialect
        # gets this context, as it would under 'flask db upgrade'.
        environment.configure(dialect_name=dialect_name, output_buffer=io.StringIO())
        return environment.get_context()
    finally:
        alembic_log.removeFilter(quiet)


def _install_recorder(operations: Operations, recorder: _Recorder) -> None:
    """Make ``operations`` (the object behind ``alembic.op``) record, not run.

    ``Operations.context()`` always builds a plain ``Operations``, and the
    ``op`` module proxies its methods; so the instance's own ``invoke`` and
    ``batch_alter_table`` are replaced rather than subclassed.
    """
    from alembic.operations import Operations
    from alembic.operations.ops import CreateTableOp

    context = operations.migration_context

    def invoke(operation: Any) -> Any:
        recorder.record(operation)
        if isinstance(operation, CreateTableOp):
            # Revisions use the returned Table, e.g. for op.bulk_insert().
            return operation.to_table(context)
        return None

    @contextmanager
    def batch_alter_table(*args: Any, **kwargs: Any) -> Iterator[Any]:
        bound = inspect.signature(Operations.batch_alter_table).bind(
            operations, *args, **kwargs
        )
        # Nothing is run, so there is no table to recreate, and recreating
        # offline would need a reflected table.
        bound.arguments["recreate"] = "never"
        with Operations.batch_alter_table(*bound.args, **bound.kwargs) as batch:
            batch.invoke = invoke  # type: ignore[method-assign]
            yield batch

    operations.invoke = invoke  # type: ignore[method-assign]
    operations.batch_alter_table = batch_alter_table  # type: ignore[method-assign]


def _run_offline(
    function: Callable[..., Any], args: tuple[str, ...], dialect: str, path: str
) -> tuple[_Recorder, BaseException | None]:
    """Call a revision's upgrade or downgrade with a recording ``op``."""
    from alembic.operations import Operations

    recorder = _Recorder(path)
    with Operations.context(_offline_context(dialect)) as operations:
        _install_recorder(operations, recorder)
        try:
            function(*args)
        except Exception as exc:
            return recorder, exc
    return recorder, None


# --------------------------------------------------------------------------
# the rules


def _table(name: str | None, schema: str | None) -> str | None:
    if name is None:
        return None
    return f"{schema}.{name}" if schema else name


def _column_name(column: Any) -> str:
    return str(getattr(column, "name", column))


@dataclass
class _Check:
    """What the rules know while reading one database's operations."""

    dialect: str
    #: (schema, table) of the tables created earlier in the linted range
    created: set[tuple[str | None, str]]
    #: whether an op.execute() has run earlier in this upgrade
    executed: bool = False

    def is_new(self, table: str | None, schema: str | None) -> bool:
        return table is not None and (schema, table) in self.created


class _Hit(NamedTuple):
    """A rule an operation breaks, and what the operation does."""

    rule: str
    what: str
    table: str | None = None
    column: str | None = None


def _check(operation: Any, state: _Check) -> list[_Hit]:
    """The rules an operation breaks."""
    from alembic.operations import ops

    table = _table(*_target(operation))
    if isinstance(operation, ops.ExecuteSQLOp):
        state.executed = True
    elif isinstance(operation, ops.CreateTableOp):
        state.created.add((operation.schema, operation.table_name))
    elif state.is_new(*_target(operation)):
        # A table created in the linted range holds no production data yet.
        if isinstance(operation, ops.RenameTableOp):
            state.created.add((operation.schema, operation.new_table_name))
    elif isinstance(operation, ops.RenameTableOp):
        what = f"renames table {table} to {operation.new_table_name}"
        return [_Hit("rename-table", what, table)]
    elif isinstance(operation, ops.AddColumnOp):
        column = operation.column
        filled = any(
            getattr(column, name, None) is not None
            for name in ("server_default", "computed", "identity")
        )
        if column.nullable is False and not filled:
            name = str(column.name)
            what = f"adds NOT NULL column {table}.{name} without a server_default"
            return [_Hit("not-null-column", what, table, name)]
    elif isinstance(operation, ops.DropTableOp):
        return [_Hit("drop-table", f"drops table {table}", table)]
    elif isinstance(operation, ops.DropColumnOp):
        name = operation.column_name
        return [_Hit("drop-column", f"drops column {table}.{name}", table, name)]
    elif isinstance(operation, ops.AlterColumnOp):
        return _check_alter(operation, table)
    elif isinstance(operation, (ops.CreateIndexOp, ops.DropIndexOp)):
        return _check_index(operation, table, state)
    elif isinstance(operation, ops.CreateForeignKeyOp):
        not_valid = state.dialect == "postgresql" and operation.kw.get(
            "postgresql_not_valid"
        )
        if not state.executed and not not_valid:
            constraint = operation.constraint_name or "a foreign key"
            what = f"adds {constraint} on {table} without checking the data first"
            return [_Hit("foreign-key", what, table)]
    elif isinstance(operation, ops.CreateUniqueConstraintOp):
        if not state.executed:
            columns = ", ".join(_column_name(c) for c in operation.columns)
            what = (
                f"adds a unique constraint on {table} ({columns}) without "
                "checking for duplicates first"
            )
            return [_Hit("unique-constraint", what, table)]
    return []


def _target(operation: Any) -> tuple[str | None, str | None]:
    """The (table, schema) an operation changes."""
    if hasattr(operation, "source_table"):  # create_foreign_key
        return operation.source_table, operation.kw.get("source_schema")
    return getattr(operation, "table_name", None), getattr(operation, "schema", None)


def _check_alter(operation: Any, table: str | None) -> list[_Hit]:
    name = operation.column_name
    hits = []
    if operation.modify_name is not None:
        what = f"renames column {table}.{name} to {operation.modify_name}"
        hits.append(_Hit("rename-column", what, table, name))
    if operation.modify_type is not None:
        what = f"changes the type of {table}.{name} to {operation.modify_type!r}"
        hits.append(_Hit("type-change", what, table, name))
    if operation.modify_nullable is False:
        what = f"makes {table}.{name} NOT NULL"
        hits.append(_Hit("set-not-null", what, table, name))
    return hits


def _check_index(operation: Any, table: str | None, state: _Check) -> list[_Hit]:
    from alembic.operations import ops

    if state.dialect != "postgresql" or operation.kw.get("postgresql_concurrently"):
        return []
    verb = "creates" if isinstance(operation, ops.CreateIndexOp) else "drops"
    on = f" on {table}" if table else ""
    what = f"{verb} index {operation.index_name}{on} without CONCURRENTLY"
    return [_Hit("index-not-concurrent", what, table)]


# --------------------------------------------------------------------------
# linting revisions


@dataclass
class _Revision:
    """One revision being linted, and what lint found in it."""

    script: Script
    multidb: bool
    source: _Source
    findings: list[Finding] = field(default_factory=list)

    @property
    def path(self) -> str:
        return str(self.script.path)

    def add(
        self,
        rule: str,
        what: str,
        line: int | None,
        database: str | None,
        *,
        table: str | None = None,
        column: str | None = None,
        functions: Sequence[str] = (),
        why: str | None = None,
    ) -> None:
        default_why, alternative = RULES[rule]
        finding = Finding(
            rule=rule,
            revision=self.script.revision,
            path=self.path,
            line=line,
            message=f"{what}: {why or default_why}",
            alternative=alternative,
            table=table,
            column=column,
            database=database,
        )
        if self.source.accepts(finding, functions):
            finding = Finding(**{**finding.as_dict(), "accepted": True})
        self.findings.append(finding)

    def function(self, name: str) -> Callable[..., Any] | None:
        found = getattr(self.script.module, name, None)
        return found if callable(found) else None

    def lint(self, db: Database, created: set[tuple[str | None, str]]) -> None:
        """Lint this revision for one database."""
        database = db.bind_key if self.multidb else None
        dialect = str(db.engine.dialect.name)
        args = (db.name,) if self.multidb else ()
        # A multiple-database revision's downgrade() dispatches to
        # downgrade_<name>(); a marker on either accepts empty-downgrade.
        downgrade_names = ["downgrade"]
        if self.multidb:
            downgrade_names.insert(0, f"downgrade_{db.name}")

        try:
            upgrade = self.function("upgrade")
            downgrade = self.function("downgrade")
        except Exception as exc:
            self._not_inspectable("importing the file", exc, None, database)
            return
        if upgrade is None:
            self.add("not-inspectable", "has no upgrade() function", None, database)
            return

        recorder, failure = _run_offline(upgrade, args, dialect, self.path)
        state = _Check(dialect, created)
        for recorded in recorder.operations:
            for hit in _check(recorded.operation, state):
                self.add(
                    hit.rule,
                    hit.what,
                    recorded.line,
                    database,
                    table=hit.table,
                    column=hit.column,
                )
        if failure is not None:
            where = recorder.failure_line(failure)
            self._not_inspectable("upgrade() run offline", failure, where, database)
            return

        line = self.source.function_line(downgrade_names)
        if downgrade is None:
            self.add(
                "empty-downgrade",
                "has no downgrade() function",
                line,
                database,
                functions=downgrade_names,
            )
            return
        undo, failure = _run_offline(downgrade, args, dialect, self.path)
        if isinstance(failure, NotImplementedError):
            self.add(
                "empty-downgrade",
                "cannot be downgraded: downgrade() raises NotImplementedError",
                line,
                database,
                functions=downgrade_names,
                why="'flask db downgrade' past it fails, so a bad deploy cannot "
                "be rolled back with it",
            )
        elif failure is not None:
            where = undo.failure_line(failure)
            self._not_inspectable("downgrade() run offline", failure, where, database)
        elif recorder.operations and not undo.operations:
            self.add(
                "empty-downgrade",
                "has an upgrade but its downgrade does nothing",
                line,
                database,
                functions=downgrade_names,
            )

    def _not_inspectable(
        self, doing: str, exc: BaseException, line: int | None, database: str | None
    ) -> None:
        detail = " ".join(str(exc).split()) or "no message"
        self.add(
            "not-inspectable",
            f"{doing} raised {type(exc).__name__} ({detail})",
            line,
            database,
        )


def _oldest_first(scripts: Iterable[Script]) -> list[Script]:
    # Alembic walks from the heads down; reversed, parents come first.
    return list(reversed(list(scripts)))


def _in_range(script: ScriptDirectory, rev_range: str) -> list[Script]:
    """The revisions of an explicit range, oldest first."""
    from alembic.util import CommandError

    text = rev_range.strip()
    if text.count(":") > 1 or not text:
        raise RuntimeError(
            f"invalid revision range {rev_range!r}; give one revision, or "
            "START:END such as 'base:heads' or 'ae1027a6acf:head'"
        )
    try:
        if ":" not in text:
            return [sc for sc in script.get_revisions(text) if sc is not None]
        start, end = text.split(":")
        found = _oldest_first(script.walk_revisions(start or "base", end or "heads"))
        # START is where the database is, as in 'upgrade --sql START:END':
        # its own revisions are already applied, so they are not reviewed,
        # and tables they created count as existing ones.
        applied = {sc.revision for sc in script.get_revisions(start or "base") if sc}
        return [sc for sc in found if sc.revision not in applied]
    except CommandError as exc:
        raise RuntimeError(
            f"{str(exc).rstrip('.')}; 'flask db history' lists the revisions"
        ) from exc


def _pending(
    directory: str | os.PathLike[str] | None,
    script: ScriptDirectory,
    dbs: Sequence[Database],
) -> dict[str, set[str]]:
    """The ids of the revisions each database does not have yet, by name."""
    from alembic.script.revision import RevisionError
    from sqlalchemy.exc import SQLAlchemyError

    from .databases import each_database
    from .errors import describe
    from .migration_status import upgrade_plan

    def heads(context: MigrationContext, db: Database) -> tuple[str, ...]:
        return tuple(context.get_current_heads())

    try:
        found = each_database(directory, heads)
    except (SQLAlchemyError, OSError) as exc:
        # Not only driver errors: an async URL on a synchronous engine fails
        # with MissingGreenlet when connecting.
        raise RuntimeError(
            f"cannot read the current revision from the database ({describe(exc)}); "
            "start the database or fix its URL, or give a revision range such "
            "as 'base:heads' to lint without a database"
        ) from exc
    current: dict[str | None, tuple[str, ...]] = (
        found if isinstance(found, dict) else {None: found}
    )
    pending: dict[str, set[str]] = {}
    for db in dbs:
        try:
            pending[db.name] = set(upgrade_plan(script, current.get(db.bind_key, ())))
        except RevisionError as exc:
            raise RuntimeError(
                f"cannot tell which revisions are pending: {exc}; give a "
                "revision range such as 'base:heads' instead"
            ) from exc
    return pending


def _selected(rules: Iterable[str] | None, ignore: Iterable[str] | None) -> set[str]:
    chosen = set(RULES) if rules is None else set(rules)
    dropped = set(ignore or ())
    unknown = sorted((chosen | dropped) - set(RULES))
    if unknown:
        raise RuntimeError(
            f"unknown lint rule {', '.join(map(repr, unknown))}; the rules are "
            f"{', '.join(RULES)}"
        )
    return chosen - dropped


def lint(
    directory: str | os.PathLike[str] | None = None,
    rev_range: str | None = None,
    *,
    x_arg: str | Sequence[str] | None = None,
    rules: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
) -> LintReport:
    """Review revisions for operations likely to hurt in production.

    Each revision's ``upgrade()`` and ``downgrade()`` is run offline, for the
    dialect of each database, with an ``op`` that records the operations
    instead of running them; the rules are checked
    against what was recorded. Nothing is changed. See :doc:`lint` for the
    rules and for the marker comment that accepts a reviewed finding.

    :param rev_range: the revisions to lint, in Alembic's syntax: one
        revision (``"ae1027a6acf"``, ``"head"``), or ``START:END``: what an
        upgrade from ``START`` to ``END`` would run (``"base:heads"``,
        ``"ae1027a6acf:head"``, which leaves out ``ae1027a6acf``). This reads
        only the revision files. By default, the revisions each database
        does not have yet, which means reading its version table.
    :param x_arg: ``key=value`` strings for revisions that read
        ``context.get_x_argument()``.
    :param rules: check only these rules.
    :param ignore: do not check these rules.
    :returns: a :class:`LintReport`, the list of findings, accepted ones
        included (with ``accepted=True``). A finding is not an error: the
        function returns normally.
    :raises RuntimeError: an unknown rule, a mistake in the app's setup or
        in the history. Alembic's ``CommandError``, database errors and the
        ``SyntaxError`` of a broken revision file propagate too; ``flask db
        lint`` turns each into an ``Error:`` line and exit status 1.
    """
    from alembic.runtime.environment import EnvironmentContext

    from .config import app_config, script_directory
    from .databases import databases
    from .errors import repository_errors_named

    wanted = _selected(rules, ignore)
    path = repository(directory)
    multidb = is_multidb(path)
    config = app_config(directory, x_arg=x_arg)
    script = script_directory(config)
    with repository_errors_named(path):
        script.get_heads()  # reads the history: a broken one fails here
    dbs = databases(multidb)
    if rev_range is None:
        pending = _pending(directory, script, dbs)
        plan = [
            (sc, [db for db in dbs if sc.revision in pending[db.name]])
            for sc in _oldest_first(script.walk_revisions())
        ]
        plan = [(sc, found) for sc, found in plan if found]
    else:
        plan = [(sc, list(dbs)) for sc in _in_range(script, rev_range)]

    created: dict[str, set[tuple[str | None, str]]] = {db.name: set() for db in dbs}
    findings: list[Finding] = []
    # Revisions may ask 'from alembic import context' whether they run
    # offline (they do) and for the -x arguments.
    with EnvironmentContext(config, script, as_sql=True):
        for sc, targets in plan:
            revision = _Revision(sc, multidb, _Source.read(str(sc.path)))
            for line, what in revision.source.unknown:
                revision.add("unknown-marker", what, line, None)
            for db in targets:
                revision.lint(db, created[db.name])
            in_file_order = sorted(revision.findings, key=lambda f: f.line or 0)
            findings.extend(f for f in in_file_order if f.rule in wanted)
    return LintReport(findings, [sc.revision for sc, _ in plan])
