"""Two ``flask db migrate`` (or ``revision``) commands at once in one checkout.

Each command is a real ``flask`` process. The repository's
``script.py.mako`` makes the first command stop while it writes its
revision file (the moment the head it read is about to get a child) until
the test lets it go; meanwhile the second command is started. Without
coordination both would read the same head and write two children of it:
two heads, and two revisions with the same operations. The second command
must instead behave as if it had been started after the first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from flask_migrate_alt.paths import read_identifiers

from .conftest import Server, run_flask, table_names, version_rows

APP = """
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_alt import Migrate

app = Flask("concurrent")
app.config["SQLALCHEMY_DATABASE_URI"] = {url!r}
db = SQLAlchemy(app)
db.Table("user", db.Column("id", db.Integer, primary_key=True))
if os.environ.get("WITH_ITEM"):
    db.Table("item", db.Column("id", db.Integer, primary_key=True))
Migrate(app, db)
"""

# Rendered while the new revision file is written: mark that this process
# got there, then wait (at most a minute) until the test releases it.
PAUSE = """<%
import os, time
open(os.environ["FMA_MARKER"], "w").close()
deadline = time.time() + 60
while not os.path.exists(os.environ["FMA_RELEASE"]) and time.time() < deadline:
    time.sleep(0.05)
%>"""

TIMEOUT = 120


def _repository(tmp_path: Path, url: str) -> None:
    """An initialized repository whose one revision (``user``) is applied."""
    (tmp_path / "app.py").write_text(APP.format(url=url))
    for args in (
        ("db", "init"),
        ("db", "migrate", "-m", "users", "--rev-id", "rev1"),
        ("db", "upgrade"),
    ):
        done = run_flask(tmp_path, *args)
        assert done.returncode == 0, done.stderr
    template = tmp_path / "migrations" / "script.py.mako"
    template.write_text(PAUSE + template.read_text())


def _start(tmp_path: Path, name: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    for variable in ("FLASK_DB_DIRECTORY", "FLASK_DEBUG", "FLASK_DB_LOCK"):
        env.pop(variable, None)
    env.update(
        FLASK_APP="app.py",
        WITH_ITEM="1",
        FMA_MARKER=str(tmp_path / f"{name}.writing"),
        FMA_RELEASE=str(tmp_path / "release"),
    )
    with open(tmp_path / f"{name}.err", "w") as stderr:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "flask"), *args],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )


def _wait_for(
    what: str, ready: Callable[[], bool], *processes: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not ready():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        for process in processes:
            assert process.poll() is None, f"a command ended before {what}"
        time.sleep(0.05)


@contextmanager
def _two_at_once(tmp_path: Path, *args: str) -> Iterator[list[tuple[int, str, str]]]:
    """Run ``flask *args`` twice, the second while the first writes its file.

    Yields a list that is filled with (exit status, stdout, stderr) of the
    first and the second command once both have ended.
    """
    results: list[tuple[int, str, str]] = []
    first = _start(tmp_path, "first", *args)
    second = None
    try:
        _wait_for(
            "the first command to write", (tmp_path / "first.writing").exists, first
        )
        second = _start(tmp_path, "second", *args)
        # The second command either waits for the first (and says so) or,
        # reading the same head, gets to write its own file too.
        _wait_for(
            "the second command to wait or to write",
            lambda: (
                (tmp_path / "second.writing").exists()
                or "waiting for it to finish" in (tmp_path / "second.err").read_text()
            ),
            second,
        )
        (tmp_path / "release").touch()
        for name, process in (("first", first), ("second", second)):
            out, _ = process.communicate(timeout=TIMEOUT)
            err = (tmp_path / f"{name}.err").read_text()
            results.append((process.returncode, out, err))
        yield results
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def _history(tmp_path: Path) -> dict[str, tuple[str, ...]]:
    """Revision id -> its down_revision ids, read from the files."""
    found = {}
    for path in (tmp_path / "migrations" / "versions").glob("*.py"):
        ids = read_identifiers(path)
        assert ids is not None, path
        down = ids["down_revision"]
        found[ids["revision"]] = (down,) if isinstance(down, str) else tuple(down or ())
    return found


def _heads(history: dict[str, tuple[str, ...]]) -> set[str]:
    children_of = {down for downs in history.values() for down in downs}
    return set(history) - children_of


def test_second_migrate_waits_and_refuses_a_database_behind(
    server: Server, tmp_path: Path
) -> None:
    """The second ``flask db migrate`` sees the first one's revision: the
    database is no longer at the head, so it fails with one line saying to
    upgrade, and writes nothing. Following that advice works."""
    url = server.new_database()
    _repository(tmp_path, url)

    with _two_at_once(tmp_path, "db", "migrate", "-m", "items") as results:
        pass
    (first_status, first_out, first_err), (status, out, err) = results

    assert first_status == 0, first_err
    assert status == 1, err
    assert "Traceback" not in out + err
    errors = [line for line in err.splitlines() if "Error:" in line]
    assert errors == [
        "Error: the database is not up to date: it is not at the head revision, "
        "and autogenerate compares the models with a database at the head; "
        "run 'flask db upgrade' first"
    ]
    history = _history(tmp_path)
    assert len(history) == 2
    [new] = _heads(history)
    assert history[new] == ("rev1",)
    assert (
        "create_table('item'"
        in next((tmp_path / "migrations" / "versions").glob(f"{new}_*.py")).read_text()
    )
    assert version_rows(url) == ["rev1"]

    # The advice: upgrade, then migrate again (the release file is still
    # there: no pause); nothing is left to generate.
    upgraded = run_flask(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    again = _start(tmp_path, "again", "db", "migrate", "-m", "items")
    out, _ = again.communicate(timeout=TIMEOUT)
    assert again.returncode == 0, (tmp_path / "again.err").read_text()
    assert "No changes in schema detected" in (tmp_path / "again.err").read_text()
    assert len(_history(tmp_path)) == 2
    assert version_rows(url) == [new]
    assert "item" in table_names(url)


def test_second_revision_goes_on_top_of_the_first(tmp_path: Path) -> None:
    """Two plain ``flask db revision`` commands at once: both succeed, and
    the second revision follows the first (one head), as if run one after
    the other."""
    _repository(tmp_path, f"sqlite:///{tmp_path / 'app.db'}")

    with _two_at_once(tmp_path, "db", "revision", "-m", "step") as results:
        pass

    for status, _, err in results:
        assert status == 0, err
    history = _history(tmp_path)
    assert len(history) == 3
    [head] = _heads(history)
    [middle] = history[head]
    assert history[middle] == ("rev1",)
