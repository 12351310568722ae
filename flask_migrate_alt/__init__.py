"""Alembic database migrations for Flask applications.

Everything listed in ``__all__`` is the public API; other names, including
the submodules, are private and may change without notice.

Importing this package does not import Alembic: ``Alembic`` (the
Flask-Alembic-compatible extension), ``Config``,
``alembic_version``, ``status``, ``lint`` and their classes are loaded on
first use, so that registering the extension costs an app almost nothing
at start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .commands import (
    branches,
    check,
    current,
    downgrade,
    edit,
    heads,
    history,
    init,
    list_templates,
    merge,
    migrate,
    revision,
    show,
    stamp,
    upgrade,
)
from .errors import CommandFailed, MigrateNotSetUp, catch_errors, log
from .extension import Migrate
from .inspection import (
    compare_metadata,
    migration_context,
    needs_revision,
    needs_upgrade,
    operations,
    produce_migrations,
    script_directory,
)

if TYPE_CHECKING:
    from .alembic_extension import Alembic
    from .config import Config
    from .migration_status import DatabaseStatus, RevisionStatus, status
    from .review import Finding, LintReport, lint

    alembic_version: tuple[int, ...]

__version__ = "0.1.0"

__all__ = [
    "Alembic",
    "CommandFailed",
    "Config",
    "DatabaseStatus",
    "Finding",
    "LintReport",
    "Migrate",
    "MigrateNotSetUp",
    "RevisionStatus",
    "alembic_version",
    "branches",
    "catch_errors",
    "check",
    "compare_metadata",
    "current",
    "downgrade",
    "edit",
    "heads",
    "history",
    "init",
    "lint",
    "list_templates",
    "log",
    "merge",
    "migrate",
    "migration_context",
    "needs_revision",
    "needs_upgrade",
    "operations",
    "produce_migrations",
    "revision",
    "script_directory",
    "show",
    "stamp",
    "status",
    "upgrade",
]


# Only needed by the commands that use them: not loaded with the package.
_LAZY = {
    "Alembic": ".alembic_extension",
    "DatabaseStatus": ".migration_status",
    "RevisionStatus": ".migration_status",
    "status": ".migration_status",
    "Finding": ".review",
    "LintReport": ".review",
    "lint": ".review",
}


def __getattr__(name: str) -> Any:
    # Loaded lazily, see the module docstring.
    if name == "Config":
        from .config import Config

        return Config
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    if name == "alembic_version":
        from alembic import __version__

        return tuple(int(part) for part in __version__.split(".")[:3])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
