"""Per-instance state: what the fold knows about one workflow instance.

State is immutable; decide() returns a new one. It is split so the store can write only
what changed: `info` (small, changes on every decision) and `calls`, one record per
await point in the order the workflow asked for them (a record is rewritten only when
that call changes). `calls` is a persistent sequence (core/callseq.py): a new state
shares all but the calls its decision changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from replayflow.core.callseq import Calls
from replayflow.core.fast_init import fast_init
from replayflow.core.messages import ErrorInfo
from replayflow.core.policy import Retry


class Status(StrEnum):
    QUEUED = "QUEUED"  # over its workflow's concurrency limit, waiting for a slot
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"  # results are recorded, but the code waits for a resume
    SUSPENDED = "SUSPENDED"  # stopped on a NonDeterminismError; an operator must act
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TERMINATED = "TERMINATED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.CANCELLED, Status.TERMINATED, Status.TIMED_OUT}
)


class CallKind(StrEnum):
    STEP = "step"
    SLEEP = "sleep"
    EVENT = "event"
    CHILD = "child"  # a child workflow instance, awaited like a step
    PATCH = "patch"  # a ctx.patched marker: never awaited, resolved when made


class CallStatus(StrEnum):
    SCHEDULED = "scheduled"  # a step attempt is out with a worker
    BACKOFF = "backoff"  # a step attempt failed; the next waits on a retry timer
    WAITING = "waiting"  # a sleep or an event wait
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"  # an event wait whose timeout passed

    @property
    def is_pending(self) -> bool:
        return self in (CallStatus.SCHEDULED, CallStatus.BACKOFF, CallStatus.WAITING)


@fast_init
@dataclass(frozen=True)
class Call:
    """One await point. For steps `key` is the step's name in the workflow (with '#n'
    when the name repeats), for sleeps the sleep's name, for events the event name."""

    index: int
    kind: CallKind
    key: str
    status: CallStatus
    function: str = ""  # steps: the registered step function
    input: str = ""  # steps: JSON {"args": [...], "kwargs": {...}}
    retry: Retry | None = None  # steps and children: the policy their attempts follow
    timeout_ms: int | None = None
    attempt: int = 0
    first_attempt: int = 1  # attempts keep counting across restarts, so stale results miss
    deadline: int | None = None  # sleeps: due time; event waits: timeout time
    result: str | None = None
    error: ErrorInfo | None = None
    resolved_seq: int | None = None  # the history seq that resolved it, orders outcomes
    resolved_at: int | None = None

    def describe(self) -> str:
        return f"{self.kind.value} {self.key!r}"


@fast_init
@dataclass(frozen=True)
class Info:
    instance_id: str
    workflow: str
    version: str
    status: Status
    input: str
    started_at: int
    seq: int = 0  # the last history sequence number written for this instance
    output: str | None = None
    error: ErrorInfo | None = None
    reason: str | None = None  # why it was cancelled or terminated
    ended_at: int | None = None
    admitted_at: int | None = None  # when a queued instance got its slot and first ran
    parent_id: str | None = None
    parent_step: str | None = None
    schedule_id: str | None = None  # started by this schedule (told when it ends)
    schedule_slot: int | None = None  # for this slot
    limiter: str | None = None  # holds (or waits for) a slot of this limiter
    run: int = 0  # how many times the instance was restarted
    attempt_base: int = 0  # the highest attempt number any dropped call reached
    timers: tuple[tuple[str, int], ...] = ()  # (timer id, due) of every live timer
    # Events that arrived before a wait: (name, payload, seq of their EventReceived; None
    # in state written before it was kept).
    inbox: tuple[tuple[str, str, int | None], ...] = ()


@fast_init
@dataclass(frozen=True, slots=True)  # (one a decision, thousands cached: no dict each)
class InstanceState:
    info: Info
    calls: Calls[Call] = field(default_factory=Calls)

    def __post_init__(self) -> None:
        calls: Sequence[Call] = self.calls
        if not isinstance(calls, Calls):  # a tuple or list of calls, as tests build them
            object.__setattr__(self, "calls", Calls(calls))

    @property
    def status(self) -> Status:
        return self.info.status

    def pending_calls(self) -> list[Call]:
        # Pending calls are at the tail (the current await), so scan backwards briefly.
        found = []
        for call in reversed(self.calls):
            if call.status.is_pending:
                found.append(call)
        found.reverse()
        return found

    def has_work_out(self) -> bool:
        """Running with a step or child out: its next result comes soon. Pending calls
        sit at the end, so only the last 64 are looked at. (A plain loop with identity
        tests, no chain of generators: the fold asks once per instance and batch.)"""
        if self.info.status is not Status.RUNNING:
            return False
        for looked, call in enumerate(reversed(self.calls)):
            if looked == 64:
                break
            s, kind = call.status, call.kind
            pending = (
                s is CallStatus.SCHEDULED or s is CallStatus.BACKOFF or s is CallStatus.WAITING
            )
            if pending and (kind is CallKind.STEP or kind is CallKind.CHILD):
                return True
        return False


_SET_INFO = vars(InstanceState)["info"].__set__  # (the slots' own setters)
_SET_CALLS = vars(InstanceState)["calls"].__set__


def built_state(info: Info, calls: Calls[Call]) -> InstanceState:
    """InstanceState(info=info, calls=calls) for calls that are a Calls already, as
    every decision builds them: __post_init__ would only check that again."""
    state = object.__new__(InstanceState)
    _SET_INFO(state, info)
    _SET_CALLS(state, calls)
    return state
