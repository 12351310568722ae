"""The revision cache never gives an answer plain Alembic would not.

Revision files are added, deleted, renamed and edited between commands;
after each change the cached script directory must agree with Alembic's own
``ScriptDirectory`` on heads, bases, the history and each revision's
parents, labels and docstring, and ``heads``/``history`` answered from the
cache alone must print exactly what Alembic prints.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt import speedups
from flask_migrate_alt.speedups.revisions import script_directory

from .conftest import STACK_LIMITS, Server, add_table_ops, run_flask, stack_limit

CACHE = Path("migrations/versions/__pycache__/flask_migrate_alt.revisions.json")


@pytest.fixture(autouse=True)
def _bytecode_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as Python runs by default: caches next to the source are written.

    The cache follows ``sys.dont_write_bytecode`` and ``sys.pycache_prefix``
    (see the tests at the end); the shell running the suite may set either.
    """
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)


def graph(script: ScriptDirectory) -> list[tuple[object, ...]]:
    return [
        (
            sc.revision,
            sc.down_revision,
            tuple(sorted(sc.branch_labels)),
            sc.dependencies,
            sc.doc,
            sc.is_head,
        )
        for sc in script.walk_revisions()
    ]


def assert_same_as_alembic(app: Flask) -> None:
    with app.app_context():
        config = app.extensions["migrate"].migrate.get_config("migrations")
        cached = script_directory(config)
        plain = ScriptDirectory.from_config(config)
        assert graph(cached) == graph(plain)
        assert set(cached.get_heads()) == set(plain.get_heads())
        assert set(cached.get_bases()) == set(plain.get_bases())
        assert [s.revision for s in fma.heads()] == [
            s.revision for s in plain.get_revisions(plain.get_heads())
        ]


def bump_mtime(path: Path) -> None:
    # Editors and checkouts change the modification time; make sure a test
    # running within one clock tick still looks like a change. By whole
    # seconds: plain Alembic, the reference, imports revision files through
    # their bytecode, which Python trusts while the size and the mtime in
    # seconds are the same (a same-size edit within one second).
    # Each bump moves past the last one too: an edit rewrites the file with
    # the current time, which may be the second of the previous bump.
    stat = path.stat()
    mtime = max(stat.st_mtime_ns, _last_bump[0]) + 2_000_000_000
    _last_bump[0] = mtime
    os.utime(path, ns=(stat.st_atime_ns, mtime))


_last_bump = [0]


@pytest.fixture
def history(app: Flask) -> Flask:
    with app.app_context():
        fma.init()
        for index, rev in enumerate(["a1", "a2", "a3"]):
            script = fma.revision(message=f"step {index}", rev_id=rev)
            assert script is not None and not isinstance(script, list)
            add_table_ops(script.path, f"t_{rev}")
    return app


@stack_limit("speedups")
def test_cache_is_written_and_matches(history: Flask) -> None:
    assert_same_as_alembic(history)
    assert CACHE.is_file()
    assert_same_as_alembic(history)  # now served from the cache


@stack_limit("speedups")
def test_added_deleted_renamed_and_edited_files(history: Flask) -> None:
    assert_same_as_alembic(history)
    versions = Path("migrations/versions")

    with history.app_context():
        fma.revision(message="step 3", rev_id="a4")
    assert_same_as_alembic(history)

    a4 = next(versions.glob("a4_*.py"))
    a4.rename(versions / "renamed_a4.py")
    assert_same_as_alembic(history)

    (versions / "renamed_a4.py").unlink()
    assert_same_as_alembic(history)

    a3 = next(versions.glob("a3_*.py"))
    a3.write_text(a3.read_text().replace("revision = 'a3'", "revision = 'b3'"))
    bump_mtime(a3)
    assert_same_as_alembic(history)
    with history.app_context():
        assert [s.revision for s in fma.heads()] == ["b3"]

    # Same size, new content: still noticed.
    a3.write_text(a3.read_text().replace("revision = 'b3'", "revision = 'c3'"))
    bump_mtime(a3)
    assert_same_as_alembic(history)

    # A branch label and a docstring change.
    a2 = next(versions.glob("a2_*.py"))
    a2.write_text(
        a2.read_text()
        .replace("branch_labels = None", "branch_labels = ('lbl',)")
        .replace('"""step 1', '"""renamed step')
    )
    bump_mtime(a2)
    assert_same_as_alembic(history)


