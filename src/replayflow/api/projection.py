"""History events -> read-model rows. PURE: no Kafka, no faust, no clock.

The read model is one key space per partition (faust table `readmodel`, rocksdict):

    i|<id>                       the instance row (status, input, output, error, timings,
                                 step count, the last RECENT events)
    s|<schedule id>              a schedule's row (schedule_rows.py)
    c|<id>|<n:06d>               one timeline entry (a step with its attempts, a sleep,
                                 an event wait, a buffered event), in order of appearance
    k|<id>|<identity>            identity ("step:charge", "timer:sleep/3", ...) -> n
    h|<id>|<seq:012d>            one history event as JSON (paged by seq)
    x|<group>|<sort>|<id>        list index entries; <group> is one of
                                 all | s|<status> | w|<wf> | ws|<wf>|<status> | v|<wf>|<ver>
                                 and <sort> is (10^13 - started_at) so a forward scan
                                 gives the newest first

"|" above is the unit separator \\x1f, which ids and names cannot contain. Every write
is a keyed upsert or delete, and `project` does nothing for an event whose seq the
instance row has seen already, so delivering an event twice (at-least-once) changes
nothing. The instance row is always the LAST write of an event: a crash half way
through an event's writes leaves the row behind, so the event is folded again.

`project(event, get)` returns the writes as (key, value-or-None) pairs; `get` reads the
current value of a key (a dict's `.get` in tests, the partition's store in the app).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from replayflow.api import timeline, values
from replayflow.api.readkeys import (
    FINAL,
    MAX_ATTEMPTS,
    SEP,
    SORT_BASE,
    STATUSES,
    Getter,
    Write,
    Writes,
    call_key,
    calls_prefix,
    error_dict,
    event_json,
    event_type,
    group,
    history_key,
    history_prefix,
    identity_key,
    index_groups,
    index_key,
    index_prefix,
    instance_key,
    key,
    loads,
    sort_part,
    split_index_key,
)
from replayflow.api.schedule_rows import project_schedule
from replayflow.core import messages as m
from replayflow.core.schedule_messages import ScheduleEvent

# The key space lives in readkeys.py; readers (the API, the tables) find it here too.
__all__ = [
    "FINAL",
    "MAX_ATTEMPTS",
    "SEP",
    "SORT_BASE",
    "STATUSES",
    "Getter",
    "Write",
    "call_key",
    "calls_prefix",
    "event_json",
    "fold_all",
    "group",
    "history_key",
    "history_prefix",
    "identity_key",
    "index_key",
    "index_prefix",
    "instance_key",
    "key",
    "loads",
    "project",
    "public_instance",
    "sort_part",
    "split_index_key",
]

RECENT = 20  # events kept in the instance row
PREVIEW = 2000  # characters of a payload kept in the instance row's recent events


def _preview(entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in entry.items():
        if isinstance(value, str) and len(value) > PREVIEW:
            value = value[:PREVIEW] + "…"
        out[name] = value
    return out


def project(event: Any, get: Getter) -> list[Write]:
    """The writes that fold one history event into the read model; [] when the event
    was folded already (its seq is not above the row's) or belongs to no instance."""
    if isinstance(event, ScheduleEvent):
        return project_schedule(event, get)  # a schedule's fact: its row (schedule_rows)
    instance_id = getattr(event, "instance_id", None)
    seq = getattr(event, "seq", None)
    if not instance_id or not isinstance(seq, int):
        return []
    w = Writes(get)
    row = w.get(instance_key(instance_id))
    if row is not None and seq <= row["seq"]:
        return []
    if row is None:
        row = _new_row(instance_id, event)
    old_status = row["status"]
    old_version = row["version"]
    entry = event_json(event)
    w.put(history_key(instance_id, seq), entry)

    handler = _HANDLERS.get(event_type(event))
    if handler is not None:
        handler(w, row, event)

    row["seq"] = seq
    row["updated_at"] = event.at
    row["events"] = row.get("events", 0) + 1
    row["recent"] = ([*row.get("recent", []), _preview(entry)])[-RECENT:]

    new_status = row["status"]
    started = row["started_at"]
    # An upgrade moves the instance to another version's index group.
    moved = old_status != new_status or (bool(old_version) and old_version != row["version"])
    if row.get("indexed") and moved:
        for g in index_groups(row["workflow"], old_version, old_status):
            if g not in index_groups(row["workflow"], row["version"], new_status):
                w.delete(index_key(g, started, instance_id))
    # Indexed once WorkflowStarted is known, and again on every status or version change.
    if (not row.get("indexed") or moved) and row["workflow"]:
        for g in index_groups(row["workflow"], row["version"], new_status):
            w.put(index_key(g, started, instance_id), 1)
        row["indexed"] = True
    w.put(instance_key(instance_id), row)  # last: see the module docstring
    writes = list(w.pending.items())
    # The row last, whatever dict order said.
    writes.sort(key=lambda kv: kv[0] == instance_key(instance_id))
    return writes


def _new_row(instance_id: str, event: Any) -> dict[str, Any]:
    return {
        "id": instance_id,
        "workflow": "",
        "version": "",
        "status": "RUNNING",
        "input": None,
        "output": None,
        "error": None,
        "reason": None,
        "parent_id": None,
        "parent_step": None,
        "started_at": event.at,
        "updated_at": event.at,
        "ended_at": None,
        "seq": 0,
        "run": 0,
        "calls": 0,
        "cancel_requested": False,
        "events": 0,
        "recent": [],
    }


# One handler per history event type: each records what the event says, nothing more.
# The engine records what it decided (an event kept or delivered, a call dropped), so no
# handler works out what the engine must have done.

Handler = Callable[[Writes, dict[str, Any], Any], None]


def _started(w: Writes, row: dict[str, Any], event: m.WorkflowStarted) -> None:
    row.update(
        workflow=event.workflow,
        version=event.version,
        input=event.input,
        parent_id=event.parent_id,
        parent_step=event.parent_step,
        started_at=event.at,
        status="RUNNING",
    )
    if event.schedule_id is not None:
        row.update(schedule_id=event.schedule_id, schedule_slot=event.schedule_slot)


def _queued(w: Writes, row: dict[str, Any], event: m.WorkflowQueued) -> None:
    row["status"] = "QUEUED"


def _admitted(w: Writes, row: dict[str, Any], event: m.WorkflowAdmitted) -> None:
    row["status"] = "RUNNING"
    row["admitted_at"] = event.at


def _cancel_requested(w: Writes, row: dict[str, Any], event: m.CancelRequested) -> None:
    row["cancel_requested"] = True
    row["reason"] = event.reason or row["reason"]


def _ended(status: str) -> Handler:
    def handle(w: Writes, row: dict[str, Any], event: Any) -> None:
        row["status"] = status
        row["ended_at"] = event.at
        if isinstance(event, m.WorkflowCompleted):
            row["output"] = event.output
        elif isinstance(event, m.WorkflowFailed):
            row["error"] = error_dict(event.error)
        elif isinstance(event, m.WorkflowCancelled | m.WorkflowTerminated):
            row["reason"] = event.reason

    return handle


def _suspended(w: Writes, row: dict[str, Any], event: m.WorkflowSuspended) -> None:
    row["status"] = "SUSPENDED"
    row["error"] = error_dict(event.error)


def _paused(w: Writes, row: dict[str, Any], event: m.WorkflowPaused) -> None:
    row["status"] = "PAUSED"
    row["reason"] = event.reason or None


def _resumed(w: Writes, row: dict[str, Any], event: m.WorkflowResumed) -> None:
    # A resume clears the error (suspended); the pause reason goes with the pause, a
    # cancel asked for meanwhile keeps its reason.
    row.update(status="RUNNING", error=None)
    if not row.get("cancel_requested"):
        row["reason"] = None


def _restarted(w: Writes, row: dict[str, Any], event: m.WorkflowRestarted) -> None:
    row.update(
        status="RUNNING",
        output=None,
        error=None,
        ended_at=None,
        cancel_requested=False,
        reason=event.reason or None,
        run=row.get("run", 0) + 1,
    )
    row["restarted_from"] = event.from_step


def _upgraded(w: Writes, row: dict[str, Any], event: m.WorkflowUpgraded) -> None:
    row["version"] = event.to_version
    row["upgrades"] = [
        *row.get("upgrades", []),
        {
            "at": event.at,
            "seq": event.seq,
            "from_version": event.from_version,
            "to_version": event.to_version,
        },
    ]


_HANDLERS: dict[str, Handler] = {
    "WorkflowStarted": _started,
    "WorkflowQueued": _queued,
    "WorkflowAdmitted": _admitted,
    "CancelRequested": _cancel_requested,
    "WorkflowCompleted": _ended("COMPLETED"),
    "WorkflowFailed": _ended("FAILED"),
    "WorkflowCancelled": _ended("CANCELLED"),
    "WorkflowTerminated": _ended("TERMINATED"),
    "WorkflowTimedOut": _ended("TIMED_OUT"),
    "WorkflowSuspended": _suspended,
    "WorkflowPaused": _paused,
    "WorkflowResumed": _resumed,
    "WorkflowRestarted": _restarted,
    "WorkflowUpgraded": _upgraded,
    **timeline.HANDLERS,
}


# ------------------------------------------------------------------------- read side


def public_instance(row: dict[str, Any], full: bool = True) -> dict[str, Any]:
    """An instance row as the API shows it (internal bookkeeping left out)."""
    out = {
        name: row.get(name)
        for name in (
            "id",
            "workflow",
            "version",
            "status",
            "started_at",
            "updated_at",
            "ended_at",
            "seq",
            "run",
            "parent_id",
            "reason",
            "cancel_requested",
        )
    }
    out["steps"] = row.get("calls", 0)
    out["events"] = row.get("events", 0)
    # What it waits for now: the open calls (up to timeline.OPEN_KEPT described).
    out["waiting"] = sorted(row.get("waiting", {}).values(), key=lambda w: w.get("since") or 0)
    out["waiting_count"] = row.get("waiting_count", 0)
    if full:
        out["input"] = row.get("input")
        out["output"] = row.get("output")
        out["error"] = row.get("error")
        out["parent_step"] = row.get("parent_step")
        out["schedule_id"] = row.get("schedule_id")
        out["schedule_slot"] = row.get("schedule_slot")
        out["recent"] = row.get("recent", [])
        out["upgrades"] = row.get("upgrades", [])
    else:
        out["error"] = row.get("error")
    return values.decoded(out)


def fold_all(events: Iterable[Any], store: dict[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    """Fold events into a dict store (for tests and tools)."""
    store = {} if store is None else store
    for event in events:
        for k, v in project(event, store.get):
            if v is None:
                store.pop(k, None)
            else:
                store[k] = v
    return store
