"""The package's structure: no import cycles, records at the ground floor, a store that knows no stage."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "enrich"
STAGES = {"enrich.track2d", "enrich.tracklets", "enrich.lift", "enrich.contacts", "enrich.handmodel"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the enrich modules it imports anywhere (lazy imports in functions count too)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("enrich")}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("enrich"):
                for alias in node.names:  # `from enrich.store import reader` imports the submodule
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


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
    graph = import_graph()
    assert len(graph) > 20  # the walk found the package
    # a package's __init__ imports its submodules; a submodule importing the package back is not a cycle here
    without_parents = {m: {e for e in edges if not m.startswith(e + ".")} for m, edges in graph.items()}
    assert _cycle(without_parents) is None, " -> ".join(_cycle(without_parents) or [])


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