@stack_limit("speedups")
def test_computed_identifiers_fall_back_to_importing(history: Flask) -> None:
    a3 = next(Path("migrations/versions").glob("a3_*.py"))
    a3.write_text(a3.read_text().replace("revision = 'a3'", "revision = 'a' + str(3)"))
    assert_same_as_alembic(history)
    with history.app_context():
        assert [s.revision for s in fma.heads()] == ["a3"]


@stack_limit("speedups")
@pytest.mark.parametrize(
    ("addition", "head"),
    [
        ("if True:\n    revision = 'z3'\n", "z3"),
        ("for revision in ['y3']:\n    pass\n", "y3"),
        ("def _pick():\n    global revision\n    revision = 'x3'\n\n\n_pick()\n", "x3"),
        ("branch_labels = {'set_label'}\n", "a3"),
    ],
)
def test_identifiers_bound_otherwise_are_imported(
    history: Flask, addition: str, head: str
) -> None:
    """Only top-level literals are read from the syntax tree."""
    a3 = next(Path("migrations/versions").glob("a3_*.py"))
    a3.write_text(a3.read_text() + "\n" + addition)
    assert_same_as_alembic(history)
    with history.app_context():
        assert [s.revision for s in fma.heads()] == [head]
    assert not from_cache(history)
    for name in ("heads", "history"):
        assert python_output(history, name, True) == alembic_output(history, name, True)


@stack_limit("speedups")
def test_corrupt_cache_is_ignored(history: Flask) -> None:
    assert_same_as_alembic(history)
    CACHE.write_text("{not json")
    assert_same_as_alembic(history)


@stack_limit("speedups")
def test_upgrade_runs_code_of_cached_revisions(history: Flask, url: str) -> None:
    from .conftest import table_names, version_rows

    assert_same_as_alembic(history)  # warm the cache
    with history.app_context():
        assert fma.upgrade() == ["a1", "a2", "a3"]
    assert {"t_a1", "t_a2", "t_a3"} <= table_names(url)
    assert version_rows(url) == ["a3"]
    with history.app_context():
        script = fma.show(revision="a2")[0]
        # The real module is imported on demand.
        assert callable(script.module.upgrade)


@stack_limit("speedups")
def test_no_op_upgrade_skips_env_py_only_when_it_is_ours(
    history: Flask, url: str, tmp_path: Path
) -> None:
    """The fast path of an upgrade at head must not skip a custom env.py."""
    from .conftest import version_rows

    with history.app_context():
        assert fma.upgrade() == ["a1", "a2", "a3"]
    marker = tmp_path / "env-ran"
    env = Path("migrations/env.py")
    shipped = env.read_text()
    env.write_text(
        shipped + f"\nwith open({str(marker)!r}, 'a') as f:\n    f.write('x')\n"
    )
    with history.app_context():
        assert fma.upgrade() == []
    assert marker.read_text() == "x"  # custom env.py: it ran

    env.write_text(shipped)
    with history.app_context():
        assert fma.upgrade() == []
    assert marker.read_text() == "x"  # shipped env.py at head: skipped
    assert version_rows(url) == ["a3"]

    # A new revision is never missed by the fast path.
    with history.app_context():
        fma.revision(message="more", rev_id="a4")
        assert fma.upgrade() == ["a4"]
    assert version_rows(url) == ["a4"]


