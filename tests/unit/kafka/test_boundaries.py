"""Kafka clients are built only in replayflow/kafka/, and processors/ never imports the
DSL (the layer above it)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import replayflow

SRC = Path(replayflow.__file__).parent
CONSTRUCTOR = re.compile(r"\b(Producer|Consumer|AdminClient)\(")


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_kafka_clients_are_constructed_only_in_the_kafka_package() -> None:
    outside = [
        f"{path.relative_to(SRC)}:{n}"
        for path in _modules(SRC)
        if "kafka" not in path.relative_to(SRC).parts[:1]
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if CONSTRUCTOR.search(line)
    ]
    assert outside == []


def test_processors_do_not_import_the_dsl() -> None:
    found = []
    for path in _modules(SRC / "processors"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            if any(n == "replayflow.dsl" or n.startswith("replayflow.dsl.") for n in names):
                found.append(path.name)
    assert found == []
