"""The package's structure: no import cycles, records at the ground floor, a store that knows no stage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "enrich"
TREES = ("enrich", "benchmarks")  # the package and the code that imports it
MAX_LINES = 500
STAGES = {"enrich.track2d", "enrich.tracklets", "enrich.lift", "enrich.contacts", "enrich.handmodel"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(trees: tuple[str, ...] = TREES) -> dict[str, Path]:
    return {_module_name(p): p for tree in trees for p in (ROOT / tree).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> list[tuple[str, str]]:
    """(imported module, imported name or "") for every import in the file, lazy ones in functions too."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from enrich.store import reader` imports the submodule
                sub = f"{node.module}.{alias.name}"
                found.append((sub, "") if sub in modules else (node.module, alias.name))
    return found


def import_graph(trees: tuple[str, ...] = ("enrich",)) -> dict[str, set[str]]:
    """module -> the modules of ``trees`` it imports anywhere (lazy imports in functions count too)."""
    modules = _modules(trees)
    return {
        name: {m for m, _ in _imports(path, modules) if m in modules and m != name} for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*stack, nxt])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    """The whole repository's code, lazy imports and imports of the ``enrich`` package itself included."""
    graph = import_graph(TREES)
    assert len(graph) > 30 and "benchmarks.bench_2d" in graph  # the walk found both trees
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_private_name_imported_across_modules() -> None:
    modules = _modules()
    crossings = [
        f"{_module_name(path)} imports {name} from {module}"
        for path in modules.values()
        for module, name in _imports(path, modules)
        if module in modules and name.startswith("_") and not name.startswith("__")
    ]
    assert crossings == []


def test_no_module_over_the_line_limit() -> None:
    lines = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = {name: n for name, n in lines.items() if n > MAX_LINES}
    assert long == {}


def test_every_error_class_lives_in_errors() -> None:
    """An exception class defined anywhere but errors.py (private helpers aside) is one a user cannot find."""
    strays = []
    for name, path in _modules(("enrich",)).items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            bases = [ast.unparse(b) for b in getattr(node, "bases", [])]
            errorish = node.__class__ is ast.ClassDef and any(b.endswith(("Error", "Exception")) for b in bases)
            if errorish and name != "enrich.errors" and not node.name.startswith("_"):
                strays.append(f"{name}.{node.name}")
    assert not strays, f"error classes outside enrich/errors.py: {strays}"


def test_ground_floor_imports_nothing_above_it() -> None:
    graph = import_graph()
    assert graph["enrich.constants"] == set()
    assert graph["enrich.errors"] == set()
    assert graph["enrich.records"] <= {"enrich.constants", "enrich.errors"}


@pytest.mark.parametrize("package", ["enrich.store", "enrich.inputs"])
def test_store_and_inputs_know_no_stage(package: str) -> None:
    graph = import_graph()
    for module, edges in graph.items():
        if module == package or module.startswith(package + "."):
            assert not edges & STAGES, f"{module} imports {edges & STAGES}"
            assert not {e for e in edges if e.startswith("enrich.pipeline") or e.startswith("enrich.executor")}


def test_import_enrich_is_light() -> None:
    code = "import sys, enrich, enrich.records; print(sorted({'h5py', 'torch', 'pandas', 'cv2'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_run_path_does_not_import_mediapipe_or_pandas() -> None:
    """A worker loads the landmark models and the pipeline: mediapipe's own import (0.6-1 s) and pandas' are not
    needed for that, and each worker would pay them."""
    code = (
        "import sys; from enrich.pipeline import ClipProcessor, RunConfig; ClipProcessor(RunConfig()); "
        "print(sorted({'mediapipe', 'pandas'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