@stack_limit("speedups")
def test_no_op_upgrade_with_a_custom_version_table(
    make_app: Callable[..., Flask], url: str
) -> None:
    from .conftest import table_names, version_rows

    app = make_app(url, version_table="custom_versions")
    with app.app_context():
        fma.init()
        fma.revision(message="one", rev_id="v1")
        assert fma.upgrade() == ["v1"]
        assert fma.upgrade() == []  # answered from the cache and custom_versions
        fma.revision(message="two", rev_id="v2")
        assert fma.upgrade() == ["v2"]
    assert version_rows(url, "custom_versions") == ["v2"]
    assert "alembic_version" not in table_names(url)


@stack_limit("speedups")
def test_no_op_upgrade_does_not_import_alembic(history: Flask, url: str) -> None:
    """The deploy-time fast path: nothing to do costs one query, no Alembic."""
    import sys

    with history.app_context():
        fma.upgrade()
        fma.heads()  # leaves the revision cache up to date
    code = f"""
import sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
import flask_migrate_alt as fma
app = Flask("probe")
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
fma.Migrate(app, SQLAlchemy(app))
with app.app_context():
    assert fma.upgrade() == []
print("alembic" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["False"]


@stack_limit("speedups")
def test_current_revisions_match_alembic_on_branches_and_dependencies(
    history: Flask,
) -> None:
    """The linear-time get_all_current gives Alembic's answer."""
    with history.app_context():
        fma.revision(message="side", rev_id="s1", head="base", branch_label="side")
        fma.revision(message="side 2", rev_id="s2", head="side@head", depends_on="a2")
        fma.revision(message="fork", rev_id="f1", head="a1", splice=True)
        fma.merge(revisions=["a3", "f1"], message="join", rev_id="m1")
        config = history.extensions["migrate"].migrate.get_config("migrations")
        cached = script_directory(config)
        plain = ScriptDirectory.from_config(config)
        every = [sc.revision for sc in plain.walk_revisions()]
        targets = [(rev,) for rev in every] + [("s2", "m1"), ("s1", "a2"), ("f1", "a3")]
        for target in targets:
            got = {sc.revision for sc in cached.get_all_current(target)}
            expected = {sc.revision for sc in plain.get_all_current(target)}
            assert got == expected, target


# --------------------------------------------------------------------------
# heads and history answered from the cache, without Alembic


def alembic_output(app: Flask, name: str, verbose: bool) -> str:
    """What plain Alembic's ``heads``/``history`` command prints."""
    import contextlib
    import io

    from alembic import command

    buffer = io.StringIO()
    with app.app_context(), contextlib.redirect_stdout(buffer):
        config = app.extensions["migrate"].migrate.get_config("migrations")
        if name == "heads":
            command.heads(config, verbose=verbose)
        elif name == "current":
            command.current(config, verbose=verbose)
        else:
            command.history(config, verbose=verbose)
    return buffer.getvalue()


def python_output(app: Flask, name: str, verbose: bool) -> str:
    import contextlib
    import io

    buffer = io.StringIO()
    with app.app_context(), contextlib.redirect_stdout(buffer):
        getattr(fma, name)(verbose=verbose)
    return buffer.getvalue()


