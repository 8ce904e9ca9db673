"""User values cross every boundary as JSON text of bounded size and nesting depth."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from replayflow.core.errors import PayloadError

DEFAULT_MAX_PAYLOAD = 1024 * 1024
#: Arrays and objects nested deeper than this are refused where JSON text enters
#: (the fold, the client, the worker). Python's own json module gives up near 1,000
#: levels with a RecursionError, and code that walks a value (expressions, copies,
#: dumps) can fail well before that; 128 is serde_json's default limit too.
MAX_DEPTH = 128

# Each pattern is matched in one pass without backtracking, whatever the input: escaped
# characters first, then strings (which then hold no quote), then all but brackets.
_ESCAPED = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def dump(value: Any, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> str:
    """JSON text of a value, or PayloadError naming what it was and why it won't go."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} is not a JSON value: {exc}") from None
    except RecursionError:
        raise PayloadError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    check_size(text, what, limit)
    check_depth(text, what)
    return text


def check_size(text: str, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> None:
    size = len(text.encode("utf-8")) if len(text) * 4 > limit else len(text)
    if size > limit:
        raise PayloadError(f"{what} is {size} bytes, over the payload limit of {limit}")


def depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text (0 for a scalar). Brackets inside
    strings do not count. Linear and iterative: safe on any input."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", _ESCAPED.sub("", text)))
    return max(accumulate(map(_STEP.__getitem__, brackets.encode("ascii"))), default=0)


def check_depth(text: str, what: str, limit: int = MAX_DEPTH) -> None:
    if text.count("[") + text.count("{") <= limit:
        return  # the common case: not enough brackets to nest that deep
    nesting = depth(text)
    if nesting > limit:
        raise PayloadError(
            f"{what} nests arrays and objects {nesting} levels deep, over the limit of {limit}"
        )


def load(text: str | None, what: str) -> Any:
    if text is None:
        return None
    check_depth(text, what)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON text: {exc}") from None
    except RecursionError:  # unreachable after check_depth; kept as a clear error
        raise PayloadError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
