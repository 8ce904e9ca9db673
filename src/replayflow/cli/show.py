"""How the CLI shows things to a person: times as dates (UTC, never epoch
milliseconds), durations in words, what an instance waits for, and tables whose columns
hold however long an id is."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

#: Fields of records and rows that hold a time (epoch ms) or a duration (ms).
TIME_FIELDS = frozenset(
    {"at", "due", "deadline", "retry_at", "started_at", "ended_at", "updated_at", "until"}
)
DURATION_FIELDS = frozenset({"timeout_ms", "duration_ms"})


def when(ms: int | None, relative: bool = False, now: float | None = None) -> str:
    """'2026-01-01 08:00:00 UTC', with '(in 5 min)' / '(3 s ago)' when `relative`."""
    if ms is None:
        return "-"
    text = datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if relative:
        delta = ms - (time.time() if now is None else now) * 1000
        text += f" (in {duration(delta)})" if delta >= 0 else f" ({duration(-delta)} ago)"
    return text


def duration(ms: float | None) -> str:
    """'350 ms', '4.2 s', '3 min 5 s', '2 h 5 min', '3 d 4 h'."""
    if ms is None:
        return "-"
    ms = max(0.0, float(ms))
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def field(name: str, value: Any) -> str:
    """One field of a record as text: times and durations in words."""
    if name in TIME_FIELDS and isinstance(value, int):
        return when(value)
    if name in DURATION_FIELDS and isinstance(value, int | float):
        return duration(value)
    return str(value)


def waiting(instance: dict[str, Any]) -> str:
    """What an instance does now, in a few words: its status, or for a running one what
    it waits for (the API's `waiting`, `waiting_count` and `queue_position`)."""
    status = str(instance.get("status", "?"))
    if status == "QUEUED":
        position = instance.get("queue_position")
        return f"queued at position {position}" if position else "queued"
    items = instance.get("waiting") or []
    if status != "RUNNING" or not items:
        return status
    text = describe(items[0])
    more = int(instance.get("waiting_count") or len(items)) - 1
    return text + (f" (+{more} more)" if more > 0 else "")


def describe(item: dict[str, Any]) -> str:
    kind, key = item.get("kind"), item.get("key")
    until = item.get("until")
    if kind == "sleep":
        return f"sleeping ({key}) until {when(until, relative=True)}"
    if kind == "wait":
        deadline = f" until {when(until, relative=True)}" if until else ""
        return f"waiting for event {key}{deadline}"
    if kind == "child":
        return f"waiting for child {key}"
    attempt = item.get("attempt")
    of = f" of {item['max_attempts']}" if item.get("max_attempts") else ""
    if item.get("status") == "backoff":
        error = item.get("error") or {}
        last = f", last error {error.get('type')}: {error.get('message')}" if error else ""
        return f"retrying step {key} at {when(until, relative=True)} (attempt {attempt}{of}{last})"
    return f"running step {key} (attempt {attempt}{of})" if attempt else f"running step {key}"


def table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], wide: Sequence[int] = (0,)
) -> list[str]:
    """Aligned columns sized to their longest cell. On a terminal too narrow for them,
    the `wide` columns (by index: ids) are shortened in the middle with '…' so every
    row stays one line; in a pipe or file nothing is cut."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    if sys.stdout.isatty():
        room = shutil.get_terminal_size((120, 24)).columns
        over = sum(widths) + 2 * (len(widths) - 1) - room
        for i in wide:
            if over <= 0:
                break
            cut = min(over, widths[i] - max(len(headers[i]), 12))
            if cut > 0:
                widths[i] -= cut
                over -= cut
    lines = []
    for row in [list(headers), *cells]:
        parts = [_fit(cell, widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(p.ljust(widths[i]) for i, p in enumerate(parts)).rstrip())
    return lines


def _fit(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]
