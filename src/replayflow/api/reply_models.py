"""What the HTTP API answers, declared once as typed dicts: the routes build these
shapes and api/openapi.py documents them (pydantic writes their JSON Schema).

Typed dicts, not models: the read model's rows are dicts already, passed through as
they are, and a field that may be left out (NotRequired) is not one that may be null.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired

# pydantic reads typing's TypedDict only from Python 3.12 on
from typing_extensions import TypedDict

from replayflow.api.request_models import Status


class ErrorInfo(TypedDict):
    type: str
    message: str
    retryable: NotRequired[bool]
    details: NotRequired[str | None]


class InstanceSummary(TypedDict):
    id: str
    workflow: str
    status: Status
    version: NotRequired[str]
    started_at: NotRequired[int]
    updated_at: NotRequired[int]
    ended_at: NotRequired[int | None]
    seq: NotRequired[int]
    run: NotRequired[int]
    parent_id: NotRequired[str | None]
    reason: NotRequired[str | None]
    cancel_requested: NotRequired[bool]
    steps: NotRequired[int]
    events: NotRequired[int]
    error: NotRequired[ErrorInfo | None]


class HistoryEvent(TypedDict):
    """One history event: its type, and the fields that event type has."""

    type: str
    seq: int
    at: int
    instance_id: str


class Instance(InstanceSummary):
    input: NotRequired[str | None]  # JSON text
    output: NotRequired[str | None]  # JSON text
    parent_step: NotRequired[str | None]
    schedule_id: NotRequired[str | None]  # started by this schedule
    schedule_slot: NotRequired[int | None]  # for this slot (epoch ms)
    recent: NotRequired[list[HistoryEvent]]


class TimelineEntry(TypedDict):
    """A step (with its attempts), a child, a sleep, an event wait or a kept event."""

    n: int
    kind: Literal["step", "child", "sleep", "wait", "event"]
    key: str
    status: str
    started_at: NotRequired[int | None]
    ended_at: NotRequired[int | None]
    attempts: NotRequired[list[dict[str, Any]]]


class InstancePage(TypedDict):
    items: list[InstanceSummary]
    next_cursor: str | None


class TimelinePage(TypedDict):
    items: list[TimelineEntry]
    next_after: NotRequired[int | None]


class HistoryPage(TypedDict):
    items: list[HistoryEvent]
    next_after_seq: NotRequired[int | None]


class Accepted(TypedDict):
    """A command is on the log (it takes effect when the engine folds it)."""

    id: str
    requested: NotRequired[str]
    workflow: NotRequired[str]
    sent: NotRequired[str]


class BatchAccepted(TypedDict):
    ids: list[str]
    count: int


class Counts(TypedDict):
    counts: dict[str, int]  # status -> instances
    total: int
    workflow: NotRequired[str | None]


class VersionEntry(TypedDict):
    version: str
    instances: int
    deployed: bool  # a deployed DSL document


class WorkflowEntry(TypedDict):
    workflow: str
    versions: list[VersionEntry]
    instances: int


class Workflows(TypedDict):
    items: list[WorkflowEntry]


class Deployed(TypedDict):
    name: str
    version: str
    namespace: NotRequired[str]
    digest: NotRequired[str]
    deployed_at: NotRequired[int]
    created: bool


class DeadLetter(TypedDict):
    id: str
    source_topic: str
    source_partition: NotRequired[int]
    source_offset: NotRequired[int]
    key: NotRequired[str | None]
    value_hex: NotRequired[str | None]
    value_size: NotRequired[int]
    original: NotRequired[dict[str, Any] | None]
    reason: str
    error_type: NotRequired[str]
    at: NotRequired[int]
    redriven: NotRequired[bool]
    redriven_at: NotRequired[int | None]


class DeadLetters(TypedDict):
    items: list[DeadLetter]


class Redriven(TypedDict):
    id: str
    redriven: bool
    to: NotRequired[str]
    at: NotRequired[int]


class Health(TypedDict):
    status: str
    node: NotRequired[str]
    url: NotRequired[str]
    partitions: NotRequired[list[int]]
    partition_count: NotRequired[int]
    events_folded: NotRequired[int]
