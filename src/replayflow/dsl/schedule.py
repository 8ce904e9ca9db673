"""`schedule` parsed into a plain description (running schedules is the scheduler's
job): `every` and `after` as milliseconds, `cron` as five checked fields, `on` as the
event consumption strategy that starts instances."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from replayflow.dsl.durations import duration_ms

_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_NAMES = {
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "may": 5,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    "sun": 0,
    "mon": 1,
    "tue": 2,
    "wed": 3,
    "thu": 4,
    "fri": 5,
    "sat": 6,
}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True)
class Schedule:
    every_ms: int | None = None
    cron: tuple[str, ...] | None = None
    after_ms: int | None = None
    on: dict[str, Any] | None = None


def _number(text: str, low: int, high: int, what: str) -> int:
    value = _NAMES.get(text.lower()) if not text.isdigit() else int(text)
    if value is None or not low <= value <= high:
        raise ValueError(f"cron {what} {text!r} is not in {low}-{high}")
    return value


def parse_cron(expression: str) -> tuple[str, ...]:
    """The five fields of a cron expression, each checked; ValueError if malformed."""
    text = _MACROS.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron {expression!r} needs 5 fields (minute hour day month weekday), got {len(fields)}"
        )
    for value, (what, low, high) in zip(fields, _FIELDS, strict=True):
        for part in value.split(","):
            base, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                raise ValueError(f"cron {what} step {step!r} must be a positive number")
            if base == "*":
                continue
            start, _, end = base.partition("-")
            if not re.fullmatch(r"[A-Za-z0-9]+", start) or (end and not end.isalnum()):
                raise ValueError(f"cron {what} {part!r} is malformed")
            first = _number(start, low, high, what)
            if end and _number(end, low, high, what) < first:
                raise ValueError(f"cron {what} range {base!r} goes backwards")
    return tuple(fields)


def parse_schedule(spec: dict[str, Any]) -> Schedule:
    return Schedule(
        every_ms=duration_ms(spec["every"]) if "every" in spec else None,
        cron=parse_cron(spec["cron"]) if "cron" in spec else None,
        after_ms=duration_ms(spec["after"]) if "after" in spec else None,
        on=spec.get("on"),
    )
