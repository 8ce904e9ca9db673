"""jq runtime expressions: compiled once, cached, evaluated with named arguments.

An expression is jq text. In most fields it is written `${ ... }`; a few fields
(`if`, `when`, `while`, `for.in`, `input.from`, `output.as`, `export.as`, ...) take
bare jq too. Arguments (`$context`, `$input`, `$workflow`, loop variables, a caught
error) reach the program as one array input, so a compiled program is reused for
every evaluation with the same argument names.

jq builtins that read the clock, the process environment or other inputs would make a
replay compute something else than the live run did: they are reported when a
document is validated (a text scan, for readable messages), and every compiled
program starts with definitions that shadow them (they raise an error when run) and
binds `$ENV` to null, so no spelling (string interpolation, ...) reaches them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jq

from replayflow.core.errors import ReplayflowError
from replayflow.dsl.errors import expression_error

#: jq builtins a deterministic engine cannot offer.
FORBIDDEN = frozenset(
    {
        "now",
        "input",
        "inputs",
        "env",
        "debug",
        "input_line_number",
        "input_filename",
        "stderr",
        "halt",
        "halt_error",
        "get_search_list",
        "mktime",
        "localtime",
        "gmtime",
        "strflocaltime",
        "get_prog_origin",
        "get_jq_origin",
        "builtins",
        "modulemeta",
    }
)
FORBIDDEN_VARIABLES = frozenset({"ENV", "__prog_args"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_TOKEN = re.compile(r"(\$?)([A-Za-z_][A-Za-z0-9_]*)(::[A-Za-z_][A-Za-z0-9_]*)?")


#: The arities of each forbidden builtin (jq 1.7): all are shadowed.
_ARITIES = {"debug": (0, 1), "halt_error": (0, 1), "strflocaltime": (1,)}
_QUIET = frozenset({"debug", "stderr"})  # side effects only: shadowed as `.`


def _shadow(name: str, arity: int) -> str:
    params = "" if arity == 0 else "(" + "; ".join(f"a{i}" for i in range(arity)) + ")"
    body = "." if name in _QUIET else f'error("{name} is not deterministic")'
    return f"def {name}{params}: {body}; "


#: Put in front of every program: non-deterministic builtins fail when called.
PRELUDE = "".join(
    _shadow(name, arity) for name in sorted(FORBIDDEN) for arity in _ARITIES.get(name, (0,))
) + "".join(f"null as ${name} | " for name in sorted(FORBIDDEN_VARIABLES))


class Lazy:
    """An argument computed only for the expressions that name it (`$secrets`: a
    secret that is missing faults only where it is used)."""

    def __init__(self, compute: Callable[[str], Any]) -> None:
        self.compute = compute


class ExpressionError(ReplayflowError, ValueError):
    """An expression that does not compile or uses a forbidden builtin."""


def is_expression(value: Any) -> bool:
    """A string written as `${ ... }`."""
    return isinstance(value, str) and value.strip().startswith("${") and value.strip().endswith("}")


def strip(text: str) -> str:
    """The jq text of `${ ... }` or of bare jq."""
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        return text[2:-1].strip()
    return text


def _code_parts(text: str) -> Iterator[tuple[int, str]]:
    """The parts of jq text outside string literals (string interpolations `\\(...)`
    are code too, and are scanned)."""
    pos = 0
    for match in _STRING.finditer(text):
        yield pos, text[pos : match.start()]
        for inner in re.finditer(r"\\\((.*?)\)", match.group(0)):
            yield match.start() + inner.start(1), inner.group(1)
        pos = match.end()
    yield pos, text[pos:]


def forbidden_uses(text: str) -> list[str]:
    """The non-deterministic builtins an expression calls, e.g. ['now', '$ENV']."""
    found = []
    for _, part in _code_parts(text):
        for match in _TOKEN.finditer(part):
            dollar, name, _ = match.groups()
            before = part[: match.start()].rstrip()
            after = part[match.end() :].lstrip()
            if dollar:
                if name in FORBIDDEN_VARIABLES:
                    found.append(f"${name}")
                continue
            if before.endswith(".") or before.endswith("?."):
                continue  # a field: .input
            if after.startswith(":") and not after.startswith("::"):
                continue  # an object key: {input: 1}
            if before.endswith("def"):
                continue
            if name in FORBIDDEN:
                found.append(name)
    return found


def check(text: str) -> None:
    """Raise ExpressionError unless `text` (jq, with or without ${}) is usable here."""
    program = strip(text)
    bad = forbidden_uses(program)
    if bad:
        raise ExpressionError(
            f"uses {', '.join(sorted(set(bad)))}: not deterministic, so not allowed in a "
            "durable workflow (pass such values in the input or compute them in a step)"
        )
    # Variables depend on where the expression runs (loop items, a caught error):
    # bind every one it names, to check the syntax.
    names: set[str] = set()
    for _, part in _code_parts(program):
        names.update(m.group(2) for m in _TOKEN.finditer(part) if m.group(1))
    names -= FORBIDDEN_VARIABLES | {"__loc__"}
    _compile(program, tuple(sorted(names)))


@functools.lru_cache(maxsize=4096)
def _compile(program: str, names: tuple[str, ...]) -> Any:
    bad = forbidden_uses(program)
    if bad:
        raise ExpressionError(f"uses {', '.join(sorted(set(bad)))}: not deterministic")
    if re.match(r"(import|include)\b", program.lstrip()):
        raise ExpressionError("jq modules (import, include) are not supported")
    binds = "".join(f".[{i + 1}] as ${name} | " for i, name in enumerate(names))
    try:
        return jq.compile(f"{PRELUDE}{binds}.[0] | ({program})")
    except ValueError as exc:
        raise ExpressionError(
            str(exc).splitlines()[0] if str(exc) else "does not compile"
        ) from None


def evaluate(text: str, data: Any, args: Mapping[str, Any], where: str = "") -> Any:
    """The first result of expression `text` on `data` (None when it yields nothing).
    Failures raise the DSL's expression error (status 400) at `where`."""
    program = strip(text)
    names = tuple(
        sorted(
            n
            for n, v in args.items()
            if not isinstance(v, Lazy) or re.search(rf"\${re.escape(n)}\b", program)
        )
    )
    values = [args[n].compute(where) if isinstance(args[n], Lazy) else args[n] for n in names]
    try:
        compiled = _compile(program, names)
        results = compiled.input_value([data, *values]).all()
    except ExpressionError as exc:
        raise expression_error(f"{program!r}: {exc}", where) from None
    except ValueError as exc:
        raise expression_error(f"{program!r} failed: {exc}", where) from None
    return results[0] if results else None


def render(value: Any, data: Any, args: Mapping[str, Any], where: str = "") -> Any:
    """`value` with every `${ ... }` string in it (at any depth) replaced by its result."""
    if isinstance(value, str):
        return evaluate(value, data, args, where) if is_expression(value) else value
    if isinstance(value, dict):
        return {k: render(v, data, args, where) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, data, args, where) for v in value]
    return value


def truthy(value: Any) -> bool:
    """jq's truth: everything but false and null."""
    return value is not None and value is not False
