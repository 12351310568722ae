"""Exception types and the boundary that turns failures into exit status 1.

The command functions are called from two kinds of places: the ``flask db``
command line, and Python code such as deploy scripts. Both want the same
thing when a migration command fails because of something the user can fix:
one readable line on stderr, exit status 1 when nothing handles it, and no
traceback. :func:`catch_errors` is that boundary; everything below it raises
ordinary exceptions.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    import configparser

__all__ = [
    "CommandFailed",
    "MigrateNotSetUp",
    "catch_errors",
    "describe",
    "log",
    "repository_errors_named",
]

log = logging.getLogger("flask_migrate_alt")

P = ParamSpec("P")
R = TypeVar("R")


class MigrateNotSetUp(RuntimeError):
    """The current Flask app has no :class:`~flask_migrate_alt.Migrate`."""


class CommandFailed(SystemExit):
    """A migration command failed; the message has been written to stderr.

    It is a :class:`SystemExit` so that an unhandled failure in a deploy
    script ends the process with status 1 and no traceback, just as the
    ``flask db`` command does. Python callers can still catch it; the original
    exception is kept as ``__cause__`` and the one-line text as
    :attr:`message`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(1)
        #: The one-line description of what went wrong.
        self.message = message

    def __str__(self) -> str:
        return self.message


def _handled() -> tuple[type[BaseException], ...]:
    # Imported here because importing the package must not import Alembic.
    import configparser

    from alembic.script.revision import RevisionError
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    # SyntaxError and ImportError come from loading a broken env.py or
    # revision file: a mistake in the user's files, not in this package.
    # OSError: a path that is a file, a folder that cannot be written, or an
    # async driver's refused connection.
    # RevisionError: a revision history Alembic cannot read (a cycle, a
    # branch label used twice); configparser.Error: a malformed alembic.ini.
    return (
        CommandError,
        RevisionError,
        configparser.Error,
        RuntimeError,
        DBAPIError,
        SyntaxError,
        ImportError,
        OSError,
    )


def _library_dirs() -> tuple[str, ...]:
    import alembic
    import flask
    import sqlalchemy

    modules = (alembic.__file__, sqlalchemy.__file__, flask.__file__, __file__)
    return tuple(os.path.dirname(path) + os.sep for path in modules if path)


def _user_frame(exc: BaseException) -> str | None:
    """Return "file, line N" of the innermost frame outside the libraries.

    Used to point at the revision file or env.py that failed to import.
    """
    import traceback

    libraries = _library_dirs()
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        path = frame.filename
        if path.startswith("<") or path.startswith(libraries):
            continue
        found = f"{path}, line {frame.lineno}"
    return found


def _revision_frame(exc: BaseException) -> str | None:
    """Name the revision file ``exc`` was raised in, if any.

    Alembic runs revision files as modules with ``revision`` and
    ``down_revision`` globals; the innermost frame of such a module is where
    the migration failed.
    """
    found = None
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals
        if "revision" in module and "down_revision" in module:
            found = (
                f"revision {module['revision']} "
                f"({tb.tb_frame.f_code.co_filename}, line {tb.tb_lineno})"
            )
        tb = tb.tb_next
    return found


def _env_frame(exc: BaseException) -> str | None:
    """Name the line of the repository's env.py ``exc`` went through, if any.

    Alembic runs env.py as a module named ``env_py``.
    """
    found = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == "env_py":
            found = f"{tb.tb_frame.f_code.co_filename}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _explain(exc: BaseException) -> str | None:
    """Messages for mistakes Alembic reports obscurely, or with a traceback."""
    text = str(exc)
    if text.startswith("Multiple head revisions are present"):
        return (
            "the revision history has several heads; run 'flask db merge heads' "
            "to join them, or 'flask db upgrade heads' to apply every head"
        )
    if text == "Target database is not up to date.":
        # Also what a 'flask db migrate' that waited for another one sees.
        return (
            "the database is not up to date: it is not at the head revision, "
            "and autogenerate compares the models with a database at the head; "
            "run 'flask db upgrade' first"
        )
    cause = str(exc.__cause__ or "")
    if cause.startswith("Multiple revisions start with"):
        # Alembic words an ambiguous prefix as "Can't locate revision".
        return f"{cause.rstrip('.')}; give more of the revision id"
    env = _env_frame(exc)
    if isinstance(exc, ValueError) and (
        "get_x_argument" in _frame_names(exc)
        or (env and "dictionary update sequence" in text)
    ):
        where = f" ({env})" if env else ""
        return (
            f"env.py{where} expects every -x/--x-arg value as key=value; check "
            "the -x options given to this command"
        )
    return None


def _frame_names(exc: BaseException) -> list[str]:
    names = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return names


def _is_user_error(exc: BaseException) -> bool:
    return (
        isinstance(exc, _handled())
        or _revision_frame(exc) is not None
        or _env_frame(exc) is not None
        or _explain(exc) is not None
    )


