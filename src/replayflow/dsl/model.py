"""Shape of a document: which key makes a task what it is, and where task lists are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from replayflow.dsl.loader import escape

#: Checked in this order: a `for` task has `do` too, a `try` task has `catch`.
TASK_KINDS = (
    "for",
    "try",
    "call",
    "emit",
    "fork",
    "listen",
    "raise",
    "run",
    "set",
    "switch",
    "wait",
    "do",
)
FLOW_KEYWORDS = ("continue", "exit", "end")


def kind_of(task: dict[str, Any]) -> str | None:
    for kind in TASK_KINDS:
        if kind in task:
            return kind
    return None


def entries(tasks: Any) -> list[tuple[str, dict[str, Any]]]:
    """(name, definition) of each item of a task list."""
    out = []
    if isinstance(tasks, list):
        for item in tasks:
            if isinstance(item, dict) and len(item) == 1:
                name, task = next(iter(item.items()))
                if isinstance(task, dict):
                    out.append((name, task))
    return out


def task_pointer(list_pointer: str, index: int, name: str) -> str:
    return f"{list_pointer}/{index}/{escape(name)}"


def sublists(task: dict[str, Any], pointer: str) -> Iterator[tuple[Any, str]]:
    """The task lists nested in one task, with their pointers."""
    kind = kind_of(task)
    if kind in ("do", "for"):
        yield task.get("do"), f"{pointer}/do"
    elif kind == "try":
        yield task.get("try"), f"{pointer}/try"
        catch = task.get("catch")
        if isinstance(catch, dict) and "do" in catch:
            yield catch["do"], f"{pointer}/catch/do"
    elif kind == "fork":
        fork = task.get("fork")
        if isinstance(fork, dict):
            yield fork.get("branches"), f"{pointer}/fork/branches"
    elif kind == "listen":
        foreach = task.get("foreach")
        if isinstance(foreach, dict) and "do" in foreach:
            yield foreach["do"], f"{pointer}/foreach/do"


def walk(tasks: Any, pointer: str) -> Iterator[tuple[str, dict[str, Any], str, list[str]]]:
    """Every task at any depth: (name, definition, pointer, names in its scope)."""
    items = entries(tasks)
    names = [name for name, _ in items]
    for index, (name, task) in enumerate(items):
        here = task_pointer(pointer, index, name)
        yield name, task, here, names
        for sub, sub_pointer in sublists(task, here):
            yield from walk(sub, sub_pointer)
