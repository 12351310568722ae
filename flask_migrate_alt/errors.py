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
from typing import ParamSpec, TypeVar

__all__ = [
    "CommandFailed",
    "MigrateNotSetUp",
    "catch_errors",
    "describe",
    "log",
    "missing_revisions_named",
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
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError

    # SyntaxError and ImportError come from loading a broken env.py or
    # revision file: a mistake in the user's files, not in this package.
    # OSError: a path that is a file, a folder that cannot be written, or an
    # async driver's refused connection.
    return (
        CommandError,
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


# Alembic's warning before the KeyError.
_NOT_PRESENT = re.compile(r"^Revision (\S+) referenced from .* is not present")


def _referencing(directory: str | None, missing: str) -> tuple[str, str] | None:
    """(revision id, file) of a revision file that names ``missing`` as its
    down_revision or in depends_on, read from the version folders' files."""
    from .paths import is_revision_file, read_identifiers, version_folders

    if directory is None:
        return None
    for folder in version_folders(directory):
        for path in sorted(folder.glob("*.py")):
            found = is_revision_file(path.name) and read_identifiers(path)
            if not found:
                continue
            named: list[str] = []
            for value in (found["down_revision"], found["depends_on"]):
                named.extend([value] if isinstance(value, str) else value or ())
            if missing in named:
                return found["revision"], os.path.abspath(path)
    return None


@contextmanager
def missing_revisions_named(directory: str | None = None) -> Iterator[None]:
    """Turn Alembic's KeyError for a missing down_revision into a clear error.

    Alembic warns "Revision X referenced from ... is not present" and then
    fails with a bare ``KeyError: 'X'``. The KeyError becomes a
    :class:`RuntimeError` naming the revision that refers to ``X``, its file
    (found in ``directory``'s version folders) and the fix. On the main
    thread (the ``flask db`` command, a deploy script) Alembic's warning is
    kept quiet meanwhile, so that the error is one line; other threads leave
    the process's warning filters alone, which are not thread-safe.
    """
    import threading

    with ExitStack() as stack:
        if threading.current_thread() is threading.main_thread():
            stack.enter_context(warnings.catch_warnings())
            warnings.filterwarnings(
                "ignore", message=r"Revision \S+ referenced from .* is not present"
            )
        try:
            yield
        except (KeyError, UserWarning) as exc:
            # A UserWarning when the warning filters turn warnings into errors.
            missing = exc.args[0] if len(exc.args) == 1 else None
            if isinstance(exc, UserWarning):
                warned = _NOT_PRESENT.match(str(missing))
                missing = warned.group(1) if warned else None
            found = (
                _referencing(directory, missing) if isinstance(missing, str) else None
            )
            if found is None:
                raise
            revision, path = found
            raise RuntimeError(
                f"revision {revision} names down_revision {missing!r}, which no "
                f"revision file defines; fix down_revision in {path} or restore "
                "the missing revision"
            ) from exc
