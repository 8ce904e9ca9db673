"""User values cross every boundary as JSON text of bounded size and nesting depth.

Every step's arguments and result and every workflow's input and output pass through
here, several times per command, so the text is made by orjson (a Rust encoder, some
thirty times faster than the standard library's for the small values steps pass) and
read by msgspec (ten times faster). The standard library's `json` stays the
reference: whatever orjson refuses (an integer past 64 bits, a non-string key, a str
or int subclass, a datetime, a dataclass) is handed to `json`, which encodes it as
before or raises the PayloadError it always raised. orjson writes NaN and infinities
as null where `json` refuses them, so text with a null in it is made by `json` as
well. What orjson takes that `json` would not: a UUID and a plain Enum, as their text
and value. Text msgspec cannot read (NaN, 1e400, a lone surrogate) is read by `json`,
as before.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

import msgspec
import orjson

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

# Types orjson would turn into JSON on its own but `json` refuses: hand them back.
_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_STRICT |= orjson.OPT_PASSTHROUGH_SUBCLASS
_REFERENCE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
# Reading: msgspec, which (unlike orjson) keeps integers past 64 bits exact.
_DECODE = msgspec.json.Decoder().decode


def dump(value: Any, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> str:
    """JSON text of a value, or PayloadError naming what it was and why it won't go."""
    try:
        raw = orjson.dumps(value, option=_STRICT)
    except orjson.JSONEncodeError:
        raw = None  # also past orjson's own nesting limit (255): json decides below
    if raw is not None and b"null" not in raw:
        text = raw.decode()
    else:
        try:
            text = _REFERENCE.encode(value)
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
        return _DECODE(text)
    except msgspec.DecodeError:
        pass  # NaN, 1e400, a lone surrogate, ...: what json reads, read as before
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON text: {exc}") from None
    except RecursionError:  # unreachable after check_depth; kept as a clear error
        raise PayloadError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
