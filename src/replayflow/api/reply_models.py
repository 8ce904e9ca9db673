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
    details: NotRequired[Any]  # a JSON value: what else the error recorded
    traceback: NotRequired[str]  # where it was raised (its tail, bounded)
    cause_traceback: NotRequired[str]  # a failed step's own traceback


class Waiting(TypedDict):
    """One thing an instance waits for: a step (running, or its retry at `until`), a
    child, a sleep until `until`, an event wait (timeout at `until`)."""

    kind: str
    key: str
    status: str
    since: NotRequired[int | None]
    until: NotRequired[int | None]
    attempt: NotRequired[int]
    max_attempts: NotRequired[int | None]
    error: NotRequired[dict[str, Any]]


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
    waiting: NotRequired[list[Waiting]]
    waiting_count: NotRequired[int]  # every open call; `waiting` describes a few
    queue_position: NotRequired[int | None]  # QUEUED: 1 = admitted next


class HistoryEvent(TypedDict):
    """One history event: its type, and the fields that event type has."""

    type: str
    seq: int
    at: int
    instance_id: str


class Upgrade(TypedDict):
    """A move to another version of the workflow (a WorkflowUpgraded fact)."""

    at: int
    seq: int
    from_version: str
    to_version: str


class Instance(InstanceSummary):
    input: NotRequired[Any]  # the JSON value
    output: NotRequired[Any]  # the JSON value
    parent_step: NotRequired[str | None]
    schedule_id: NotRequired[str | None]  # started by this schedule
    schedule_slot: NotRequired[int | None]  # for this slot (epoch ms)
    recent: NotRequired[list[HistoryEvent]]
    upgrades: NotRequired[list[Upgrade]]
    truncated: NotRequired[list[str]]  # fields cut short in the row (left as text)


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
    """A command is on the log. `outcome` is the orchestrator's answer: ACCEPTED,
    UNCHANGED (nothing to do; `status` says why), or null when none came in time (the
    command takes effect when an orchestrator runs)."""

    id: str
    requested: NotRequired[str]
    workflow: NotRequired[str]
    sent: NotRequired[str]
    outcome: NotRequired[str | None]
    status: NotRequired[str | None]


class BatchAccepted(TypedDict):
    ids: list[str]
    count: int


class QueueCounts(TypedDict):
    workflow: str
    counts: list[int]  # per time asked, in the order asked


class Counts(TypedDict):
    counts: dict[str, int]  # status -> instances
    total: int
    workflow: NotRequired[str | None]


class VersionEntry(TypedDict):
    version: str
    instances: int
    deployed: bool  # a deployed DSL document
    run_by: NotRequired[list[str]]  # orchestrators whose code has this version


class WorkflowEntry(TypedDict):
    workflow: str
    versions: list[VersionEntry]
    instances: int
    counts: NotRequired[dict[str, int]]  # instances by status (statuses with any)


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
    value_sha256: NotRequired[str | None]
    value_kept: NotRequired[bool]  # False: over the kept limit, only size and SHA-256 remain
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
    status: str  # ok, or starting (not ready yet)
    ready: NotRequired[bool]
    reason: NotRequired[str]  # why it is not ready
    node: NotRequired[str]
    url: NotRequired[str]
    partitions: NotRequired[list[int]]
    partition_count: NotRequired[int]
    events_folded: NotRequired[int]
