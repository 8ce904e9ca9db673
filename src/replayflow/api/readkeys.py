"""The read model's key space, and the write collector the projection folds through.

    i|<id>                       the instance row
    c|<id>|<n:06d>               one timeline entry, in order of appearance
    k|<id>|<identity>            identity ("step:charge", "timer:sleep/3:0", ...) -> n
    h|<id>|<seq:012d>            one history event as JSON (paged by seq)
    x|<group>|<sort>|<id>        list index entries (see `group`)

"|" is the unit separator \\x1f, which ids and names cannot contain.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from replayflow.core import messages as m

SEP = "\x1f"
MAX_ATTEMPTS = 50  # attempts kept per step (the newest)
SORT_BASE = 10**13

Getter = Callable[[bytes], bytes | None]
Write = tuple[bytes, bytes | None]

STATUSES = (
    "QUEUED",
    "RUNNING",
    "PAUSED",
    "SUSPENDED",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TERMINATED",
    "TIMED_OUT",
)
FINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TERMINATED", "TIMED_OUT"})


# ------------------------------------------------------------------------------- keys


def key(*parts: str) -> bytes:
    return SEP.join(parts).encode("utf-8")


def instance_key(instance_id: str) -> bytes:
    return key("i", instance_id)


def call_key(instance_id: str, n: int) -> bytes:
    return key("c", instance_id, f"{n:06d}")


def calls_prefix(instance_id: str) -> bytes:
    return key("c", instance_id, "")


def identity_key(instance_id: str, identity: str) -> bytes:
    return key("k", instance_id, identity)


def history_key(instance_id: str, seq: int) -> bytes:
    return key("h", instance_id, f"{seq:012d}")


def history_prefix(instance_id: str) -> bytes:
    return key("h", instance_id, "")


def sort_part(started_at: int) -> str:
    return f"{SORT_BASE - max(0, min(started_at, SORT_BASE - 1)):013d}"


def group(
    workflow: str | None = None, status: str | None = None, version: str | None = None
) -> str:
    """The index group that answers a filter (workflow and/or status, or a version)."""
    if version is not None and workflow is not None:
        return SEP.join(("v", workflow, version))
    if workflow and status:
        return SEP.join(("ws", workflow, status))
    if workflow:
        return SEP.join(("w", workflow))
    if status:
        return SEP.join(("s", status))
    return "all"


def index_prefix(group_name: str) -> bytes:
    return key("x", group_name, "")


def index_key(group_name: str, started_at: int, instance_id: str) -> bytes:
    return key("x", group_name, sort_part(started_at), instance_id)


def index_groups(workflow: str, version: str, status: str) -> list[str]:
    return [
        group(),
        group(status=status),
        group(workflow=workflow),
        group(workflow=workflow, status=status),
        group(workflow=workflow, version=version),
    ]


def split_index_key(raw: bytes) -> tuple[str, int, str]:
    """(group, started_at, instance id) of an index key."""
    parts = raw.decode("utf-8").split(SEP)
    instance_id = parts[-1]
    started_at = SORT_BASE - int(parts[-2])
    return SEP.join(parts[1:-2]), started_at, instance_id


# ------------------------------------------------------------------------------ events


def event_type(event: Any) -> str:
    return type(event).__name__


def event_json(event: Any) -> dict[str, Any]:
    """A history event as a JSON object: {"type", "seq", "at", ...its fields}. JSON
    payload fields stay JSON text, as recorded."""
    fields = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if dataclasses.is_dataclass(value):
            value = dataclasses.asdict(value)  # type: ignore[arg-type]
        fields[f.name] = value
    return {"type": event_type(event), **fields}


def error_dict(error: m.ErrorInfo | None) -> dict[str, Any] | None:
    return None if error is None else dataclasses.asdict(error)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


class Writes:
    """Collects writes and answers reads through them (later writes win)."""

    def __init__(self, get: Getter) -> None:
        self._get = get
        self.pending: dict[bytes, bytes | None] = {}

    def get(self, k: bytes) -> Any:
        if k in self.pending:
            return loads(self.pending[k])
        return loads(self._get(k))

    def put(self, k: bytes, value: Any) -> None:
        self.pending[k] = dumps(value)

    def delete(self, k: bytes) -> None:
        self.pending[k] = None
