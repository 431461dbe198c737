"""Every import points down the layers of docs/ARCHITECTURE.md, and no module imports itself back."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

# lower number = lower layer; a module may import its own package and lower layers only
LAYERS = {"audio_models": 0, "telephony": 1, "router": 2, "dashboards": 3, "emoroute": 4}


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Return module -> the project modules it imports (anywhere in the file, functions included)."""
    files = {_module_of(p): p for pkg in LAYERS for p in (REPO / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            for name in names:
                while name and name not in files:
                    name = name.rpartition(".")[0]
                if name and name != module and name.split(".")[0] in LAYERS:
                    found.add(name)
        graph[module] = found
    return graph


def test_imports_point_down_the_layers():
    upward = sorted(f"{m} -> {t}" for m, targets in _imports().items() for t in targets
                    if LAYERS[t.split(".")[0]] > LAYERS[m.split(".")[0]])
    assert upward == []


def test_no_module_imports_itself_back():
    graph = _imports()
    # a package's __init__ re-exporting nothing: only module-to-module edges count
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_domain_packages_never_reach_the_shell_and_dashboards_read_redis_through_the_store():
    graph = _imports()
    assert not [m for m, t in graph.items() if not m.startswith("emoroute") and any(x.startswith("emoroute")
                                                                                       for x in t)]
    for path in (REPO / "dashboards").rglob("*.py"):
        text = path.read_text()
        assert "import redis" not in text.replace("from redis.exceptions", ""), path
        assert "router import keys" not in text and "router.keys" not in text, path
