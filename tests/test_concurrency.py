"""Concurrent deploys with real processes: every migration runs exactly once.

Each worker is a separate Python process that builds the app and calls
``upgrade()`` (or ``flask db upgrade``), all released at the same moment.
The history's migrations each insert a row into an audit table, so a
migration that ran twice shows up as a duplicate row.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from .conftest import REPO, Server, table_names, version_rows

WORKERS = 8
REVISIONS = ["r1", "r2", "r3", "r4", "r5"]

APP = """
import json, os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_alt import Migrate

app = Flask("concurrent")
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["MAIN_URL"]
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False  # Flask-SQLAlchemy 2.x warns
options = os.environ.get("ENGINE_OPTIONS")
if options:
    options = json.loads(options)
    if "poolclass" in options:  # a name in sqlalchemy.pool
        import sqlalchemy.pool
        options["poolclass"] = getattr(sqlalchemy.pool, options["poolclass"])
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
if os.environ.get("LOGS_URL"):
    app.config["SQLALCHEMY_BINDS"] = {"logs": os.environ["LOGS_URL"]}
db = SQLAlchemy(app)
Migrate(app, db, directory=os.environ["MIGRATIONS"])
"""

WORKER = """
import os, sys, time
sys.path.insert(0, os.environ["APP_DIR"])
from app import app
import flask_migrate_alt as fma

start = float(os.environ["START_AT"])
time.sleep(max(0.0, start - time.time()))
with app.app_context():
    applied = fma.upgrade()
print("APPLIED", ",".join(applied))
"""


def _revision(rev: str, down: str | None, multidb: bool, slow: bool = False) -> str:
    """A revision that inserts one audit row (and creates the table first)."""
    body = []
    if rev == "r1":
        body.append(
            "op.create_table('audit', sa.Column('id', sa.Integer, primary_key=True),"
            " sa.Column('rev', sa.String(8), nullable=False))"
        )
    if slow:
        body.append("import time; time.sleep(0.5)")
    body.append(f"op.execute(\"INSERT INTO audit (rev) VALUES ('{rev}')\")")
    code = "\n    ".join(body)
    header = f"""
        import sqlalchemy as sa
        from alembic import op

        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None
    """
    if not multidb:
        return textwrap.dedent(header) + (
            f"\n\ndef upgrade():\n    {code}\n\n\ndef downgrade():\n    pass\n"
        )
    return textwrap.dedent(header) + (
        "\n\ndef upgrade(engine_name):\n    globals()['upgrade_' + engine_name]()\n"
        "\n\ndef downgrade(engine_name):\n    pass\n"
        f"\n\ndef upgrade_():\n    {code}\n"
        f"\n\ndef upgrade_logs():\n    {code}\n"
    )


def _repository(tmp_path: Path, template: str, multidb: bool, slow: bool) -> Path:
    """A migration repository made from ``template`` with the audit history."""
    migrations = tmp_path / "migrations"
    source = REPO / "templates" / template
    (migrations / "versions").mkdir(parents=True)
    for name in ("env.py", "script.py.mako", "alembic.ini.mako"):
        target = "alembic.ini" if name == "alembic.ini.mako" else name
        (migrations / target).write_text((source / name).read_text())
    down = None
    for rev in REVISIONS:
        (migrations / "versions" / f"{rev}_audit.py").write_text(
            _revision(rev, down, multidb, slow)
        )
        down = rev
    return migrations


def _environment(
    tmp_path: Path, urls: dict[str, str], migrations: Path
) -> dict[str, str]:
    (tmp_path / "app.py").write_text(APP)
    env = dict(os.environ)
    env.update(
        APP_DIR=str(tmp_path),
        MIGRATIONS=str(migrations),
        MAIN_URL=urls["main"],
        PYTHONPATH=str(REPO),
    )
    env.pop("FLASK_DB_LOCK", None)
    if "logs" in urls:
        env["LOGS_URL"] = urls["logs"]
    return env


def _audit(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.text("SELECT rev FROM audit")))
    finally:
        engine.dispose()


@pytest.mark.parametrize("multidb", [False, True], ids=["single", "multidb"])
def test_concurrent_upgrades_run_each_migration_once(
    server: Server, tmp_path: Path, multidb: bool
) -> None:
    urls = {"main": server.new_database()}
    if multidb:
        urls["logs"] = server.new_database()
    template = "flask-multidb" if multidb else "flask"
    migrations = _repository(tmp_path, template, multidb, slow=True)
    env = _environment(tmp_path, urls, migrations)
    env["START_AT"] = str(time.time() + 3)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    outputs = [w.communicate(timeout=180) for w in workers]
    results = [
        (w.returncode, out, err) for w, (out, err) in zip(workers, outputs, strict=True)
    ]
    for code, _, err in results:
        assert code == 0, err
    applied = [out.split("APPLIED ", 1)[1].strip() for _, out, _ in results]
    # Exactly one worker applied the whole history; the others found it done.
    assert sorted(applied) == [""] * (WORKERS - 1) + [",".join(REVISIONS)]
    for url in urls.values():
        assert _audit(url) == REVISIONS
        assert version_rows(url) == ["r5"]


def test_killed_upgrade_leaves_no_lock(server: Server, tmp_path: Path) -> None:
    """SIGKILL in the middle of a migration; the next upgrade finishes the job."""
    urls = {"main": server.new_database()}
    migrations = _repository(tmp_path, "flask", multidb=False, slow=False)
    marker = tmp_path / "r3-started"
    r3 = migrations / "versions" / "r3_audit.py"
    original = r3.read_text()
    r3.write_text(
        original.replace(
            "def upgrade():\n",
            "def upgrade():\n"
            f"    open({str(marker)!r}, 'w').close()\n"
            "    import time; time.sleep(60)\n",
        )
    )
    env = _environment(tmp_path, urls, migrations)
    env["START_AT"] = "0"
    victim = subprocess.Popen(
        [sys.executable, "-c", WORKER], env=env, stdout=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert victim.poll() is None, "the upgrade ended before r3 started"
        assert time.monotonic() < deadline, "r3 never started"
        time.sleep(0.1)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    victim.communicate()

    r3.write_text(original)
    env["FLASK_DB_LOCK_TIMEOUT"] = "20"
    result = subprocess.run(
        [sys.executable, "-c", WORKER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert version_rows(urls["main"]) == ["r5"]
    audit = _audit(urls["main"])
    # Whatever the killed process had committed is kept and not redone.
    assert sorted(set(audit)) == REVISIONS
    assert len(audit) == len(REVISIONS)
    assert "audit" in table_names(urls["main"])
