"""Durations in milliseconds: the one parser for code and documents.

Accepted forms: a number of seconds (2.5), a timedelta, short text ("500ms", "10s",
"1h30m", "7d", "2w"), ISO 8601 text ("PT1M30S", "P1DT1H", "P2W") and a mapping of
`days`, `hours`, `minutes`, `seconds`, `milliseconds` (the Serverless Workflow form).
A duration is finite and not negative; a caller may bound it further with `max_ms`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta

from replayflow.core.errors import ValidationError

Duration = str | int | float | timedelta | Mapping[str, int | float]

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_ISO = re.compile(
    r"P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?"
    r"(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?"
)
_MAPPING_MS = {
    "days": 86_400_000,
    "hours": 3_600_000,
    "minutes": 60_000,
    "seconds": 1000,
    "milliseconds": 1,
}
_HINT = "use e.g. '500ms', '10s', '1h30m', '7d', ISO 8601 like 'PT30S', or {seconds: 30}"


def to_ms(value: Duration, *, max_ms: int | None = None) -> int:
    """Milliseconds of a duration; numbers are seconds. ValidationError (a ValueError)
    when it is not one, is negative or not finite, or is longer than `max_ms`."""
    if isinstance(value, bool):
        raise ValidationError(f"not a duration: {value!r}")
    if isinstance(value, timedelta):
        ms = value.total_seconds() * 1000
    elif isinstance(value, int | float):
        ms = float(value) * 1000
    elif isinstance(value, str):
        ms = _text_ms(value)
    elif isinstance(value, Mapping):
        ms = _mapping_ms(value)
    else:
        raise ValidationError(f"not a duration: {value!r} ({_HINT})")
    if math.isnan(ms):
        raise ValidationError(f"not a duration: {value!r} (must be finite and not negative)")
    if ms < 0:
        raise ValidationError(f"a duration cannot be negative: {value!r}")
    if max_ms is not None and ms > max_ms:
        raise ValidationError(f"duration {value!r} is longer than {format_ms(max_ms)}")
    if math.isinf(ms):
        raise ValidationError(f"not a duration: {value!r} (must be finite and not negative)")
    return round(ms)


def _text_ms(value: str) -> float:
    iso = _ISO.fullmatch(value.strip().upper())
    if iso and value.strip().upper() not in ("P", "PT"):
        weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in iso.groups())
        return ((weeks * 7 + days) * 24 * 3600 + hours * 3600 + minutes * 60 + seconds) * 1000
    text = value.strip().lower().replace(" ", "")
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValidationError(f"not a duration: {value!r} ({_HINT})")
    return total


def _mapping_ms(value: Mapping[str, int | float]) -> float:
    total = 0.0
    for unit, amount in value.items():
        size = _MAPPING_MS.get(str(unit).lower())
        if size is None or not isinstance(amount, int | float) or isinstance(amount, bool):
            raise ValidationError(f"not a duration: {value!r} ({_HINT})")
        if not math.isfinite(amount) or amount < 0:
            raise ValidationError(f"not a duration: {value!r} (must be finite and not negative)")
        total += float(amount) * size
    return total


def format_ms(ms: int) -> str:
    """A short human form: 1500 -> '1.5s', 5400000 -> '1h30m'."""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:g}s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms >= size:
            parts.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(parts)
