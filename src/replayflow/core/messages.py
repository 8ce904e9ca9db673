"""Commands (requests), history events (accepted facts), tasks and completions: the in-memory
form of the Avro records in schemas/, one frozen dataclass per record of the same name, field
for field (the codec converts by name). User payloads (inputs, results, event bodies, outputs)
are JSON text, so the fold never holds a value that could not be written to the log. Times are
integer milliseconds since the Unix epoch, stamped by the orchestrator."""

from __future__ import annotations

from dataclasses import dataclass

from replayflow.core.fast_init import fast_inits


@dataclass(frozen=True)
class ErrorInfo:
    """A failure as recorded: a type name, a message, and whether a retry may help."""

    type: str
    message: str
    retryable: bool = True
    details: str | None = None  # JSON text with anything else worth keeping


# Commands: requests on replayflow.commands, keyed by instance id (or limiter key).


@dataclass(frozen=True)
class StartWorkflow:
    instance_id: str
    workflow: str
    input: str = "null"
    version: str | None = None  # None: the newest version known to the orchestrator
    parent_id: str | None = None  # set when a workflow starts a child
    parent_step: str | None = None
    schedule_id: str | None = None  # set when a schedule starts a run for a slot
    schedule_slot: int | None = None  # the slot's time (ms)


@dataclass(frozen=True)
class CompleteStep:
    instance_id: str
    step: str
    attempt: int
    result: str = "null"
    streamed: bool = False  # the attempt wrote stream values: accepting it releases them


@dataclass(frozen=True)
class FailStep:
    instance_id: str
    step: str
    attempt: int
    error: ErrorInfo


@dataclass(frozen=True)
class SendEvent:
    instance_id: str
    name: str
    payload: str = "null"


@dataclass(frozen=True)
class CancelWorkflow:
    instance_id: str
    reason: str = ""


@dataclass(frozen=True)
class TerminateWorkflow:
    instance_id: str
    reason: str = ""


@dataclass(frozen=True)
class PauseWorkflow:
    instance_id: str
    reason: str = ""


@dataclass(frozen=True)
class ResumeWorkflow:
    instance_id: str
    reason: str = ""


@dataclass(frozen=True)
class RestartWorkflow:
    instance_id: str
    from_step: str | None = None  # None: from the beginning
    reason: str = ""


@dataclass(frozen=True)
class FireTimer:
    """Made by the orchestrator when a timer from its index is due; never produced by
    clients. Carried on the wire only inside history (as TimerFired)."""

    instance_id: str
    timer: str


# Admission: a limiter entity per workflow name, keyed "limiter:<workflow>", folded like
# an instance so a concurrency limit holds across every partition.


@dataclass(frozen=True)
class AcquireSlot:
    limiter: str
    instance_id: str
    limit: int


@dataclass(frozen=True)
class GrantSlot:
    instance_id: str


@dataclass(frozen=True)
class ReleaseSlot:
    limiter: str
    instance_id: str


@dataclass(frozen=True)
class UpgradeWorkflow:
    """Move an instance to another version once its history up to `checked_seq`
    replayed identically on that version's code (core/decide/upgrade.py)."""

    instance_id: str
    from_version: str
    to_version: str
    checked_seq: int


Command = (
    StartWorkflow
    | CompleteStep
    | FailStep
    | SendEvent
    | CancelWorkflow
    | TerminateWorkflow
    | PauseWorkflow
    | ResumeWorkflow
    | RestartWorkflow
    | FireTimer
    | AcquireSlot
    | GrantSlot
    | ReleaseSlot
    | UpgradeWorkflow
)

# History events: facts the orchestrator accepted. Every one carries the instance id,
# a per-instance sequence number starting at 1, and the orchestrator's time.


@dataclass(frozen=True)
class WorkflowStarted:
    instance_id: str
    seq: int
    at: int
    workflow: str
    version: str
    input: str
    parent_id: str | None = None
    parent_step: str | None = None
    schedule_id: str | None = None
    schedule_slot: int | None = None


@dataclass(frozen=True)
class WorkflowQueued:
    instance_id: str
    seq: int
    at: int
    limiter: str


@dataclass(frozen=True)
class WorkflowAdmitted:
    instance_id: str
    seq: int
    at: int


@dataclass(frozen=True)
class StepScheduled:
    instance_id: str
    seq: int
    at: int
    step: str
    function: str
    attempt: int
    input: str
    timeout_ms: int | None = None
    max_attempts: int | None = None  # the retry limit (None: recorded before v2)


@dataclass(frozen=True)
class StepCompleted:
    instance_id: str
    seq: int
    at: int
    step: str
    attempt: int
    result: str


@dataclass(frozen=True)
class StepFailed:
    instance_id: str
    seq: int
    at: int
    step: str
    attempt: int
    error: ErrorInfo
    retry_at: int | None = None  # None: no retry follows, the step has failed


@dataclass(frozen=True)
class TimerStarted:
    instance_id: str
    seq: int
    at: int
    timer: str
    due: int
    name: str | None = None  # a sleep's name as the workflow gave it (None: other timers)


@dataclass(frozen=True)
class TimerFired:
    instance_id: str
    seq: int
    at: int
    timer: str


