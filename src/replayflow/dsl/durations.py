"""DSL durations: `{days, hours, minutes, seconds, milliseconds}` or ISO 8601 (`PT1M30S`),
parsed by the core's one duration parser with the DSL's bound."""

from __future__ import annotations

from typing import Any

from replayflow.core.durations import to_ms

#: The longest duration a document may ask for: 100 years.
MAX_MS = 100 * 365 * 86_400_000


def duration_ms(value: Any) -> int:
    """Milliseconds of a DSL duration; ValueError when it is not one (or is negative,
    not finite, or longer than 100 years)."""
    return to_ms(value, max_ms=MAX_MS)