def describe(exc: BaseException) -> str:
    """Return the one-line text used for ``exc`` in an ``Error:`` line.

    Database driver errors carry the SQL statement, its parameters and a
    link to SQLAlchemy's documentation; only the driver's own message is
    useful to someone running a migration, and it never contains the
    connection password. Multi-line messages are joined into one line.
    """
    from sqlalchemy.exc import DBAPIError

    explained = _explain(exc)
    if explained is not None:
        return explained
    if isinstance(exc, DBAPIError):
        detail = str(exc.orig).strip() or type(exc.orig).__name__
        text = f"database error: {detail}"
    elif isinstance(exc, SyntaxError):
        text = f"syntax error in {exc.filename}, line {exc.lineno}: {exc.msg}"
    elif isinstance(exc, ImportError):
        where = _user_frame(exc)
        text = f"{exc} (in {where})" if where else str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        target = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{target}"
    elif not isinstance(exc, _handled()):
        # A mistake in a revision's own code (NameError, AttributeError, ...)
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = str(exc).strip() or type(exc).__name__
    where = _revision_frame(exc)
    if where is None and not isinstance(exc, _handled()):
        env = _env_frame(exc)
        where = f"env.py ({env})" if env else None
    if where and not isinstance(exc, (SyntaxError, ImportError)):
        text = f"{text} [in {where}]"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines)


def _show_traceback() -> bool:
    value = os.environ.get("FLASK_DEBUG", "")
    return value.lower() not in ("", "0", "false", "no")