@dataclass(frozen=True)
class EventAwaited:
    instance_id: str
    seq: int
    at: int
    name: str
    deadline: int | None = None
    wait: int | None = None  # the wait's call index (None: recorded before it was kept)


@dataclass(frozen=True)
class EventReceived:
    instance_id: str
    seq: int
    at: int
    name: str
    payload: str


@dataclass(frozen=True)
class EventKept:
    """Nobody awaited the event received at `received_seq`: it waits in the inbox."""

    instance_id: str
    seq: int
    at: int
    name: str
    received_seq: int


@dataclass(frozen=True)
class EventDelivered:
    """The event received at `received_seq` was handed to wait number `wait`: at once,
    from the inbox when the wait began, or from the inbox on a resume."""

    instance_id: str
    seq: int
    at: int
    name: str
    wait: int
    received_seq: int | None = None  # None: kept by a version that did not record it


@dataclass(frozen=True)
class CallDropped:
    """A call that will never resolve with a result: cancelled by a cancel request, left
    open when the instance ended, or removed by a restart. Recorded just before the
    ending or the WorkflowRestarted it belongs to (just after a CancelRequested)."""

    instance_id: str
    seq: int
    at: int
    kind: str  # "step", "child", "sleep" or "event"
    key: str
    index: int
    cause: str  # CANCEL_REQUESTED, RESTARTED, or the status the instance ended with


@dataclass(frozen=True)
class CancelRequested:
    instance_id: str
    seq: int
    at: int
    reason: str


@dataclass(frozen=True)
class WorkflowCompleted:
    instance_id: str
    seq: int
    at: int
    output: str


@dataclass(frozen=True)
class WorkflowFailed:
    instance_id: str
    seq: int
    at: int
    error: ErrorInfo


@dataclass(frozen=True)
class WorkflowCancelled:
    instance_id: str
    seq: int
    at: int
    reason: str


@dataclass(frozen=True)
class WorkflowTerminated:
    instance_id: str
    seq: int
    at: int
    reason: str


@dataclass(frozen=True)
class WorkflowTimedOut:
    instance_id: str
    seq: int
    at: int


@dataclass(frozen=True)
class WorkflowPaused:
    instance_id: str
    seq: int
    at: int
    reason: str = ""


@dataclass(frozen=True)
class WorkflowResumed:
    instance_id: str
    seq: int
    at: int
    reason: str = ""


@dataclass(frozen=True)
class WorkflowRestarted:
    instance_id: str
    seq: int
    at: int
    from_step: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class WorkflowSuspended:
    """The instance stopped and waits for an operator: replayed code asked for something
    other than what history holds (the error names both)."""

    instance_id: str
    seq: int
    at: int
    error: ErrorInfo


@dataclass(frozen=True)
class PatchMarked:
    """ctx.patched(patch) took the new path (or ctx.deprecate_patch passed) at call
    `index`: replays take it there too (core/patching.py)."""

    instance_id: str
    seq: int
    at: int
    patch: str
    index: int
    deprecated: bool = False


@dataclass(frozen=True)
class WorkflowUpgraded:
    """The instance runs `to_version`'s code from now on."""

    instance_id: str
    seq: int
    at: int
    from_version: str
    to_version: str
    checked_seq: int


@dataclass(frozen=True)
class UpgradeRefused:
    """An UpgradeWorkflow the instance did not take; it keeps its version."""

    instance_id: str
    seq: int
    at: int
    from_version: str
    to_version: str
    checked_seq: int
    reason: str


HistoryEvent = (
    WorkflowStarted
    | WorkflowQueued
    | WorkflowAdmitted
    | StepScheduled
    | StepCompleted
    | StepFailed
    | TimerStarted
    | TimerFired
    | EventAwaited
    | EventReceived
    | EventKept
    | EventDelivered
    | CallDropped
    | CancelRequested
    | WorkflowCompleted
    | WorkflowFailed
    | WorkflowCancelled
    | WorkflowTerminated
    | WorkflowTimedOut
    | WorkflowPaused
    | WorkflowResumed
    | WorkflowRestarted
    | WorkflowSuspended
    | PatchMarked
    | WorkflowUpgraded
    | UpgradeRefused
)

# Work for workers, and results for clients.


@dataclass(frozen=True)
class Task:
    """One attempt of one step, on replayflow.tasks."""

    instance_id: str
    workflow: str
    step: str
    function: str
    attempt: int
    input: str  # JSON: {"args": [...], "kwargs": {...}}
    scheduled_at: int
    timeout_ms: int | None = None

    @property
    def idempotency_key(self) -> str:
        # Stable across attempts: a step that charges a card must charge it once.
        return f"{self.instance_id}/{self.step}"


@dataclass(frozen=True)
class Completion:
    """The end of an instance, on replayflow.completions."""

    instance_id: str
    workflow: str
    version: str
    status: str
    at: int
    output: str | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True)
class DeadLetter:
    """Input that could not be accepted, on replayflow.dlq, with the original bytes up
    to a limit (past it: their size and SHA-256, and where the original is)."""

    source_topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    error_type: str
    at: int
    key_size: int | None = None
    key_sha256: str | None = None
    value_size: int | None = None
    value_sha256: str | None = None


fast_inits(globals())
