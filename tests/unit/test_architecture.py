"""The layering rules of docs/architecture.md, checked on the source itself.

Every import in src/replayflow (module level, inside functions and under TYPE_CHECKING
alike: a lazy import is still a dependency) is read with `ast`, so a change that runs
an import back up the layers, closes a circle, grows a module past the size limit, or
builds a Kafka client outside replayflow/kafka/ fails here with the offending names.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "replayflow"

# Lower numbers sit lower. A module may import its own layer and the ones below it.
LAYERS: dict[str, int] = {
    "replayflow.core": 0,
    "replayflow.settings": 1,
    "replayflow.codec": 1,
    "replayflow.codec_compiled": 1,  # compiled Avro writers, below the codec
    "replayflow.store": 1,
    "replayflow.kafka": 1,
    "replayflow.topics": 1,
    "replayflow.execution": 1,
    "replayflow.telemetry": 1,
    "replayflow.processors": 2,
    "replayflow.mcp_tools": 2,  # MCP requests as steps: I/O beside the worker's
    "replayflow.dsl": 3,
    "replayflow.client": 4,
    "replayflow.client_watchers": 4,
    "replayflow.client_schedules": 4,
    "replayflow.api": 4,
    "replayflow.testing": 4,
    "replayflow.testing_histories": 4,
    "replayflow.streams": 4,  # reading durable streams (the client's, the API's)
    "replayflow.ai": 4,  # agent frameworks as workflows: on core, execution, mcp_tools
    "replayflow": 4,  # the package root: the public API, loading client/testing lazily
    "replayflow.cli": 5,
}
MAX_LINES = 500
CLIENT_CLASSES = {
    "Producer",
    "Consumer",
    "AdminClient",
    "SerializingProducer",
    "DeserializingConsumer",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The project module an imported dotted name lands in (a submodule, or the
    longest package prefix that exists)."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def _imports(module: str) -> frozenset[str]:
    path = _modules()[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module == "__future__":
                continue
            if node.level:
                base = module.split(".")
                if not is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from pkg import sub` depends on the submodule when there is one.
            targets = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
            targets = [t for t in targets if _resolve(t) is not None] or [prefix]
            if len(targets) > 1:
                targets = [t for t in targets if t != prefix]
        else:
            continue
        for target in targets:
            if not target.startswith("replayflow"):
                continue
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return frozenset(found)


def _layer(module: str) -> tuple[str, int]:
    best = ""
    for prefix in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    assert best, f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return best, LAYERS[best]


def test_every_module_has_a_layer() -> None:
    for module in _modules():
        _layer(module)


def test_imports_run_downward_only() -> None:
    upward = []
    for module in _modules():
        room, level = _layer(module)
        for target in sorted(_imports(module)):
            target_room, target_level = _layer(target)
            if target_level > level:
                upward.append(f"{module} ({room}) imports {target} ({target_room})")
    assert not upward, "imports that run up the layers:\n" + "\n".join(upward)


def test_no_import_circles() -> None:
    graph = {module: _imports(module) for module in _modules()}
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("module", sorted(_modules()))
def test_module_is_small(module: str) -> None:
    lines = len(_modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (limit {MAX_LINES}): split it"


def test_kafka_clients_are_built_in_one_place() -> None:
    outside = []
    for module, path in _modules().items():
        if module == "replayflow.kafka" or module.startswith("replayflow.kafka."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in CLIENT_CLASSES:
                    outside.append(f"{module}:{node.lineno} builds {name}")
    assert not outside, "Kafka clients built outside replayflow/kafka/:\n" + "\n".join(outside)


def test_core_imports_nothing_impure() -> None:
    forbidden = ("confluent_kafka", "rocksdict", "faust", "threading", "socket", "time")
    found = []
    for module, path in _modules().items():
        if not (module == "replayflow.core" or module.startswith("replayflow.core.")):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            found += [f"{module} imports {n}" for n in names if n.split(".")[0] in forbidden]
    assert not found, "\n".join(found)
