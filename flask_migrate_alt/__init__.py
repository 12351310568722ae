"""Alembic database migrations for Flask applications.

Everything listed in ``__all__`` is the public API; other names, including
the submodules, are private and may change without notice.

Importing this package does not import Alembic: ``Config`` and
``alembic_version`` are loaded on first use, so that registering the
extension costs an app almost nothing at start-up.
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
from .lint import Finding, LintReport, lint
from .status import DatabaseStatus, RevisionStatus, status

if TYPE_CHECKING:
    from .config import Config

    alembic_version: tuple[int, ...]

__version__ = "0.1.0"

__all__ = [
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


def __getattr__(name: str) -> Any:
    # Loaded lazily, see the module docstring.
    if name == "Config":
        from .config import Config

        return Config
    if name == "alembic_version":
        from alembic import __version__

        return tuple(int(part) for part in __version__.split(".")[:3])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
