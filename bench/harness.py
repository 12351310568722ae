"""Build the workloads, run each measurement in a child process, keep the samples.

:func:`run` is the whole benchmark: for each backend it prepares every
workload for each tool, then measures it ``repeat`` times, rotating the order
of the tools on every repetition so that none always runs first (on a warm
or a cold machine). Each measurement is one fresh ``sys.executable`` running
``bench/child.py``, so import costs and peak memory are real.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import workloads
from .child import MARKER
from .workloads import ENVIRONMENT, PACKAGES, TOOLS

CHILD = Path(__file__).resolve().with_name("child.py")
#: Seconds after which a measurement is considered stuck (a lock, a server).
CHILD_TIMEOUT = 900

#: The no-extension app of the startup workload, and the floor of the full
#: upgrade; measured next to the tools, reported apart.
BASELINE = "none"
FLOOR = "create_all"

READ_ONLY = ("current", "heads", "history")
WORKLOADS = (
    "startup",
    "extension",
    "noop_upgrade",
    "full_upgrade",
    "check",
    *READ_ONLY,
)

#: The environment variables the PostgreSQL server URL is read from, in order.
POSTGRESQL_ENV = ("BENCH_POSTGRESQL_URL", "TEST_POSTGRESQL_URL")

Log = Callable[[str], None]


class BenchError(RuntimeError):
    """A measurement failed or left the database in an unexpected state."""


@dataclass
class Plan:
    """What to measure: backends, tools, sizes and repetitions."""

    backends: tuple[str, ...] = ("sqlite",)
    postgresql_url: str | None = None
    tools: tuple[str, ...] = TOOLS
    repeat: int = 5
    #: Repetitions of the startup workload, at least (see _measure).
    startup_repeat: int = 15
    #: History sizes N of the no-op upgrade.
    noop_sizes: tuple[int, ...] = (100, 500, 2000)
    #: History sizes N of current, heads and history.
    read_only_sizes: tuple[int, ...] = (100, 500, 2000)
    #: Revisions applied by the full upgrade.
    full_sizes: tuple[int, ...] = (500,)
    #: Tables in the schema of the check workload.
    check_sizes: tuple[int, ...] = (500,)
    mode: str = "full"
    notes: list[str] = field(default_factory=list)

    @classmethod
    def full(cls, **changes: Any) -> Plan:
        return cls(**changes)

    @classmethod
    def quick(cls, **changes: Any) -> Plan:
        """The sizes of ``--quick``: about three minutes on two quiet cores."""
        settings: dict[str, Any] = {
            "repeat": 3,
            "noop_sizes": (100, 500),
            "read_only_sizes": (500,),
            "full_sizes": (100,),
            "check_sizes": (100,),
            "mode": "quick",
        }
        settings.update(changes)
        return cls(**settings)


def available_tools() -> tuple[str, ...]:
    """The :data:`~bench.workloads.TOOLS` whose package is installed.

    ``ours`` and ``ours_plain`` always are (this checkout);
    ``flask_migrate`` when Flask-Migrate is.
    """
    return tuple(
        tool for tool in TOOLS if importlib.util.find_spec(PACKAGES[tool]) is not None
    )


def postgresql_url_from_env() -> str | None:
    """The server URL from :data:`POSTGRESQL_ENV`, or ``None``."""
    for name in POSTGRESQL_ENV:
        if os.environ.get(name):
            return os.environ[name]
    return None


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


# --- databases -------------------------------------------------------------


class Databases:
    """Empty databases on one backend, made for the benchmark and dropped after.

    SQLite databases are files under ``folder``; PostgreSQL ones are created
    on the server as ``fma_bench_<random>``.
    """

    def __init__(self, backend: str, folder: Path, server_url: str | None) -> None:
        import sqlalchemy as sa

        self.backend = backend
        self.folder = folder
        self.server_version: str | None = None
        self._created: list[str] = []
        self._admin: Any = None
        if backend == "sqlite":
            import sqlite3

            self.server_version = sqlite3.sqlite_version
            return
        if backend != "postgresql":
            raise BenchError(f"unknown backend {backend!r}: use sqlite or postgresql")
        if not server_url:
            raise BenchError(
                "no PostgreSQL URL: set BENCH_POSTGRESQL_URL or TEST_POSTGRESQL_URL"
            )
        self._url = sa.make_url(server_url)
        self._admin = sa.create_engine(self._url, isolation_level="AUTOCOMMIT")
        try:
            with self._admin.connect() as conn:
                self.server_version = conn.execute(
                    sa.text("SHOW server_version")
                ).scalar()
        except sa.exc.SQLAlchemyError as exc:
            self._admin.dispose()
            first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise BenchError(
                f"PostgreSQL at {self._url!r} does not answer: {first}"
            ) from exc

    def new(self, label: str) -> str:
        """Create an empty database; return its URL."""
        if self.backend == "sqlite":
            self.folder.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{self.folder / f'{label}-{uuid.uuid4().hex[:8]}.db'}"
        name = f"fma_bench_{uuid.uuid4().hex[:12]}"
        self._execute(f"CREATE DATABASE {name}")
        self._created.append(name)
        return self._url.set(database=name).render_as_string(hide_password=False)

    def reset(self, url: str) -> None:
        """Make the database at ``url`` empty again."""
        if self.backend == "sqlite":
            Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            return
        import sqlalchemy as sa

        name = sa.make_url(url).database
        self._execute(f"DROP DATABASE {name} WITH (FORCE)")
        self._execute(f"CREATE DATABASE {name}")

    def state(self, url: str) -> tuple[int, list[str]]:
        """The number of tables and the rows of ``alembic_version`` at ``url``."""
        import sqlalchemy as sa

        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                tables = sa.inspect(conn).get_table_names()
                versions = []
                if "alembic_version" in tables:
                    query = sa.text("SELECT version_num FROM alembic_version")
                    versions = sorted(row[0] for row in conn.execute(query))
            return len(tables), versions
        finally:
            engine.dispose()

    def close(self) -> None:
        if self._admin is None:
            return
        for name in self._created:
            self._execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self._created.clear()
        self._admin.dispose()

    def _execute(self, statement: str) -> None:
        import sqlalchemy as sa

        with self._admin.connect() as conn:
            conn.execute(sa.text(statement))


@contextmanager
def _databases(
    backend: str, folder: Path, server_url: str | None
) -> Iterator[Databases]:
    databases = Databases(backend, folder, server_url)
    try:
        yield databases
    finally:
        databases.close()


# --- child processes -------------------------------------------------------


def _child_environment(tool: str | None) -> dict[str, str]:
    """The caller's environment, less its Flask settings, plus the tool's own."""
    env = {
        name: value
        for name, value in os.environ.items()
        # Settings of the caller's own Flask app, and any FLASK_DB_* switch
        # (FLASK_DB_SPEEDUPS, FLASK_DB_LOCK, ...), must not reach the
        # benchmark apps: each tool runs as ENVIRONMENT says and no other way.
        if not name.startswith("FLASK_DB_")
        and name not in ("FLASK_APP", "FLASK_DEBUG", "PYTHONWARNINGS")
        # Python's defaults for caches next to source, as on a server: both
        # tools' revision files are then imported from bytecode, and ours
        # keeps its revision cache (which follows these variables).
        and name not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    env.update(ENVIRONMENT.get(tool or "", {}))
    return env


def tool_spec(op: str, tool: str) -> dict[str, Any]:
    """The spec of ``op`` run by ``tool``: its package, and its environment."""
    return {"op": op, "package": PACKAGES[tool], "tool": tool}


def run_child(spec: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """Run one measurement (see bench/child.py); return its result.

    The child's environment is the tool's (``spec["tool"]``, see
    :data:`~bench.workloads.ENVIRONMENT`). Adds ``process_seconds``: the
    wall time of the whole child process, from starting the interpreter to
    its exit.
    """
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-W", "ignore", str(CHILD), json.dumps(spec)],
            cwd=cwd,
            env=_child_environment(spec.get("tool")),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"{_what(spec)} in {cwd} did not finish in {CHILD_TIMEOUT} s"
        ) from exc
    wall = time.perf_counter() - start
    result: dict[str, Any] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER) :])
    if result is None or "error" in result or proc.returncode != 0:
        reason = (result or {}).get("error") or f"exit status {proc.returncode}"
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise BenchError(f"{_what(spec)} in {cwd} failed: {reason}\n{tail}")
    result["process_seconds"] = wall
    return result


def _what(spec: dict[str, Any]) -> str:
    return f"{spec['tool']} {spec['op']}" if "tool" in spec else spec["op"]


# --- the workloads ---------------------------------------------------------


Case = Callable[[], dict[str, Any]]


@dataclass
class _Workload:
    """One row of results to measure: a case (a callable) per tool."""

    name: str
    size: int | None
    cases: dict[str, Case]


class _Backend:
    """Prepares and measures every workload on one backend.

    Preparing comes first and runs two child processes at a time (nothing
    is being measured then); measuring runs one process at a time.
    """

    def __init__(
        self,
        plan: Plan,
        databases: Databases,
        repositories: dict[str, Path],
        folder: Path,
        log: Log,
        measurements: list[dict[str, Any]],
    ) -> None:
        self.plan = plan
        self.databases = databases
        self.backend = databases.backend
        self.repositories = repositories
        self.folder = folder
        self.log = log
        self.measurements = measurements
        self._setup: list[Callable[[], Any]] = []

    def run(self) -> None:
        todo = [self.startup(), self.extension()]
        for size in sorted(set(self.plan.noop_sizes) | set(self.plan.read_only_sizes)):
            todo += self.history(size)
        todo += [self.full_upgrade(size) for size in self.plan.full_sizes]
        todo += [self.check(size) for size in self.plan.check_sizes]
        _in_parallel(self._setup)
        self.log(f"{self.backend}: workloads prepared")
        for workload in todo:
            self._measure(workload)

    # preparing

    def _workspace(
        self,
        path: Path,
        tool: str,
        url: str,
        revisions: dict[str, str] | None = None,
        tables: int | None = None,
    ) -> Path:
        """A folder with the app module and, for a tool, its repository."""
        path.mkdir(parents=True)
        if tool in PACKAGES:
            shutil.copytree(self.repositories[PACKAGES[tool]], path / "migrations")
            for name, text in (revisions or {}).items():
                (path / "migrations" / "versions" / name).write_text(text)
        app = path / f"{workloads.APP_MODULE}.py"
        app.write_text(workloads.app_source(tool, url, tables))
        # Compiled now, so that no measurement pays for writing bytecode of
        # the app, env.py or the revision files, and none is first to do so.
        compileall.compile_dir(path, quiet=1)
        return path

    def _to_head_in_setup(
        self,
        command: str,
        tool: str,
        path: Path,
        url: str,
        head: str,
        warm_up: tuple[str, ...] = (),
    ) -> None:
        """Bring the database to ``head`` with the tool's own ``command``.

        ``command`` is ``upgrade``, or ``stamp`` where the tables do not
        matter; the ``warm_up`` commands run after it. Either way the tool
        has read every revision file once, as a command run before on the
        same checkout would have.
        """

        def to_head() -> None:
            run_child(tool_spec(command, tool), path)
            _, versions = self.databases.state(url)
            if versions != [head]:
                raise BenchError(f"{tool} {command} left {url} at {versions}")
            for op in warm_up:
                run_child(tool_spec(op, tool), path)

        self._setup.append(to_head)

    # measuring

    def _measure(self, workload: _Workload) -> None:
        names = list(workload.cases)
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        repeat = self.plan.repeat
        if workload.name in ("startup", "extension"):
            # The overhead is a difference of two ~0.5 s imports: a few
            # tens of milliseconds that three runs cannot tell from noise.
            # Each run is cheap, so take more.
            repeat = max(repeat, self.plan.startup_repeat)
        for rep in range(repeat):
            turn = rep % len(names)
            for name in names[turn:] + names[:turn]:
                samples[name].append(workload.cases[name]())
        medians = []
        for name in names:
            seconds = [s["seconds"] for s in samples[name]]
            self.measurements.append(
                {
                    "workload": workload.name,
                    "backend": self.backend,
                    "n": workload.size,
                    "tool": name,
                    "samples": samples[name],
                    "seconds": summary(seconds),
                    "process_seconds": summary(
                        [s["process_seconds"] for s in samples[name]]
                    ),
                    "max_rss_kib": summary([s["max_rss_kib"] for s in samples[name]]),
                }
            )
            medians.append(f"{name} {statistics.median(seconds) * 1000:.1f} ms")
        where = f"{self.backend} {workload.name}"
        if workload.size is not None:
            where += f" N={workload.size}"
        self.log(f"{where}: " + ", ".join(medians))

    # the workloads

    def startup(self) -> _Workload:
        url = self.databases.new("startup")
        cases = {}
        for tool in (*self.plan.tools, BASELINE):
            path = self._workspace(self.folder / "startup" / tool, tool, url)
            spec = {"op": "startup"} if tool == BASELINE else tool_spec("startup", tool)
            cases[tool] = _bind(run_child, spec, path)
        return _Workload("startup", None, cases)

    def extension(self) -> _Workload:
        """Importing each package and registering ``Migrate``, in one process.

        The startup workload gets the same cost as the difference of two
        process startups of about half a second each, which the noise of a
        shared machine can swamp; here it is timed on its own, after the
        app's other imports (Flask, Flask-SQLAlchemy, the app) are done.
        """
        url = self.databases.new("extension")
        path = self._workspace(self.folder / "extension", BASELINE, url)
        cases = {
            tool: _bind(run_child, tool_spec("extension", tool), path)
            for tool in self.plan.tools
        }
        return _Workload("extension", None, cases)

    def history(self, size: int) -> list[_Workload]:
        """The no-op upgrade and the read-only commands at history size N."""
        files = workloads.history_files(size)
        head = workloads.head_of_history(size)
        paths = {}
        for tool in self.plan.tools:
            url = self.databases.new(f"history{size}-{tool}")
            path = self.folder / f"history-{size}" / tool
            paths[tool] = self._workspace(path, tool, url, revisions=files)
            # The no-op upgrade and the read-only commands read only the
            # version table: stamping is enough, and much quicker than
            # creating N tables. Stamping need not read the revision files
            # through the tool; one `heads` does, as any command run on the
            # checkout before would have.
            self._to_head_in_setup(
                "stamp", tool, paths[tool], url, head, warm_up=("heads",)
            )

        def cases(command: str) -> dict[str, Case]:
            return {
                tool: _bind(run_child, tool_spec(command, tool), path)
                for tool, path in paths.items()
            }

        todo = []
        if size in self.plan.noop_sizes:
            todo.append(_Workload("noop_upgrade", size, cases("upgrade")))
        if size in self.plan.read_only_sizes:
            todo += [_Workload(c, size, cases(c)) for c in READ_ONLY]
        return todo

    def full_upgrade(self, size: int) -> _Workload:
        """Every revision from an empty database; and create_all as the floor."""
        files = workloads.history_files(size)
        head = workloads.head_of_history(size)
        cases = {}
        for tool in self.plan.tools:
            url = self.databases.new(f"full{size}-{tool}")
            path = self._workspace(
                self.folder / f"full-{size}" / tool, tool, url, revisions=files
            )
            spec = tool_spec("upgrade", tool)
            # One table per revision, and alembic_version.
            cases[tool] = self._from_empty(spec, path, url, size + 1, [head])
            # Once untimed, like the setup upgrade of the other workloads:
            # whatever a tool keeps in __pycache__ next to the revision files
            # is then there for every repetition.
            self._setup.append(cases[tool])
        url = self.databases.new(f"full{size}-floor")
        path = self.folder / f"full-{size}" / FLOOR
        path.mkdir(parents=True)
        spec = {"op": "create_all", "url": url, "tables": size}
        cases[FLOOR] = self._from_empty(spec, path, url, size, [])
        return _Workload("full_upgrade", size, cases)

    def _from_empty(
        self,
        spec: dict[str, Any],
        path: Path,
        url: str,
        tables: int,
        versions: list[str],
    ) -> Case:
        def measure() -> dict[str, Any]:
            self.databases.reset(url)
            result = run_child(spec, path)
            state = self.databases.state(url)
            if state != (tables, versions):
                raise BenchError(
                    f"{spec['op']} in {path} left {state[0]} tables at "
                    f"{state[1]}; expected {tables} at {versions}"
                )
            return result

        return measure

    def check(self, size: int) -> _Workload:
        """``check()`` with no model changes on a schema of N tables.

        No tool keeps anything of one comparison for the next, so the first
        check after a change and a repeated one are the same work: one
        workload. The setup upgrade has read the revision files, as for the
        other workloads.
        """
        files = workloads.check_files(size)
        cases: dict[str, Case] = {}
        for tool in self.plan.tools:
            url = self.databases.new(f"check{size}-{tool}")
            path = self._workspace(
                self.folder / f"check-{size}" / tool,
                tool,
                url,
                revisions=files,
                tables=size,
            )
            self._to_head_in_setup("upgrade", tool, path, url, workloads.CHECK_REVISION)
            cases[tool] = _bind(run_child, tool_spec("check", tool), path)
        return _Workload("check", size, cases)


def _in_parallel(tasks: list[Callable[[], Any]]) -> None:
    """Run untimed preparation two (or as many as CPUs) at a time."""
    if not tasks:
        return
    workers = min(len(tasks), os.cpu_count() or 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(task) for task in tasks]:
            future.result()


def _bind(
    function: Callable[[dict[str, Any], Path], dict[str, Any]],
    spec: dict[str, Any],
    path: Path,
) -> Callable[[], dict[str, Any]]:
    return lambda: function(spec, path)


def _compile_packages(tools: tuple[str, ...]) -> None:
    """Write the bytecode of each tool's package, as ``pip install`` does.

    An editable install (this checkout) may have none, or stale files; with
    ``PYTHONDONTWRITEBYTECODE`` set, every measuring process would then
    compile the package again and pay for it, which no installed copy does.
    """
    for package in dict.fromkeys(PACKAGES[tool] for tool in tools):
        spec = importlib.util.find_spec(package)
        for folder in (spec and spec.submodule_search_locations) or ():
            compileall.compile_dir(folder, quiet=1)


def _init_repositories(tools: tuple[str, ...], folder: Path) -> dict[str, Path]:
    """Each package's repository, made once by its ``init`` and copied after.

    Keyed by package: ours and ours_plain share flask_migrate_alt's
    repository and templates (each workload still gets a copy of its own).
    """
    repositories = {}
    inits = []
    for tool in tools:
        package = PACKAGES[tool]
        if package in repositories:
            continue
        path = folder / package
        path.mkdir(parents=True)
        url = f"sqlite:///{path / 'unused.db'}"
        (path / f"{workloads.APP_MODULE}.py").write_text(
            workloads.app_source(tool, url)
        )
        inits.append(_bind(run_child, tool_spec("init", tool), path))
        repositories[package] = path / "migrations"
    _in_parallel(inits)
    return repositories


# --- the whole run ---------------------------------------------------------


def versions() -> dict[str, str | None]:
    """The installed versions of everything the measurements depend on."""
    found: dict[str, str | None] = {}
    for name in (
        "flask_migrate_alt",
        "Flask-Migrate",
        "alembic",
        "SQLAlchemy",
        "Flask",
        "Flask-SQLAlchemy",
        "psycopg",
        "matplotlib",
    ):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or None,
        "memory_mib": None,
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_mib"] = int(line.split()[1]) // 1024
                break
    except OSError:
        pass  # not Linux: platform.processor() is all there is
    return info


def run(plan: Plan, workdir: Path, log: Log | None = None) -> dict[str, Any]:
    """Run the benchmark in ``workdir`` (an empty folder); return the results.

    The results are what :func:`bench.report.write` turns into files: the
    plan, machine and versions, and a list of measurements, each with its
    raw samples and the median, min and max of ``seconds`` and
    ``max_rss_kib``.
    """
    started = time.perf_counter()
    log = log or _progress(started)
    measurements: list[dict[str, Any]] = []
    servers: dict[str, str | None] = {}
    _compile_packages(plan.tools)
    repositories = _init_repositories(plan.tools, workdir / "repositories")
    for backend in plan.backends:
        folder = workdir / backend
        with _databases(backend, folder / "databases", plan.postgresql_url) as dbs:
            servers[backend] = dbs.server_version
            _Backend(plan, dbs, repositories, folder, log, measurements).run()
    settings = asdict(plan)
    settings.pop("postgresql_url")  # may hold a password
    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": time.perf_counter() - started,
        "plan": settings,
        "machine": machine(),
        "versions": versions(),
        "servers": servers,
        "tools": list(plan.tools),
        "workloads": sorted({m["workload"] for m in measurements}, key=WORKLOADS.index),
        "measurements": measurements,
    }


def _progress(started: float) -> Log:
    """Print each message to stderr with the seconds since ``started``."""

    def log(message: str) -> None:
        elapsed = time.perf_counter() - started
        print(f"[{elapsed:4.0f} s] {message}", file=sys.stderr, flush=True)

    return log
