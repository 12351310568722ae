"""One measurement, in a fresh interpreter.

bench.harness runs ``python -W ignore bench/child.py SPEC`` with a workload
folder as the working directory. The child imports only the standard library
before the operation it times, times just that operation with
``time.perf_counter()``, and prints one line: :data:`MARKER` followed by a
JSON object with ``seconds``, ``max_rss_kib`` (the peak resident set size of
this process) and, for the command operations, ``import_seconds`` (importing
the app module, untimed otherwise). On failure the object has ``error``
instead of ``seconds``, and the traceback goes to stderr.

Everything else written to stdout (the commands print their results) goes
to ``/dev/null``: the flask_migrate_alt and Flask-Migrate functions print the
same lines, and the benchmark measures producing them, not a terminal.

SPEC is a JSON object:

* ``{"op": "startup"}``: import the app module (creates the app and db and
  registers the extension, if any).
* ``{"op": <command>, "package": <package>}``: import the app module, then
  call ``<package>.<command>()`` in an app context; the command is one of
  ``init``, ``stamp``, ``upgrade``, ``check``, ``current``, ``heads``,
  ``history``.
* ``{"op": "extension", "package": <package>}``: import the app module
  of the no-extension app (untimed), then time importing ``<package>`` and
  registering ``<package>.Migrate(app, db)``: the extension's own cost,
  measured directly rather than as a difference of two process startups.
* ``{"op": "create_all", "url": <url>, "tables": <n>}``: the floor of the
  full upgrade: create the same tables and indexes with
  ``MetaData.create_all()`` on one connection, in one transaction.

The harness adds ``"tool"`` to the specs it runs for a tool, to choose the
child's environment (``FLASK_DB_SPEEDUPS=0`` for ours_plain); the child
ignores it.
"""

import importlib
import json
import os
import resource
import sys
import time
import traceback

MARKER = "@@bench-result@@ "
APP_MODULE = "benchapp"
COMMANDS = {"init", "stamp", "upgrade", "check", "current", "heads", "history"}


def _startup(spec):
    start = time.perf_counter()
    importlib.import_module(APP_MODULE)
    return {"seconds": time.perf_counter() - start}


def _extension(spec):
    module = importlib.import_module(APP_MODULE)
    start = time.perf_counter()
    package = importlib.import_module(spec["package"])
    package.Migrate(module.app, module.db)
    return {"seconds": time.perf_counter() - start}


def _command(spec):
    start = time.perf_counter()
    module = importlib.import_module(APP_MODULE)
    imported = time.perf_counter() - start
    function = getattr(importlib.import_module(spec["package"]), spec["op"])
    with module.app.app_context():
        start = time.perf_counter()
        function()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "import_seconds": imported}


def _create_all(spec):
    import sqlalchemy as sa

    # The tables and indexes of bench.workloads.history_files().
    metadata = sa.MetaData()
    for number in range(spec["tables"]):
        name = f"t{number:04d}"
        sa.Table(
            name,
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50)),
            sa.Index(f"ix_{name}_name", "name"),
        )
    engine = sa.create_engine(spec["url"])
    if engine.dialect.name == "sqlite":
        _transactional_ddl(engine)
    start = time.perf_counter()
    with engine.begin() as connection:
        metadata.create_all(connection, checkfirst=False)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": seconds}


def _transactional_ddl(engine):
    # Python's sqlite3 commits before each CREATE statement unless it is told
    # to leave transactions alone: SQLAlchemy's recipe for a real BEGIN, so
    # that the floor is one transaction on SQLite too.
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(connection):
        connection.exec_driver_sql("BEGIN")


def _run(spec):
    if spec["op"] == "startup":
        return _startup(spec)
    if spec["op"] == "extension":
        return _extension(spec)
    if spec["op"] == "create_all":
        return _create_all(spec)
    if spec["op"] in COMMANDS:
        return _command(spec)
    raise ValueError(f"unknown operation {spec['op']!r}")


def main():
    spec = json.loads(sys.argv[1])
    # The script's folder (bench/) must not shadow anything; the app module
    # lives in the working directory.
    sys.path[0] = os.getcwd()
    result_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        result = _run(spec)
    except BaseException as exc:
        # BaseException: both tools end a failed command with SystemExit.
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    result["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    os.write(result_fd, (MARKER + json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
