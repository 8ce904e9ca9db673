"""User values cross every boundary as JSON text of bounded size.

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
from typing import Any

import msgspec
import orjson

from replayflow.core.errors import PayloadError

DEFAULT_MAX_PAYLOAD = 1024 * 1024

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
        raw = None
    if raw is not None and b"null" not in raw:
        text = raw.decode()
    else:
        try:
            text = _REFERENCE.encode(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise PayloadError(f"{what} is not a JSON value: {exc}") from None
    check_size(text, what, limit)
    return text


def check_size(text: str, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> None:
    size = len(text.encode("utf-8")) if len(text) * 4 > limit else len(text)
    if size > limit:
        raise PayloadError(f"{what} is {size} bytes, over the payload limit of {limit}")


def load(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return _DECODE(text)
    except msgspec.DecodeError:
        pass  # NaN, 1e400, a lone surrogate, ...: what json reads, read as before
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON text: {exc}") from None