def catch_errors(f: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command function so that user errors end it cleanly.

    Alembic's :class:`~alembic.util.CommandError`, :class:`RuntimeError`,
    database errors, and the :class:`SyntaxError` or :class:`ImportError` of
    a broken env.py or revision file, raised by ``f``, are written as one
    ``Error: ...`` line to stderr and re-raised as :class:`CommandFailed`
    (exit status 1), with the original exception as ``__cause__``; so is
    any exception raised by a revision's own code, and the line then names
    the revision, its file and the line that failed. With
    ``FLASK_DEBUG`` set, the traceback is written too. Anything else
    propagates unchanged, and the return value of ``f`` is returned.
    """

    @functools.wraps(f)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return f(*args, **kwargs)
        except Exception as exc:
            if not _is_user_error(exc):
                raise
            message = describe(exc)
            if _show_traceback():
                import traceback

                traceback.print_exception(type(exc), exc, exc.__traceback__)
            sys.stderr.write(f"Error: {message}\n")
            sys.stderr.flush()
            raise CommandFailed(message) from exc

    return wrapper


# Alembic's warnings: before the KeyError of a missing down_revision, and
# when two files define the same revision id (the last one read wins).
_NOT_PRESENT = re.compile(r"^Revision (\S+) referenced from .* is not present")
_DUPLICATE = re.compile(r"^Revision (\S+) is present more than once")
_LABEL_USED = re.compile(
    r"^Branch name '(.+)' in revision (\S+) already used by revision (\S+)$"
)


def _revision_files(directory: str | None) -> Iterator[tuple[dict[str, Any], str]]:
    """(identifiers, absolute path) of each revision file in the version folders
    of ``directory`` whose identifiers can be read without importing it."""
    from .paths import is_revision_file, read_identifiers, version_folders

    if directory is None:
        return
    for folder in version_folders(directory):
        for path in sorted(folder.glob("*.py")):
            found = is_revision_file(path.name) and read_identifiers(path)
            if found:
                yield found, os.path.abspath(path)


def _ids(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value or ())


def _referencing(directory: str | None, missing: str) -> tuple[str, str] | None:
    """(revision id, file) of a revision file that names ``missing`` as its
    down_revision or in depends_on, read from the version folders' files."""
    for found, path in _revision_files(directory):
        named = _ids(found["down_revision"]) + _ids(found["depends_on"])
        if missing in named:
            return found["revision"], path
    return None


def _defining(directory: str | None, revision: str) -> list[str]:
    """The files that define revision id ``revision``."""
    return [
        path
        for found, path in _revision_files(directory)
        if found["revision"] == revision
    ]


def _missing_revision(directory: str | None, exc: Exception) -> RuntimeError | None:
    missing = exc.args[0] if len(exc.args) == 1 else None
    if isinstance(exc, UserWarning):
        warned = _NOT_PRESENT.match(str(missing))
        missing = warned.group(1) if warned else None
    found = _referencing(directory, missing) if isinstance(missing, str) else None
    if found is None:
        return None
    revision, path = found
    return RuntimeError(
        f"revision {revision} names down_revision {missing!r}, which no "
        f"revision file defines; fix down_revision in {path} or restore "
        "the missing revision"
    )


def _duplicate_revision(directory: str | None, exc: Exception) -> RuntimeError | None:
    warned = _DUPLICATE.match(str(exc))
    if warned is None:
        return None
    revision = warned.group(1)
    files = _defining(directory, revision)
    where = " and ".join(files) if len(files) > 1 else "two revision files"
    return RuntimeError(
        f"revision id {revision!r} is defined twice, in {where}; give one of "
        "them a new revision id (and change the down_revision of any revision "
        "that follows it)"
    )


def _unreadable_history(directory: str | None, exc: Exception) -> RuntimeError | None:
    """Name the files behind a cycle or a branch label used twice."""
    from alembic.script.revision import CycleDetected, LoopDetected, RevisionError

    error = exc if isinstance(exc, RevisionError) else exc.__cause__
    if isinstance(error, LoopDetected):
        [revision] = error.revisions
        named = ", ".join(_defining(directory, revision)) or "its file"
        field = (
            "depends_on" if "Dependency" in type(error).__name__ else "down_revision"
        )
        return RuntimeError(
            f"revision {revision} names itself in its {field} ({named}); "
            f"set {field} to the revision(s) it follows"
        )
    if isinstance(error, CycleDetected):
        revisions = list(error.revisions)
        files = [path for rev in revisions for path in _defining(directory, rev)]
        where = f" ({', '.join(files)})" if files else ""
        field = (
            "depends_on" if "Dependency" in type(error).__name__ else "down_revision"
        )
        return RuntimeError(
            f"the {field} values of revisions {', '.join(revisions)}{where} form "
            f"a cycle; fix {field} so that each revision follows an older one "
            "and the first has down_revision = None"
        )
    used = _LABEL_USED.match(str(error)) if isinstance(error, RevisionError) else None
    if used is not None:
        label, second, first = used.groups()
        firsts, seconds = _defining(directory, first), _defining(directory, second)
        if not seconds:
            # The revision being written: its file is gone again.
            where = f" ({', '.join(firsts)})" if firsts else ""
            return RuntimeError(
                f"branch label {label!r} is already used by revision "
                f"{first}{where}; choose another branch label"
            )
        both = " and ".join(dict.fromkeys([*firsts, *seconds]))
        return RuntimeError(
            f"branch label {label!r} is used by revisions {first} and "
            f"{second} ({both}); a label names one branch, so remove it from "
            "one of them or choose another label"
        )
    return None


def _bad_ini(directory: str | None, exc: configparser.Error) -> RuntimeError:
    """Say where alembic.ini is malformed and what to change."""
    import configparser

    ini = os.path.join(directory, "alembic.ini") if directory else "alembic.ini"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        what = (
            f"{exc.source}, line {exc.lineno}: {exc.line.strip()!r} comes before "
            "any [section] header; alembic.ini must start with a section header "
            "such as [alembic]"
        )
    elif isinstance(exc, configparser.DuplicateOptionError):
        what = (
            f"{exc.source}, line {exc.lineno}: option {exc.option!r} is set a "
            f"second time in section [{exc.section}]; remove one of the two lines"
        )
    elif isinstance(exc, configparser.DuplicateSectionError):
        what = (
            f"{exc.source}, line {exc.lineno}: section [{exc.section}] appears "
            "a second time; merge the two sections into one"
        )
    elif isinstance(exc, configparser.InterpolationError):
        detail = str(exc).splitlines()[0].rstrip(".")
        what = (
            f"{ini}: option {exc.option!r} in section [{exc.section}] has a bad "
            f"%-substitution ({detail}); write a literal % as %%, as in "
            "file_template = %%(rev)s_%%(slug)s"
        )
    else:
        detail = " ".join(str(exc).split())
        what = f"{ini} cannot be read: {detail}"
    return RuntimeError(f"malformed alembic.ini: {what}")


@contextmanager
def repository_errors_named(directory: str | None = None) -> Iterator[None]:
    """Turn Alembic's obscure errors about a repository's files into clear ones.

    Each becomes a :class:`RuntimeError` saying which file to fix and how:

    * a down_revision that no file defines: Alembic warns "Revision X
      referenced from ... is not present" and then fails with a bare
      ``KeyError: 'X'``; the error names the revision that refers to ``X``
      and its file (found in ``directory``'s version folders);
    * two files defining the same revision id: Alembic warns and keeps the
      last one read, after which the history has two heads and its advice
      (merge them) is wrong; the error names both files;
    * a cycle or a self-loop in down_revision, a branch label used twice:
      the error names the files;
    * a malformed ``alembic.ini`` (no section header, an option or section
      given twice, a bad ``%(`` substitution): the error names the line.

    On the main thread (the ``flask db`` command, a deploy script) the two
    warnings are kept quiet meanwhile (the duplicate becomes the error), so
    that the output is one line; other threads leave the process's warning
    filters alone, which are not thread-safe.
    """
    import configparser
    import threading

    with ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings(
                "ignore", message=r"Revision \S+ referenced from .* is not present"
            )
            warnings.filterwarnings(
                "error", message=r"Revision \S+ is present more than once"
            )
        try:
            yield
        except configparser.Error as exc:
            raise _bad_ini(directory, exc) from exc
        except Exception as exc:
            # Alembic is imported only now: the fast path of 'upgrade' never
            # imports it. A UserWarning when the warning filters turn
            # warnings into errors.
            from alembic.script.revision import RevisionError
            from alembic.util import CommandError

            if not isinstance(
                exc, (KeyError, UserWarning, RevisionError, CommandError)
            ):
                raise
            clear = (
                _duplicate_revision(directory, exc)
                or _unreadable_history(directory, exc)
                or _missing_revision(directory, exc)
            )
            if clear is None:
                raise
            raise clear from exc
