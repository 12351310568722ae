"""Whether the speed-ups may answer: the releases they were tested on."""

from __future__ import annotations

import functools
import os
import re
import sys

__all__ = ["TESTED", "active"]

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
