"""What an instance's recorded facts say about it, without running its code: its
workflow, version, status and last seq. The replay tools filter and report with it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from replayflow.core.messages import (
    HistoryEvent,
    WorkflowAdmitted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowPaused,
    WorkflowQueued,
    WorkflowRestarted,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowSuspended,
    WorkflowTerminated,
    WorkflowTimedOut,
    WorkflowUpgraded,
)
from replayflow.core.state import Status

_STATUS_OF: dict[type, Status] = {
    WorkflowStarted: Status.RUNNING,
    WorkflowQueued: Status.QUEUED,
    WorkflowAdmitted: Status.RUNNING,
    WorkflowPaused: Status.PAUSED,
    WorkflowResumed: Status.RUNNING,
    WorkflowSuspended: Status.SUSPENDED,
    WorkflowRestarted: Status.RUNNING,
    WorkflowCompleted: Status.COMPLETED,
    WorkflowFailed: Status.FAILED,
    WorkflowCancelled: Status.CANCELLED,
    WorkflowTerminated: Status.TERMINATED,
    WorkflowTimedOut: Status.TIMED_OUT,
}


@dataclass(frozen=True)
class Upgrade:
    at: int
    seq: int
    from_version: str
    to_version: str


@dataclass(frozen=True)
class Summary:
    instance_id: str
    workflow: str = ""
    version: str = ""
    status: Status = Status.RUNNING
    seq: int = 0  # the last seq seen
    first_seq: int = 0  # 1 when the history is whole from its start
    started_at: int = 0
    last_at: int = 0
    upgrades: tuple[Upgrade, ...] = field(default=())

    @property
    def whole(self) -> bool:
        return self.first_seq == 1


def summarize(events: Iterable[HistoryEvent]) -> Summary | None:
    summary: Summary | None = None
    for event in events:
        summary = step(summary, event)
    return summary


def step(summary: Summary | None, event: HistoryEvent) -> Summary:
    """The summary after one more fact of the same instance."""
    if summary is None:
        summary = Summary(event.instance_id, first_seq=event.seq, started_at=event.at)
    changes: dict[str, object] = {"seq": event.seq, "last_at": event.at}
    status = _STATUS_OF.get(type(event))
    if status is not None:
        changes["status"] = status
    if isinstance(event, WorkflowStarted):
        changes.update(workflow=event.workflow, version=event.version, started_at=event.at)
    elif isinstance(event, WorkflowUpgraded):
        changes["version"] = event.to_version
        changes["upgrades"] = (
            *summary.upgrades,
            Upgrade(event.at, event.seq, event.from_version, event.to_version),
        )
    return replace(summary, **changes)  # type: ignore[arg-type]
