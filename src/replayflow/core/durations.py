"""Durations as users write them ("10s", "1h30m", "7d", 2.5, timedelta) in milliseconds."""

from __future__ import annotations

import re
from datetime import timedelta

from replayflow.core.errors import ValidationError

Duration = str | int | float | timedelta

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def to_ms(value: Duration) -> int:
    """Milliseconds of a duration; numbers are seconds. Negative or unparseable: error."""
    if isinstance(value, bool):
        raise ValidationError(f"not a duration: {value!r}")
    if isinstance(value, timedelta):
        ms = round(value.total_seconds() * 1000)
    elif isinstance(value, int | float):
        ms = round(value * 1000)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        pos, total = 0, 0.0
        for match in _PART.finditer(text):
            if match.start() != pos:
                break
            total += float(match.group(1)) * _UNITS_MS[match.group(2)]
            pos = match.end()
        if not text or pos != len(text):
            raise ValidationError(
                f"not a duration: {value!r} (use e.g. '500ms', '10s', '1h30m', '7d')"
            )
        ms = round(total)
    else:
        raise ValidationError(f"not a duration: {value!r}")
    if ms < 0:
        raise ValidationError(f"a duration cannot be negative: {value!r}")
    return ms


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
