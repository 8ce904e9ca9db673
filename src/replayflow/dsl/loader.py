"""Reading a workflow document: YAML with 1.2 semantics (`on:` stays a string key),
or JSON. Keeps the line of every value, by JSON pointer, for error messages."""

from __future__ import annotations

import contextlib
import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from replayflow.core.errors import ReplayflowError


class LoadError(ReplayflowError, ValueError):
    """Text that is not a YAML or JSON document; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Source:
    """A parsed document: plain JSON values, and the line of each JSON pointer."""

    data: Any
    text: str
    lines: dict[str, int] = field(default_factory=dict)
    path: str = "<document>"

    def line_of(self, pointer: str) -> int | None:
        """The line of `pointer`, or of its nearest ancestor that has one."""
        while True:
            if pointer in self.lines:
                return self.lines[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    yaml.allow_duplicate_keys = False
    return yaml


def _plain(node: Any, pointer: str, lines: dict[str, int]) -> Any:
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            child = f"{pointer}/{escape(str(key))}"
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                lines[child] = node.lc.key(key)[0] + 1
            out[str(key)] = _plain(value, child, lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = f"{pointer}/{index}"
            with contextlib.suppress(KeyError, TypeError, AttributeError):
                lines[child] = node.lc.item(index)[0] + 1
            items.append(_plain(value, child, lines))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, datetime.date):
        return node.isoformat()
    return node


def parse_text(text: str, path: str = "<document>") -> Source:
    """A document from YAML or JSON text (JSON is tried first when it looks like it)."""
    stripped = text.lstrip()
    lines: dict[str, int] = {}
    if stripped.startswith("{") or path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LoadError(
                f"not valid JSON: {exc.args[0]}", getattr(exc, "lineno", None)
            ) from None
        with contextlib.suppress(YAMLError):  # JSON is YAML 1.2: this gives the lines
            _plain(_yaml().load(text), "", lines)
        return Source(data, text, lines, path)
    try:
        node = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        problem = problem.split(" with value ", 1)[0]
        raise LoadError(f"not valid YAML: {problem}", line) from None
    except YAMLError as exc:
        raise LoadError(f"not valid YAML: {exc}") from None
    return Source(_plain(node, "", lines), text, lines, path)


def read_file(path: str | Path) -> Source:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}") from None
    return parse_text(text, str(path))
