"""``python -m bench``: measure flask_migrate_alt and Flask-Migrate side by side."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .harness import (
    POSTGRESQL_ENV,
    BenchError,
    Plan,
    available_tools,
    postgresql_url_from_env,
    run,
)
from .report import write
from .workloads import TOOLS

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=(
            "Measure flask_migrate_alt ('ours'), the same with its speed-ups "
            "off ('ours_plain', FLASK_DB_SPEEDUPS=0) and Flask-Migrate 4.1 "
            "('flask_migrate') on generated workloads, each measurement in a "
            "fresh process, and write results.md, results.json and plot.png."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller sizes and 3 repetitions: about three minutes on two cores",
    )
    parser.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help=(
            "comma-separated: sqlite, postgresql (default: both; the "
            f"PostgreSQL URL comes from {' or '.join(POSTGRESQL_ENV)})"
        ),
    )
    parser.add_argument(
        "--tools",
        help=(
            f"comma-separated: {', '.join(TOOLS)} (default: all three, "
            "without flask_migrate when Flask-Migrate is not installed)"
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help="folder for the results (default: bench/results)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="repetitions of each measurement (default: 5, or 3 with --quick)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated workloads (the temporary folder is printed)",
    )
    return parser


def _plan(args: argparse.Namespace) -> Plan:
    backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown or not backends:
        raise SystemExit(
            f"error: --backends takes sqlite and/or postgresql, not {args.backends!r}"
        )
    notes = []
    url = postgresql_url_from_env()
    if "postgresql" in backends and url is None:
        notes.append(
            f"PostgreSQL skipped: neither {' nor '.join(POSTGRESQL_ENV)} is set, "
            "so only SQLite was measured."
        )
        backends = tuple(b for b in backends if b != "postgresql") or ("sqlite",)
    tools = _tools(args.tools, notes)
    changes = {"backends": backends, "postgresql_url": url, "tools": tools}
    if args.repeat is not None:
        if args.repeat < 1:
            raise SystemExit("error: --repeat must be at least 1")
        changes["repeat"] = args.repeat
    plan = Plan.quick(**changes) if args.quick else Plan.full(**changes)
    plan.notes.extend(notes)
    return plan


def _tools(option: str | None, notes: list[str]) -> tuple[str, ...]:
    """The tools of ``--tools``, in the order of :data:`TOOLS`."""
    available = available_tools()
    if option is None:
        if "flask_migrate" not in available:
            notes.append(
                'Flask-Migrate is not installed (pip install -e ".[bench]"): '
                "only flask_migrate_alt was measured."
            )
        return available
    chosen = {t.strip() for t in option.split(",") if t.strip()}
    if not chosen or chosen - set(TOOLS):
        raise SystemExit(
            f"error: --tools takes one or more of {', '.join(TOOLS)}, not {option!r}"
        )
    missing = chosen - set(available)
    if missing:
        raise SystemExit(
            f"error: {', '.join(sorted(missing))} cannot be measured: "
            'Flask-Migrate is not installed (pip install -e ".[bench]")'
        )
    return tuple(tool for tool in TOOLS if tool in chosen)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    plan = _plan(args)
    for note in plan.notes:
        print(note, file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="fma_bench_"))
    try:
        results = run(plan, workdir)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"workloads kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    written = write(results, args.out)
    print(written["markdown"].read_text())
    print(f"written: {', '.join(str(path) for path in written.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
