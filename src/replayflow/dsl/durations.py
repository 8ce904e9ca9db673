"""DSL durations: `{days, hours, minutes, seconds, milliseconds}` or ISO 8601 (`PT1M30S`)."""

from __future__ import annotations

import re
from typing import Any

_ISO = re.compile(
    r"^P(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?"
    r"(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = {
    "days": 86_400_000,
    "hours": 3_600_000,
    "minutes": 60_000,
    "seconds": 1000,
    "milliseconds": 1,
}


def duration_ms(value: Any) -> int:
    """Milliseconds of a DSL duration; ValueError when it is not one."""
    if isinstance(value, dict):
        total = 0.0
        for key, amount in value.items():
            unit = _UNITS.get(key.lower())
            if unit is None or not isinstance(amount, int | float) or isinstance(amount, bool):
                raise ValueError(f"not a duration: {value!r}")
            total += amount * unit
        return round(total)
    if isinstance(value, str):
        match = _ISO.match(value.strip().upper())
        if match and value.strip().upper() not in ("P", "PT"):
            weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            return round(
                ((weeks * 7 + days) * 24 * 3600 + hours * 3600 + minutes * 60 + seconds) * 1000
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * 1000)
    raise ValueError(f"not a duration: {value!r} (use ISO 8601 like 'PT30S' or {{seconds: 30}})")