def cli_output(app: Flask, name: str, verbose: bool) -> str:
    result = app.test_cli_runner().invoke(
        args=["db", name, *(["--verbose"] if verbose else [])]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def from_cache(app: Flask) -> bool:
    """Whether heads and history are answered from the revision cache now."""
    from flask_migrate_alt.speedups.answers import cached_graph

    with app.app_context():
        return cached_graph("migrations", env_free=True) is not None


def forbid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any command that builds an Alembic Config fail: the cache must answer."""
    from flask_migrate_alt import commands

    def no_alembic(*args: object, **kwargs: object) -> None:
        raise AssertionError("answered from the cache, without a Config")

    monkeypatch.setattr(commands, "_config", no_alembic)


def build_shape(app: Flask, shape: str) -> None:
    """A history of the given shape, made with the command functions."""
    with app.app_context():
        fma.init()
        fma.revision(message="first", rev_id="a1")
        fma.revision(message="second\n\nwith a second paragraph", rev_id="a2")
        if shape == "linear":
            fma.revision(message="third", rev_id="a3")
            return
        # A second head growing from a1: a1 becomes a branch point.
        fma.revision(message="side", rev_id="b2", head="a1", splice=True)
        if shape == "branched":
            return
        fma.merge(revisions=["a2", "b2"], message="join", rev_id="m1")
        if shape == "merged":
            return
        fma.revision(message="billing", rev_id="c1", branch="billing")
        fma.revision(message="invoices", rev_id="c2", branch="billing")
        if shape == "labelled":
            return
        assert shape == "depends_on"
        fma.revision(message="needs c2", rev_id="d1", head="m1", depends_on="c2")


SHAPES = ["linear", "branched", "merged", "labelled", "depends_on"]


@pytest.mark.parametrize("shape", SHAPES)
def test_heads_and_history_print_what_alembic_prints(
    make_app: Callable[..., Flask],
    server: Server,
    shape: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:

    app = make_app(server.new_database())
    build_shape(app, shape)
    with app.app_context():
        fma.heads()  # the normal path writes the revision cache
    expected = {
        (name, verbose): alembic_output(app, name, verbose)
        for name in ("heads", "history")
        for verbose in (False, True)
    }
    assert "Rev: a1" in expected["history", True]
    # depends_on is shown the way Alembic shows it, by Alembic itself.
    assert from_cache(app) is (speedups.active() and shape != "depends_on")
    if from_cache(app):
        forbid_config(monkeypatch)
    for (name, verbose), text in expected.items():
        assert python_output(app, name, verbose) == text, (name, verbose)
        assert cli_output(app, name, verbose) == text, (name, verbose)


@pytest.mark.parametrize("shape", SHAPES)
def test_current_prints_what_alembic_prints(
    make_app: Callable[..., Flask],
    server: Server,
    shape: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At every revision: on a branch point, a merge point, a head, labelled."""

    app = make_app(server.new_database())
    build_shape(app, shape)
    with app.app_context():
        fma.heads()  # the normal path writes the revision cache
        config = app.extensions["migrate"].migrate.get_config("migrations")
        every = [
            sc.revision for sc in ScriptDirectory.from_config(config).walk_revisions()
        ]
    for rev in every:
        with app.app_context():
            fma.stamp(revision=rev, purge=True)
        expected = {
            verbose: alembic_output(app, "current", verbose)
            for verbose in (False, True)
        }
        assert rev in expected[False].split()

        def same(text: str) -> str | list[str]:
            # With depends_on Alembic prints a set of revisions, in the order
            # the set happens to iterate in.
            return sorted(text.splitlines()) if shape == "depends_on" else text

        with monkeypatch.context() as patch:
            if from_cache(app):
                forbid_config(patch)
            for verbose, text in expected.items():
                python = python_output(app, "current", verbose)
                assert same(python) == same(text), (rev, verbose)
                cli = cli_output(app, "current", verbose)
                assert same(cli) == same(text), (rev, verbose)
            with app.app_context():
                found = fma.current()
                assert rev in [sc.revision for sc in found]
                is_head = rev in [sc.revision for sc in fma.heads()]
                if not is_head:
                    with pytest.raises(fma.CommandFailed, match="not at all head"):
                        fma.current(check_heads=True)
    # Two rows in the version table: Alembic's own path answers.
    if shape in ("branched", "labelled"):
        with app.app_context():
            fma.stamp(revision="heads", purge=True)
            assert len(fma.current()) == 2


@stack_limit("speedups")
def test_current_does_not_import_alembic(history: Flask, url: str) -> None:
    import sys

    with history.app_context():
        fma.upgrade()
        fma.heads()
    code = f"""
import sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
import flask_migrate_alt as fma
app = Flask("probe")
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
fma.Migrate(app, SQLAlchemy(app))
with app.app_context():
    found = fma.current(check_heads=True)
    print("alembic" in sys.modules)
    print([sc.revision for sc in found])
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["a3 (head)", "False", "['a3']"]


@stack_limit("speedups")
def test_cached_answers_follow_every_change(history: Flask) -> None:
    """Add, delete, rename and edit revision files between commands."""

    def same_output() -> None:
        for name in ("heads", "history"):
            for verbose in (False, True):
                expected = alembic_output(history, name, verbose)
                assert python_output(history, name, verbose) == expected
                assert cli_output(history, name, verbose) == expected

    with history.app_context():
        fma.heads()
    assert from_cache(history)
    same_output()
    versions = Path("migrations/versions")

    with history.app_context():
        fma.revision(message="step 3", rev_id="a4")
    assert not from_cache(history)  # a file the cache has not seen yet
    same_output()
    assert from_cache(history)

    a4 = next(versions.glob("a4_*.py"))
    a4.rename(versions / "renamed_a4.py")
    same_output()
    (versions / "renamed_a4.py").unlink()
    same_output()
    assert from_cache(history)

    a3 = next(versions.glob("a3_*.py"))
    a3.write_text(
        a3.read_text()
        .replace("revision = 'a3'", "revision = 'b3'")
        .replace('"""step 2', '"""step two, renamed\n\nDetails.')
    )
    bump_mtime(a3)
    assert not from_cache(history)
    same_output()
    with history.app_context():
        assert [s.revision for s in fma.heads()] == ["b3"]

    # A branch from a1 and a label, edited in place.
    a2 = next(versions.glob("a2_*.py"))
    a2.write_text(
        a2.read_text().replace("down_revision = 'a1'", "down_revision = None")
    )
    bump_mtime(a2)
    same_output()
    a2.write_text(
        a2.read_text().replace("branch_labels = None", "branch_labels = ('lbl',)")
    )
    bump_mtime(a2)
    same_output()
    assert from_cache(history)


@stack_limit("speedups")
def test_settings_that_move_revisions_skip_the_cache(
    history: Flask, tmp_path: Path
) -> None:
    with history.app_context():
        fma.heads()
    assert from_cache(history)
    expected = alembic_output(history, "history", False)

    history.config["ALEMBIC"] = {"version_locations": [str(tmp_path / "more")]}
    (tmp_path / "more").mkdir()
    assert not from_cache(history)
    assert python_output(history, "history", False) == expected
    del history.config["ALEMBIC"]

    migrate = history.extensions["migrate"].migrate
    migrate.configure(lambda config: config)
    assert not from_cache(history)
    assert python_output(history, "history", False) == expected
    migrate.configure_callbacks.clear()
    assert from_cache(history)

    ini = Path("migrations/alembic.ini")
    plain = ini.read_text()
    for setting in (
        "revision_environment = true",
        "path_separator = os\nversion_locations = %(here)s/versions",
        "recursive_version_locations = true",
    ):
        ini.write_text(plain.replace("[alembic]", f"[alembic]\n{setting}", 1))
        assert not from_cache(history), setting
        output = python_output(history, "history", False)
        assert output == alembic_output(history, "history", False), setting
    ini.write_text(plain)
    assert from_cache(history)


@stack_limit("speedups")
def test_cached_answers_return_scripts_when_used(history: Flask) -> None:
    import copy

    from alembic.script import Script

    with history.app_context():
        fma.heads()
        assert from_cache(history)
        heads = fma.heads()
        found = fma.history()
        plain = list(
            ScriptDirectory.from_config(
                history.extensions["migrate"].migrate.get_config("migrations")
            ).walk_revisions()
        )
    assert isinstance(found, list) and isinstance(heads, list)
    assert len(found) == 3
    assert all(isinstance(sc, Script) for sc in found)
    assert [sc.revision for sc in found] == [sc.revision for sc in plain]
    assert [sc.revision for sc in found[:2]] == ["a3", "a2"]
    assert found[-1].down_revision is None
    # Each call reads the history anew, as the normal path does: the lists
    # hold different Script objects for the same revisions.
    (head,) = heads
    assert head.revision == "a3" and head is not found[0]
    assert heads == [head] and [head] == heads and heads != [found[0]]
    assert repr(heads) == f"[{head!r}]"
    assert [*heads, *found] == heads + found == [head, *found]
    assert [] + heads == [head] and heads * 2 == [head, head]
    assert copy.copy(found) == found and type(copy.copy(found)) is list
    assert found[0] in found and found.index(found[1]) == 1
    assert callable(found[0].module.upgrade)  # the real module, on demand


@stack_limit("speedups")
def test_heads_and_history_do_not_import_alembic(history: Flask, url: str) -> None:
    """``flask db heads``/``history`` from the cache: no Alembic until used."""
    import sys

    with history.app_context():
        fma.heads()
    code = f"""
import sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
import flask_migrate_alt as fma
app = Flask("probe")
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
fma.Migrate(app, SQLAlchemy(app))
with app.app_context():
    heads = fma.heads()
    found = fma.history(verbose=True)
    print("alembic" in sys.modules)
    print([sc.revision for sc in heads], len(found))
    print("alembic" in sys.modules)
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "a3 (head)"
    assert "Rev: a1" in result.stdout
    assert lines[-3:] == ["False", "['a3'] 3", "True"]


def test_graph_matches_alembic_on_generated_histories() -> None:
    """Heads, history order and every printed line, on random histories.

    With branch points, merges, several bases and branch labels; a history
    whose labels Alembic would spread into one revision more than once is
    refused (and the normal path prints it).
    """
    import random
    import types

    from alembic.script import Script
    from alembic.script.revision import RevisionMap

    from flask_migrate_alt.speedups.graph import CachedRevision, RevisionGraph

    docs = [None, "", "msg", "first\n\nsecond\nmore", "  padded \n line\n", "a\n\n\nb"]
    compared = refused = 0
    for seed in range(400):
        rng = random.Random(seed)
        revisions: list[CachedRevision] = []
        for number in range(rng.randint(1, 25)):
            rid = f"{rng.getrandbits(32):x}{number}"
            ids = [rev.revision for rev in revisions]
            pick = rng.random()
            if not ids or pick < 0.1:
                down: tuple[str, ...] = ()
            elif pick < 0.75 or len(ids) < 2:
                down = (rng.choice(ids),)
            else:
                down = tuple(rng.sample(ids, rng.randint(2, min(3, len(ids)))))
            labels = (f"label{number}",) if rng.random() < 0.2 else ()
            doc = rng.choice(docs)
            revisions.append(
                CachedRevision(rid, down, labels, (), doc, f"/v/{rid}_x.py")
            )
        rng.shuffle(revisions)

        scripts = []
        for rev in revisions:
            module = types.ModuleType("revision", rev.doc)
            module.down_revision = rev.down[0] if len(rev.down) == 1 else rev.down
            module.branch_labels = rev.branch_labels
            module.depends_on = None
            scripts.append(Script(module, rev.revision, rev.path))
        revision_map = RevisionMap(lambda scripts=scripts: scripts)
        walked = list(
            revision_map.iterate_revisions(
                "heads", "base", inclusive=True, assert_relative_length=False
            )
        )
        heads = [revision_map.get_revision(rid) for rid in revision_map.heads]

        graph = RevisionGraph.build(revisions)
        if any(len(sc.branch_labels) > 1 for sc in scripts):
            assert graph is None, seed
            refused += 1
            continue
        assert graph is not None, seed
        compared += 1
        assert graph.heads == list(revision_map.heads), seed
        order = graph.walk()
        assert order == [sc.revision for sc in walked], seed
        for verbose in (False, True):
            assert [graph.history_line(rid, verbose) for rid in order] == [
                sc.cmd_format(
                    verbose,
                    include_branches=True,
                    include_doc=True,
                    include_parents=True,
                )
                for sc in walked
            ], seed
            assert [graph.head_line(rid, verbose) for rid in graph.heads] == [
                sc.cmd_format(verbose, include_branches=True, tree_indicators=False)
                for sc in heads
            ], seed
    assert compared > 200 and refused > 20  # both kinds were exercised


# --------------------------------------------------------------------------
# The speed-ups step aside: FLASK_DB_SPEEDUPS=0 and untested releases


@stack_limit("speedups")
def test_speedups_off_leave_everything_to_alembic(
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from alembic.script import ScriptDirectory

    from flask_migrate_alt import speedups
    from flask_migrate_alt.speedups.answers import cached_graph

    with app.app_context():
        fma.init()
        fma.revision(message="first", rev_id="a1")
        fma.revision(message="second", rev_id="a2")
        fma.upgrade()
        fma.heads()  # writes the revision cache
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="alembic"):
            assert fma.upgrade() == []  # answered without Alembic
        assert not any("Context impl" in r.getMessage() for r in caplog.records)
        caplog.clear()
        capsys.readouterr()
        fma.heads()
        fma.history()
        with_speedups = capsys.readouterr().out
        assert type(fma.script_directory()) is not ScriptDirectory

        monkeypatch.setenv("FLASK_DB_SPEEDUPS", "0")
        assert not speedups.active()
        assert cached_graph("migrations") is None
        assert type(fma.script_directory()) is ScriptDirectory
        fma.heads()
        fma.history()
        assert capsys.readouterr().out == with_speedups
        # The no-op upgrade now goes through Alembic's upgrade and env.py.
        import alembic.command

        calls: list[str] = []
        plain_upgrade = alembic.command.upgrade

        def upgrade(config: object, revision: str, **kwargs: object) -> None:
            calls.append(revision)
            plain_upgrade(config, revision, **kwargs)

        monkeypatch.setattr(alembic.command, "upgrade", upgrade)
        assert fma.upgrade() == []
        assert calls == ["head"]


def test_speedups_off_outside_the_tested_releases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    speedups.versions._tested_releases.cache_clear()
    try:
        if STACK_LIMITS["speedups"][0]:
            # This stack is outside the tested releases: the real case.
            assert not speedups.active()
            return
        assert speedups.active()
        newest = speedups.TESTED["alembic"][1]
        monkeypatch.setitem(
            speedups.TESTED, "alembic", ((newest[0], newest[1] + 1), (9, 0))
        )
        speedups.versions._tested_releases.cache_clear()
        assert not speedups.active()
    finally:
        speedups.versions._tested_releases.cache_clear()


@stack_limit("speedups")
def test_a_revision_module_runs_once(app: Flask) -> None:
    """Asking a lazily read revision for a name it lacks imports it once.

    lint() probes for upgrade_<bind>() functions a revision may not have;
    each probe must not run the file's module-level code again.
    """
    with app.app_context():
        fma.init()
        script = fma.revision(message="first", rev_id="a1")
        assert script is not None and not isinstance(script, list)
        path = Path(script.path)
        path.write_text(
            path.read_text()
            + "\nimport builtins\n"
            + "builtins.fma_runs = getattr(builtins, 'fma_runs', 0) + 1\n"
        )
        import builtins

        builtins.fma_runs = 0  # type: ignore[attr-defined]
        try:
            fma.heads()  # writes the revision cache
            revision = fma.script_directory().get_revision("a1")
            assert revision is not None
            for _ in range(3):
                assert not hasattr(revision.module, "upgrade_nosuchbind")
            assert callable(revision.module.upgrade)
            assert builtins.fma_runs == 1  # type: ignore[attr-defined]
        finally:
            del builtins.fma_runs  # type: ignore[attr-defined]


@pytest.mark.parametrize("speedups", ["1", "0"])
def test_a_folder_listed_twice_warns_as_alembic_warns(
    app: Flask, monkeypatch: pytest.MonkeyPatch, speedups: str
) -> None:
    import warnings

    monkeypatch.setenv("FLASK_DB_SPEEDUPS", speedups)
    with app.app_context():
        fma.init()
        fma.revision(message="first", rev_id="a1")
        ini = Path("migrations", "alembic.ini")
        ini.write_text(
            ini.read_text().replace(
                "[alembic]\n",
                "[alembic]\npath_separator = space\n"
                "version_locations = %(here)s/versions %(here)s/versions\n",
                1,
            )
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            heads = fma.heads()
    assert [h.revision for h in heads] == ["a1"]
    assert [str(w.message).split(" loaded twice!")[0] for w in caught] == [
        f"File {Path('migrations/versions/a1_first.py').resolve()}"
    ]


@stack_limit("speedups")
def test_a_cache_written_by_another_python_is_not_trusted(app: Flask) -> None:
    """Like bytecode, the revision cache belongs to the interpreter that wrote
    it (Python 3.13 reads docstrings differently)."""
    import json

    from flask_migrate_alt.speedups.answers import cached_graph

    with app.app_context():
        fma.init()
        fma.revision(message="first", rev_id="a1")
        fma.heads()  # writes the revision cache
        assert cached_graph("migrations") is not None
        data = json.loads(CACHE.read_text())
        data["version"] = data["version"].rsplit("/", 1)[0] + "/cpython-000"
        CACHE.write_text(json.dumps(data))
        assert cached_graph("migrations") is None
        assert [h.revision for h in fma.heads()] == ["a1"]  # read again
        assert cached_graph("migrations") is not None


# --------------------------------------------------------------------------
# Python's rules for caches next to source


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


@stack_limit("speedups")
def test_no_cache_written_under_dont_write_bytecode(
    history: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PYTHONDONTWRITEBYTECODE keeps the source tree free of our cache too."""
    # Writing the fixture's revisions read the history, with bytecode on.
    CACHE.unlink(missing_ok=True)
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    migrations = Path("migrations")
    before = files_under(migrations)
    with history.app_context():
        assert [s.revision for s in fma.heads()] == ["a3"]
        fma.history()
    assert files_under(migrations) == before
    assert_same_as_alembic(history)
    assert not CACHE.exists()


@stack_limit("speedups")
def test_cache_goes_under_pycache_prefix(
    history: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PYTHONPYCACHEPREFIX: the cache sits in the mirror tree, as bytecode does."""
    prefix = tmp_path / "prefix"
    monkeypatch.setattr(sys, "pycache_prefix", str(prefix))
    migrations = Path("migrations")
    before = files_under(migrations)
    assert_same_as_alembic(history)
    assert files_under(migrations) == before
    versions = migrations.resolve() / "versions"
    mirrored = prefix / versions.relative_to(versions.anchor)
    assert (mirrored / "flask_migrate_alt.revisions.json").is_file()
    # The cache there is read back, and kept up to date, as next to the source.
    with history.app_context():
        fma.revision(message="step 3", rev_id="a4")
    assert_same_as_alembic(history)


@pytest.mark.parametrize("variable", ["PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"])
def test_read_only_commands_leave_the_repository_alone(
    tmp_path: Path, url: str, variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``flask db heads/history/current`` in real processes, as a user runs them."""
    (tmp_path / "app.py").write_text(
        "from flask import Flask\n"
        "from flask_sqlalchemy import SQLAlchemy\n"
        "from flask_migrate_alt import Migrate\n"
        "app = Flask(__name__)\n"
        f"app.config['SQLALCHEMY_DATABASE_URI'] = {url!r}\n"
        "Migrate(app, SQLAlchemy(app))\n"
    )
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    assert run_flask(tmp_path, "db", "init").returncode == 0
    for rev in ("a1", "a2"):
        made = run_flask(tmp_path, "db", "revision", "-m", rev, "--rev-id", rev)
        assert made.returncode == 0, made.stderr
    repository = tmp_path / "migrations"
    for cache in repository.rglob("__pycache__"):
        for item in cache.iterdir():
            item.unlink()
        cache.rmdir()
    before = files_under(repository)
    prefix = tmp_path / "prefix"
    monkeypatch.setenv(variable, "1" if variable.endswith("BYTECODE") else str(prefix))
    for args in (["heads"], ["history"], ["current"], ["upgrade"], ["heads"]):
        result = run_flask(tmp_path, "db", *args)
        assert result.returncode == 0, result.stderr
    assert files_under(repository) == before
    heads = run_flask(tmp_path, "db", "heads")
    assert heads.stdout.split() == ["a2", "(head)"]
