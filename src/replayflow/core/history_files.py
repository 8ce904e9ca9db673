"""Histories as JSON files: what `replayflow history ID --json` writes and
rf.testing replays as regression fixtures.

A file is a JSON list of events, each {"type": <class name in core/messages.py>,
<field>: <value>, ...}, an ErrorInfo field as a nested object; one event per line, so a
re-recorded fixture diffs line by line. JSON lines (one object per line, no list) read
the same. An event type or field this version does not know is an error that names it:
a fixture must never replay silently as something else.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from replayflow.core import messages
from replayflow.core.errors import ValidationError
from replayflow.core.messages import ErrorInfo, HistoryEvent

EVENT_TYPES: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in vars(messages).values()
    if isinstance(cls, type)
    and dataclasses.is_dataclass(cls)
    and {"instance_id", "seq", "at"} <= {f.name for f in dataclasses.fields(cls)}
}


def to_json(history: list[HistoryEvent]) -> list[dict[str, Any]]:
    return [{"type": type(event).__name__, **dataclasses.asdict(event)} for event in history]


def from_json(data: list[dict[str, Any]]) -> list[HistoryEvent]:
    events: list[HistoryEvent] = []
    for position, record in enumerate(data, 1):
        if not isinstance(record, dict):
            raise ValidationError(f"event #{position} is not a JSON object")
        fields = dict(record)
        name = fields.pop("type", None)
        cls = EVENT_TYPES.get(str(name))
        if cls is None:
            raise ValidationError(f"event #{position}: unknown event type {name!r}")
        if isinstance(fields.get("error"), dict):
            fields["error"] = ErrorInfo(**fields["error"])
        try:
            events.append(cls(**fields))
        except TypeError as exc:
            raise ValidationError(f"event #{position} ({name}): {exc}") from None
    return events


def dumps(history: list[HistoryEvent]) -> str:
    lines = [json.dumps(entry, ensure_ascii=False) for entry in to_json(history)]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def loads(text: str) -> list[HistoryEvent]:
    """A history from a JSON list or JSON lines."""
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            data = json.loads(stripped)
        else:
            data = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except ValueError as exc:
        raise ValidationError(f"not a history file: {exc}") from None
    if not isinstance(data, list):
        raise ValidationError("a history file holds a JSON list of events")
    return from_json(data)
