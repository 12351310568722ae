"""The seam: every speed-up, and every use of a private Alembic name, is here.

Nothing outside this sub-package touches a private name of Alembic or
SQLAlchemy (a test scans for them), and nothing outside it answers a
question Alembic would otherwise answer. Each function below may say "not
sure" (``None``); the caller then lets plain Alembic do the work, so that
the answer (the revisions, the heads, the lines printed, what an upgrade
does) is Alembic's. Two things keep it so:

* the speed-ups only read what Alembic itself reads (the revision files and
  the version tables), and give up on anything unusual: a layout set in
  code, a revision file whose identifiers are not plain literals, a graph
  Alembic would reject, an async engine;
* they are off outside the releases of Alembic and SQLAlchemy they were
  tested on (:data:`TESTED`), and off when ``FLASK_DB_SPEEDUPS=0``; the
  package then behaves exactly like plain Alembic.

One difference is visible, and documented (:doc:`/python-api`, "The
revision cache"): commands that only need the shape of the history
(``heads``, ``history``, ``branches``, ``show``, ``current``, an
``upgrade`` at head, ``needs_upgrade()``, ``status()``, ``lint()``'s
reading of the history) do not import the revision files, so a file that
fails to import, or whose module-level code does something, is only noticed
by the commands that run revisions. That is the price of the speed: with
2,000 revisions, importing the files is most of what Flask-Migrate spends
on those commands.

What they buy (``python -m bench``, against Flask-Migrate 4.1 and against
this package with ``FLASK_DB_SPEEDUPS=0``, in the same run): a no-op
``upgrade`` and ``heads``/``history``/``current`` answer without importing
Alembic or the revision files; see :doc:`/benchmarks` for the figures.

Modules:

* :mod:`.revisions`: a ``ScriptDirectory`` that reads the four identifiers
  of each revision file from its syntax tree, cached next to the bytecode,
  and imports the file only when its code is needed;
* :mod:`.graph`: the revision graph from that cache alone, and the version
  tables read directly, for the commands that need nothing else;
* :mod:`.answers`: the commands' answers built on those (a no-op
  ``upgrade``, ``heads``, ``history``, ``current``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .versions import TESTED, active

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import Script, ScriptDirectory

__all__ = [
    "TESTED",
    "active",
    "nothing_to_upgrade",
    "print_current",
    "print_heads",
    "print_history",
    "script_directory",
]


def script_directory(config: Config) -> ScriptDirectory | None:
    """A ``ScriptDirectory`` that reads revision files lazily; None if off."""
    if not active():
        return None
    from .revisions import script_directory as cached

    return cached(config)


# The commands' answers (see .answers): each returns None, or False for
# nothing_to_upgrade, when it is not sure, and the command runs Alembic's way.


def nothing_to_upgrade(
    directory: str, target: str, scripts: Callable[[str], ScriptDirectory]
) -> bool:
    """Whether ``upgrade head``/``heads`` is sure to have nothing to do."""
    from . import answers

    return answers.nothing_to_upgrade(directory, target, scripts)


def print_heads(
    directory: str, verbose: bool, scripts: Callable[[str], ScriptDirectory]
) -> list[Script] | None:
    """``heads`` printed from the revision cache; None if unsure."""
    from . import answers

    return answers.print_heads(directory, verbose, scripts)


def print_history(
    directory: str, verbose: bool, scripts: Callable[[str], ScriptDirectory]
) -> list[Script] | None:
    """``history`` of the whole history printed from the revision cache."""
    from . import answers

    return answers.print_history(directory, verbose, scripts)


def print_current(
    directory: str,
    verbose: bool,
    check_heads: Callable[[str | None], Exception] | None,
    scripts: Callable[[str], ScriptDirectory],
) -> list[Script] | dict[str | None, list[Script]] | None:
    """``current`` from the revision cache and the version tables; None if unsure."""
    from . import answers

    return answers.print_current(directory, verbose, check_heads, scripts)
