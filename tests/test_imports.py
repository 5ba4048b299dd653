"""Import hygiene: no cycle among exprgan's modules or its packages (function-level imports count)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "exprgan"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """``dotted name -> file`` of every module under ``package``; a package is its ``__init__.py``."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The exprgan modules ``name`` imports anywhere in its file, as Python runs them.

    ``from a.b import c`` imports ``a.b.c`` when that is a module, else ``a.b``. Importing a
    module runs the ``__init__`` of each package above it that ``name`` is not already inside.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            targets.update(f"{base}.{alias.name}" for alias in node.names)  # a.b.c, or a.b when c is not a module
    edges = set()
    for target in targets:
        while target and target not in modules:  # import a.b.c where c is an attribute
            target = target.rpartition(".")[0]
        if not target:
            continue  # not an exprgan module
        edges.add(target)
        parts = target.split(".")
        for k in range(1, len(parts)):  # the packages above it that name is not inside
            ancestor = ".".join(parts[:k])
            if not name.startswith(ancestor + "."):
                edges.add(ancestor)
    return edges - {name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == 1:
                return path[path.index(child) :] + [child]
            if child not in state and (cycle := visit(child)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> exprgan modules it imports``."""
    modules = module_files(package)
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph seen from exprgan's top level: ``exprgan.datamodules.images`` is ``exprgan.datamodules``.

    Edges within one package, and to and from ``exprgan`` itself, are left out.
    """

    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        if name != "exprgan":
            packages.setdefault(top(name), set()).update(top(t) for t in targets if t != "exprgan")
    return {name: targets - {name} for name, targets in packages.items()}


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    root = tmp_path / "exprgan"
    files = {
        "__init__.py": "",
        "a/__init__.py": "from exprgan.a.one import f\n",
        "a/one.py": "def f():\n    from . import two\n",
        "a/two.py": "import exprgan.b.three as three\n",
        "b/__init__.py": "",
        "b/three.py": "from exprgan.a import one\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    graph = import_graph(root)
    assert graph["exprgan.a"] == {"exprgan.a.one"}
    assert graph["exprgan.a.one"] == {"exprgan.a.two"}  # function level, relative
    assert graph["exprgan.a.two"] == {"exprgan.b", "exprgan.b.three"}  # entering b runs its __init__
    assert graph["exprgan.b.three"] == {"exprgan.a", "exprgan.a.one"}
    assert find_cycle(graph) == ["exprgan.a", "exprgan.a.one", "exprgan.a.two", "exprgan.b.three", "exprgan.a"]
    assert find_cycle(package_graph(graph)) == ["exprgan.a", "exprgan.b", "exprgan.a"]


def test_no_module_imports_itself_through_others() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_two_packages_import_each_other() -> None:
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, "packages import each other: " + " -> ".join(cycle)


def test_preprocessing_workers_import_neither_torch_nor_lightning() -> None:
    code = (
        "import sys, exprgan.cache, exprgan.preprocessing.run; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'pytorch_lightning', 'lightning'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
