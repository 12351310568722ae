"""The revision cache never gives an answer plain Alembic would not.

Revision files are added, deleted, renamed and edited between commands;
after each change the cached script directory must agree with Alembic's own
``ScriptDirectory`` on heads, bases, the history and each revision's
parents, labels and docstring.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask import Flask

import flask_migrate_alt as fma
from flask_migrate_alt.revisions import script_directory

from .conftest import add_table_ops

CACHE = Path("migrations/versions/__pycache__/flask_migrate_alt.revisions.json")


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
    # running within one clock tick still looks like a change.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


@pytest.fixture
def history(app: Flask) -> Flask:
    with app.app_context():
        fma.init()
        for index, rev in enumerate(["a1", "a2", "a3"]):
            script = fma.revision(message=f"step {index}", rev_id=rev)
            assert script is not None and not isinstance(script, list)
            add_table_ops(script.path, f"t_{rev}")
    return app


def test_cache_is_written_and_matches(history: Flask) -> None:
    assert_same_as_alembic(history)
    assert CACHE.is_file()
    assert_same_as_alembic(history)  # now served from the cache


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


def test_computed_identifiers_fall_back_to_importing(history: Flask) -> None:
    a3 = next(Path("migrations/versions").glob("a3_*.py"))
    a3.write_text(a3.read_text().replace("revision = 'a3'", "revision = 'a' + str(3)"))
    assert_same_as_alembic(history)
    with history.app_context():
        assert [s.revision for s in fma.heads()] == ["a3"]


def test_corrupt_cache_is_ignored(history: Flask) -> None:
    assert_same_as_alembic(history)
    CACHE.write_text("{not json")
    assert_same_as_alembic(history)


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


def test_no_op_upgrade_does_not_import_alembic(history: Flask, url: str) -> None:
    """The deploy-time fast path: nothing to do costs one query, no Alembic."""
    import subprocess
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
    assert result.stdout.splitlines()[-1] == "False"
    assert "Nothing to do" in result.stdout


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
