"""The commands' answers given without Alembic's command functions.

Each function answers one command the cheap way, or returns ``None`` (not
sure) and the command runs Alembic's way. They apply only where skipping
``env.py`` is known to skip nothing else: the speed-ups on, the env.py of
a shipped template, no ``@migrate.configure`` callbacks, and for the
cache-only answers a Config that ``alembic.ini`` alone describes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..databases import context_options, each_database
from ..paths import shipped_env
from ..state import current_state, is_multidb
from .graph import (
    LazyScripts,
    cached_heads,
    database_versions,
    databases_at,
    write_line,
)
from .graph import cached_graph as graph_from_cache
from .versions import active

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

    from .graph import RevisionGraph

#: Builds the repository's ScriptDirectory from its path (the commands'
#: builder), for the returned lists and the checks through Alembic.
Scripts = Callable[[str], "ScriptDirectory"]


def may_skip_env(directory: str) -> bool:
    """Whether a command with nothing to do may skip env.py."""
    return (
        active()
        and not current_state().migrate.configure_callbacks
        and shipped_env(directory)
    )


def _default_config() -> bool:
    """Whether the Config would be the one ``alembic.ini`` alone describes.

    That is: no ``get_config`` override, no ``@migrate.configure``
    callbacks and no ``app.config["ALEMBIC"]``, any of which may change
    where revisions are found. The cache-only answers read ``alembic.ini``
    themselves and need this to be true.
    """
    from flask import current_app

    state = current_state()
    return (
        state.default_get_config
        and not state.migrate.configure_callbacks
        and not current_app.config.get("ALEMBIC")
    )


def cached_graph(directory: str, *, env_free: bool = False) -> RevisionGraph | None:
    """The revision graph from the revision cache alone; None if unsure.

    With ``env_free``, also None when ``alembic.ini`` asks for env.py to run
    with every command (``revision_environment``).
    """
    if not active() or not _default_config():
        return None
    return graph_from_cache(directory, env_free=env_free)


def _on_demand(directory: str, ids: list[str], scripts: Scripts) -> list[Script]:
    """The ``Script`` objects of ``ids``, built only when the list is first used."""
    path = os.path.abspath(directory)

    def load() -> list[Script]:
        found = scripts(path)
        return [found.get_revision(rid) for rid in ids]

    return LazyScripts(load)


def nothing_to_upgrade(directory: str, target: str, scripts: Scripts) -> bool:
    """Whether ``upgrade head``/``heads`` has nothing to do, known for sure.

    First from the revision cache and one query of each version table,
    without importing Alembic; when that cannot tell, through Alembic's
    ``ScriptDirectory`` and a ``MigrationContext`` of each database, still
    without running env.py. False when there is something to do, several
    heads for ``head`` (Alembic reports them) or any doubt: Alembic's own
    upgrade then runs, which is only slower if there was nothing to do.
    """
    if not may_skip_env(directory):
        return False
    if _default_config():
        cached = cached_heads(directory)
        if cached:
            if target == "head" and len(cached) > 1:
                return False
            at = databases_at(cached, is_multidb(directory), context_options())
            if at is not None:
                return at
    # The databases first: one that has no revision yet (a first deploy)
    # settles it without reading the history, which Alembic is about to do.
    found = each_database(directory, lambda context, db: context.get_current_heads())
    currents = list(found.values()) if isinstance(found, dict) else [found]
    if not all(currents):
        return False
    all_heads = set(scripts(directory).get_heads())
    if not all_heads or (target == "head" and len(all_heads) > 1):
        return False
    return all(set(current) == all_heads for current in currents)


def print_history(
    directory: str, verbose: bool, scripts: Scripts
) -> list[Script] | None:
    """``history`` of the whole history, printed from the revision cache."""
    graph = cached_graph(directory, env_free=True)
    if graph is None:
        return None
    order = graph.walk()
    for rid in order:
        write_line(graph.history_line(rid, verbose))
    return _on_demand(directory, order, scripts)


def print_heads(directory: str, verbose: bool, scripts: Scripts) -> list[Script] | None:
    """``heads``, printed from the revision cache."""
    graph = cached_graph(directory)
    if graph is None:
        return None
    # Without depends_on (else there is no graph), the heads and the heads
    # that resolve dependencies are the same.
    for rid in graph.heads:
        write_line(graph.head_line(rid, verbose))
    return _on_demand(directory, graph.heads, scripts)


def print_current(
    directory: str,
    verbose: bool,
    check_heads: Callable[[str | None], Exception] | None,
    scripts: Scripts,
) -> list[Script] | dict[str | None, list[Script]] | None:
    """``current`` from the revision cache and the version tables.

    Needs what the no-op upgrade needs, a revision graph from the cache, and
    every revision a database names to be in it; anything else goes to
    Alembic, which also reports the errors. ``check_heads`` makes the error
    raised for a database not at all the heads.
    """
    if not may_skip_env(directory):
        return None
    graph = cached_graph(directory)
    if graph is None:
        return None
    multidb = is_multidb(directory)
    found = database_versions(multidb, context_options())
    if found is None or any(
        len(rows) > 1 or any(rid not in graph.revisions for rid in rows)
        for _, rows in found
    ):
        return None  # several rows: Alembic shows only the branch heads
    # Alembic's report runs per database, each printing before the next.
    result: dict[str | None, list[Script]] = {}
    for db, rows in found:
        if verbose:
            url = db.engine.url.render_as_string(hide_password=True)
            write_line(f"Current revision(s) for {url}:")
        for rid in rows:
            write_line(graph.current_line(rid, verbose))
        result[db.bind_key] = _on_demand(directory, rows, scripts)
        if check_heads is not None and set(rows) != set(graph.heads):
            raise check_heads(db.bind_key)
    return result if multidb else result.get(None, [])
