"""Validating a document: the DSL's JSON Schema, then what a schema cannot say
(expressions compile and are deterministic, flow directives name a task of their
scope, references to `use` exist). Every problem is reported, each with its JSON
pointer and line, in one message."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError as SchemaError
from jsonschema.exceptions import best_match
from ruamel.yaml import YAML

from replayflow.core.errors import ValidationError
from replayflow.dsl import expressions
from replayflow.dsl.loader import LoadError, Source, escape, parse_text, read_file
from replayflow.dsl.model import FLOW_KEYWORDS, entries, kind_of, walk


@dataclass(frozen=True)
class Problem:
    pointer: str
    message: str
    line: int | None = None

    def describe(self, path: str = "") -> str:
        where = f"{path}:{self.line}" if self.line is not None else path
        return (
            f"{where}: {self.pointer or '/'}: {self.message}"
            if where
            else f"{self.pointer or '/'}: {self.message}"
        )


@dataclass
class Report:
    source: Source | None
    problems: list[Problem] = field(default_factory=list)
    path: str = "<document>"

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        head = f"{self.path}: {len(self.problems)} problem(s)"
        return "\n".join([head, *("  " + p.describe(self.path) for p in self.problems)])


class DocumentInvalid(ValidationError):
    """A workflow document that does not validate; the message lists every problem."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.message())
        self.report = report


@functools.cache
def schema() -> dict[str, Any]:
    text = (resources.files("replayflow.dsl") / "schema" / "workflow.yaml").read_text("utf-8")
    loaded: dict[str, Any] = YAML(typ="safe").load(text)
    return loaded


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def _pointer(path: Any) -> str:
    return "".join(f"/{escape(str(p))}" for p in path)


def _schema_message(error: SchemaError) -> tuple[str, str]:
    # oneOf/anyOf failures say little: report the sub-error that fits best, the way a
    # reader would look for it (deepest, most specific).
    while error.context:
        error = best_match(error.context)
    message = error.message
    shown = repr(error.instance)
    if len(shown) > 60 and message.startswith(shown):
        message = "the value" + message[len(shown) :]
    if len(message) > 300:
        message = message[:297] + "..."
    return _pointer(error.absolute_path), message


def _schema_problems(source: Source) -> list[Problem]:
    seen = set()
    problems = []
    errors = _validator().iter_errors(source.data)
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        pointer, message = _schema_message(error)
        if (pointer, message) in seen:
            continue
        seen.add((pointer, message))
        problems.append(Problem(pointer, message, source.line_of(pointer)))
    return problems


_BARE_FIELDS: tuple[tuple[str, ...], ...] = (
    ("if",),
    ("input", "from"),
    ("output", "as"),
    ("export", "as"),
    ("while",),
    ("for", "in"),
)


def _get(data: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _semantic_problems(source: Source) -> list[Problem]:
    data = source.data
    problems: list[Problem] = []
    use: dict[str, Any] = {}

    def add(pointer: str, message: str) -> None:
        problems.append(Problem(pointer, message, source.line_of(pointer)))

    def expr(value: Any, pointer: str, bare: bool = True) -> None:
        if not isinstance(value, str) or not (bare or expressions.is_expression(value)):
            return
        try:
            expressions.check(value)
        except expressions.ExpressionError as exc:
            add(pointer, f"expression {value!r}: {exc}")

    # Every ${ } string anywhere (schemas are data, not expressions).
    def scan(node: Any, pointer: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "document" and pointer.endswith("/schema"):
                    continue
                scan(value, f"{pointer}/{escape(key)}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                scan(value, f"{pointer}/{index}")
        elif expressions.is_expression(node):
            expr(node, pointer)

    scan(data, "")
    if not isinstance(data, dict):
        return problems
    if isinstance(data.get("schedule"), dict):
        from replayflow.dsl.schedule import parse_schedule

        try:
            parse_schedule(data["schedule"])
        except (ValueError, KeyError) as exc:
            add("/schedule", str(exc))
    if isinstance(data.get("use"), dict):
        use = data["use"]
    for field_name, key in (("input", "from"), ("output", "as")):
        expr(_get(data, (field_name, key)), f"/{field_name}/{key}")

    for _name, task, pointer, scope in walk(data.get("do"), "/do"):
        for keys in _BARE_FIELDS:
            expr(_get(task, keys), f"{pointer}/{'/'.join(keys)}")
        then = task.get("then")
        if isinstance(then, str) and then not in FLOW_KEYWORDS and then not in scope:
            add(
                f"{pointer}/then",
                f"flow directive {then!r} names no task of this scope ({', '.join(scope)})",
            )
        kind = kind_of(task)
        if kind == "switch":
            defaults = 0
            for index, (case_name, case) in enumerate(entries(task.get("switch"))):
                case_pointer = f"{pointer}/switch/{index}/{escape(case_name)}"
                if "when" in case:
                    expr(case["when"], f"{case_pointer}/when")
                else:
                    defaults += 1
                target = case.get("then")
                if isinstance(target, str) and target not in FLOW_KEYWORDS and target not in scope:
                    add(
                        f"{case_pointer}/then",
                        f"flow directive {target!r} names no task "
                        f"of this scope ({', '.join(scope)})",
                    )
            if defaults > 1:
                add(f"{pointer}/switch", "a switch may have one default case (no `when`)")
        elif kind == "try":
            catch: dict[str, Any] = task["catch"] if isinstance(task.get("catch"), dict) else {}
            for key in ("when", "exceptWhen"):
                expr(catch.get(key), f"{pointer}/catch/{key}")
            retry = catch.get("retry")
            if isinstance(retry, str) and retry not in (use.get("retries") or {}):
                add(f"{pointer}/catch/retry", f"retry policy {retry!r} is not in use.retries")
            elif isinstance(retry, dict):
                for key in ("when", "exceptWhen"):
                    expr(retry.get(key), f"{pointer}/catch/retry/{key}")
        elif kind == "raise":
            error = _get(task, ("raise", "error"))
            if isinstance(error, str) and error not in (use.get("errors") or {}):
                add(f"{pointer}/raise/error", f"error {error!r} is not in use.errors")
        elif kind == "listen":
            until = _get(task, ("listen", "to", "until"))
            expr(until, f"{pointer}/listen/to/until")
        timeout = task.get("timeout")
        if isinstance(timeout, str) and timeout not in (use.get("timeouts") or {}):
            add(f"{pointer}/timeout", f"timeout {timeout!r} is not in use.timeouts")
    return problems


def validate_source(source: Source) -> Report:
    report = Report(source, path=source.path)
    report.problems.extend(_schema_problems(source))
    report.problems.extend(_semantic_problems(source))
    report.problems.sort(key=lambda p: (p.line or 0, p.pointer))
    return report


def validate_text(text: str, path: str = "<document>") -> Report:
    try:
        source = parse_text(text, path)
    except LoadError as exc:
        return Report(None, [Problem("", str(exc), exc.line)], path)
    return validate_source(source)


def validate_file(path: str | Path) -> Report:
    try:
        source = read_file(path)
    except LoadError as exc:
        return Report(None, [Problem("", str(exc), exc.line)], str(path))
    return validate_source(source)


def load_valid(text: str, path: str = "<document>") -> Source:
    """The parsed document, or DocumentInvalid listing every problem."""
    report = validate_text(text, path)
    if not report.ok or report.source is None:
        raise DocumentInvalid(report)
    return report.source
