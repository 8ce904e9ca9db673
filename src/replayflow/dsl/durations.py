"""DSL durations: `{days, hours, minutes, seconds, milliseconds}` or ISO 8601 (`PT1M30S`)."""

from __future__ import annotations

import math
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
#: The longest duration accepted: 100 years.
MAX_MS = 100 * 365 * 86_400_000


def _bounded(ms: float, value: Any) -> int:
    if not math.isfinite(ms) or ms < 0:
        raise ValueError(f"not a duration: {value!r} (must be finite and not negative)")
    if ms > MAX_MS:
        raise ValueError(f"duration {value!r} is longer than 100 years")
    return round(ms)


def duration_ms(value: Any) -> int:
    """Milliseconds of a DSL duration; ValueError when it is not one (or is negative,
    not finite, or longer than 100 years)."""
    if isinstance(value, dict):
        total = 0.0
        for key, amount in value.items():
            unit = _UNITS.get(str(key).lower())
            if unit is None or not isinstance(amount, int | float) or isinstance(amount, bool):
                raise ValueError(f"not a duration: {value!r}")
            if not math.isfinite(amount) or amount < 0:
                raise ValueError(f"not a duration: {value!r} (must be finite and not negative)")
            total += float(amount) * unit
        return _bounded(total, value)
    if isinstance(value, str):
        match = _ISO.match(value.strip().upper())
        if match and value.strip().upper() not in ("P", "PT"):
            weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
            return _bounded(
                ((weeks * 7 + days) * 24 * 3600 + hours * 3600 + minutes * 60 + seconds) * 1000,
                value,
            )
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _bounded(float(value) * 1000, value)
    raise ValueError(f"not a duration: {value!r} (use ISO 8601 like 'PT30S' or {{seconds: 30}})")
