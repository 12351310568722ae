"""The seam: every speed-up, and every use of a private Alembic name, is here.

Nothing outside this sub-package touches a private name of Alembic or
SQLAlchemy (a test scans for them), and nothing outside it answers a
question Alembic would otherwise answer. Each function below may say "not
sure" (``None``); the caller then lets plain Alembic do the work, so that
the answer is always Alembic's. Two things keep it so:

* the speed-ups only read what Alembic itself reads (the revision files and
  the version tables), and give up on anything unusual: a layout set in
  code, a revision file whose identifiers are not plain literals, a graph
  Alembic would reject, an async engine;
* they are off outside the releases of Alembic and SQLAlchemy they were
  tested on (:data:`TESTED`), and off when ``FLASK_DB_SPEEDUPS=0``; the
  package then behaves exactly like plain Alembic.

What they buy (``python -m bench``, 2,000 revisions, against Flask-Migrate
4.1 in the same run): a no-op ``upgrade`` and ``heads``/``history``/
``current`` answer without importing Alembic or the revision files; see
:doc:`/benchmarks` for the figures.

Modules:

* :mod:`.revisions`: a ``ScriptDirectory`` that reads the four identifiers
  of each revision file from its syntax tree, cached next to the bytecode,
  and imports the file only when its code is needed;
* :mod:`.graph`: the revision graph from that cache alone, and the version
  tables read directly, for the commands that need nothing else.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

    from .graph import RevisionGraph

__all__ = [
    "TESTED",
    "active",
    "current_versions",
    "databases_at",
    "heads",
    "lazy_scripts",
    "revision_graph",
    "script_directory",
    "write_line",
]

#: (major, minor) releases the speed-ups were tested on, lowest and newest,
#: both ends included: CI runs the whole suite on each end.
TESTED: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "alembic": ((1, 16), (1, 20)),
    "sqlalchemy": ((2, 0), (2, 1)),
}

_VERSION = re.compile(r"""^__version__\s*=\s*["'](\d+)\.(\d+)""", re.MULTILINE)


def _release(package: str) -> tuple[int, int] | None:
    """``(major, minor)`` of an installed package, without importing it.

    The no-op upgrade must not pay for importing Alembic, so the version is
    read from the package's ``__init__.py`` unless it is imported already.
    """
    module = sys.modules.get(package)
    text: str | None = None
    if module is not None:
        text = f'__version__ = "{getattr(module, "__version__", "")}"'
    else:
        import importlib.util

        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            return None
        try:
            with open(spec.origin, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return None
    found = _VERSION.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else None


@functools.cache
def _tested_releases() -> bool:
    for package, (lowest, newest) in TESTED.items():
        release = _release(package)
        if release is None or not lowest <= release <= newest:
            return False
    return True


def active() -> bool:
    """Whether the speed-ups may answer at all.

    Off with ``FLASK_DB_SPEEDUPS=0`` (or ``false``/``no``), and outside the
    :data:`TESTED` releases.
    """
    setting = os.environ.get("FLASK_DB_SPEEDUPS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    return _tested_releases()


def script_directory(config: Config) -> ScriptDirectory | None:
    """A ``ScriptDirectory`` that reads revision files lazily; None if off."""
    if not active():
        return None
    from .revisions import script_directory as cached

    return cached(config)


def revision_graph(directory: str, *, env_free: bool = False) -> RevisionGraph | None:
    """The revision history from the revision cache alone; None if unsure.

    The caller must know that the Config is the one ``alembic.ini`` alone
    describes (no ``get_config`` override, configure callbacks or
    ``app.config["ALEMBIC"]``). With ``env_free``, also None when
    ``alembic.ini`` asks for env.py to run with every command.
    """
    if not active():
        return None
    from .graph import cached_graph

    return cached_graph(directory, env_free=env_free)


def heads(directory: str) -> set[str] | None:
    """The heads of the history from the revision cache alone; None if unsure."""
    if not active():
        return None
    from .graph import cached_heads

    return cached_heads(directory)


def databases_at(
    heads: set[str], multidb: bool, options: dict[str, Any]
) -> bool | None:
    """Whether every database's version table holds exactly ``heads``.

    Read with one query per database; None if a table cannot be read here.
    """
    if not active():
        return None
    from .graph import databases_at as at

    return at(heads, multidb, options)


def current_versions(multidb: bool, options: dict[str, Any]) -> list[Any] | None:
    """Each database with the rows of its version table; None if unsure."""
    if not active():
        return None
    from .graph import database_versions

    return database_versions(multidb, options)


def lazy_scripts(load: Callable[[], list[Script]]) -> list[Script]:
    """A list that calls ``load`` for its items the first time it is used.

    What a command answered from :func:`revision_graph` returns: building
    the ``Script`` objects would import Alembic and every revision file.
    """
    from .graph import LazyScripts

    return LazyScripts(load)


def write_line(text: str) -> None:
    """Print ``text`` as Alembic's ``Config.print_stdout`` would."""
    from .graph import write_line as write

    write(text)
