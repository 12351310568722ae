"""The package's shape: layers that import one way, and one seam for internals.

``docs/contributing.rst`` describes the layers; these tests keep the code
to it. They read the source with :mod:`ast` (nothing is imported), so a
new module, an upward import or a private library name outside
``flask_migrate_alt/speedups/`` fails here with the file and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "flask_migrate_alt"

#: Lowest first. A module may import modules of its own layer or below,
#: never above. Imports under ``if TYPE_CHECKING:`` are for annotations
#: only and do not count.
LAYERS: list[set[str]] = [
    {"errors", "paths"},
    {"state", "autogenerate"},
    {"databases"},
    {"speedups"},
    {"config"},
    {"environment", "locking"},
    {"commands", "inspection"},
    {"migration_status", "review", "testing", "pytest_plugin"},
    {"cli"},
    {"extension"},
    {"alembic_extension"},
    {"__init__"},
]

#: The only place that may use private Alembic/SQLAlchemy names.
SEAM = "speedups"

LIBRARIES = ("alembic", "sqlalchemy", "flask", "click", "werkzeug")


def modules() -> dict[str, Path]:
    """Dotted names below the package (``speedups.graph``) -> file."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def unit(module: str) -> str:
    """The unit a layer lists: the top-level module or sub-package."""
    return module.split(".")[0]


def layer_of(module: str) -> int:
    for number, names in enumerate(LAYERS):
        if unit(module) in names:
            return number
    raise AssertionError(
        f"flask_migrate_alt/{module.replace('.', '/')}: not in any layer; add it "
        "to LAYERS here and to docs/contributing.rst"
    )


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(n) for n in ast.walk(child))
    return skipped


def imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """The package modules ``module`` imports at run time, with line numbers."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = _type_checking_nodes(tree)
    known = modules()
    package = (
        module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    )
    if module == "__init__":
        package = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.level:
            base = (
                package[: len(package) - (node.level - 1)]
                if node.level > 1
                else package
            )
            target = [*base, *(node.module.split(".") if node.module else [])]
            names = [alias.name for alias in node.names]
            submodules = [
                ".".join([*target, name])
                for name in names
                if ".".join([*target, name]) in known
            ]
            # "from . import speedups" imports the sub-module; "from .state
            # import x" imports the module itself.
            yield from ((name, node.lineno) for name in submodules)
            if not submodules:
                yield (".".join(target) or "__init__"), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("flask_migrate_alt."):
                    yield alias.name.removeprefix("flask_migrate_alt."), node.lineno


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_imports_point_down() -> None:
    wrong = []
    for module, path in modules().items():
        for target, line in imports(module, path):
            if unit(target) == unit(module):
                continue
            if layer_of(target) > layer_of(module):
                wrong.append(
                    f"{path.relative_to(REPO)}:{line}: {module} (layer "
                    f"{layer_of(module)}) imports {target} (layer {layer_of(target)})"
                )
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    graph = {
        module: {t for t, _ in imports(module, path) if t != module}
        for module, path in modules().items()
    }
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(module: str, stack: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return [*stack, module, target]
            if target not in state:
                found = visit(target, [*stack, module])
                if found:
                    return found
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [])
            assert cycle is None, " -> ".join(cycle)


def _our_private_names() -> set[str]:
    """Every ``_name`` the package outside the seam defines itself."""
    names: set[str] = set()
    for module, path in modules().items():
        if unit(module) == SEAM:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
    return {name for name in names if name.startswith("_")}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path, ours: set[str]) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            if node.attr not in ours:
                yield f"{where}:{node.lineno}: .{node.attr}"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "setattr", "hasattr", "delattr"):
                if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    value = node.args[1].value
                    if isinstance(value, str) and _private(value) and value not in ours:
                        yield f"{where}:{node.lineno}: {node.func.id}(..., {value!r})"
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] in LIBRARIES:
                parts = node.module.split(".")
                names = [alias.name for alias in node.names]
                if any(_private(part) for part in [*parts, *names]):
                    yield f"{where}:{node.lineno}: from {node.module} import ..."


def test_no_private_library_names_outside_the_seam() -> None:
    ours = _our_private_names()
    found = [
        use
        for module, path in modules().items()
        if unit(module) != SEAM
        for use in private_uses(path, ours)
    ]
    assert not found, "private names outside flask_migrate_alt/speedups:\n" + "\n".join(
        found
    )


def test_the_private_name_scan_finds_one(tmp_path: Path) -> None:
    """The scan itself: a use of a private Alembic name is reported."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from alembic.script import ScriptDirectory\n"
        "from sqlalchemy.engine.reflection import _ReflectionInfo\n"
        "def f(s: ScriptDirectory):\n"
        "    return s._load_revisions(), getattr(s, '_version_locations')\n"
    )
    found = list(private_uses(sample, _our_private_names()))
    assert len(found) == 3, found


def _library_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] in LIBRARIES:
                names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in LIBRARIES:
                    names.add(alias.asname or alias.name.split(".")[0])
    return names


@pytest.mark.parametrize("module", sorted(modules()))
def test_no_process_wide_patching(module: str) -> None:
    """No attribute of a library module or class is assigned, and no gc.freeze()."""
    path = modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    library = _library_names(tree)
    wrong = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            if isinstance(target, ast.Attribute):
                root = target.value
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in library:
                    wrong.append(f"line {node.lineno}: {ast.unparse(target)} = ...")
        if isinstance(node, ast.Call) and ast.unparse(node.func) in (
            "gc.freeze",
            "setattr",
        ):
            first = node.args[0] if node.args else None
            if ast.unparse(node.func) == "gc.freeze":
                wrong.append(f"line {node.lineno}: gc.freeze()")
            elif isinstance(first, ast.Name) and first.id in library:
                wrong.append(f"line {node.lineno}: setattr({first.id}, ...)")
    assert not wrong, f"{path.relative_to(REPO)}:\n" + "\n".join(wrong)


def test_no_private_names_imported_across_modules() -> None:
    """Shared plumbing is public within the package, not borrowed privately."""
    wrong = []
    for path in modules().values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    if _private(alias.name):
                        wrong.append(
                            f"{path.relative_to(REPO)}:{node.lineno}: "
                            f"from {'.' * node.level}{node.module or ''} "
                            f"import {alias.name}"
                        )
    assert not wrong, "\n".join(wrong)
