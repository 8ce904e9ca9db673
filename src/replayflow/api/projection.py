"""History events -> read-model rows. PURE: no Kafka, no faust, no clock.

The read model is one key space per partition (faust table `readmodel`, rocksdict):

    i|<id>                       the instance row (status, input, output, error, timings,
                                 step count, the last RECENT events)
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

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

from replayflow.core import messages as m

SEP = "\x1f"
RECENT = 20  # events kept in the instance row
MAX_ATTEMPTS = 50  # attempts kept per step (the newest)
PREVIEW = 2000  # characters of a payload kept in the instance row's recent events
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


def _preview(entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in entry.items():
        if isinstance(value, str) and len(value) > PREVIEW:
            value = value[:PREVIEW] + "…"
        out[name] = value
    return out


def _error(error: m.ErrorInfo | None) -> dict[str, Any] | None:
    return None if error is None else dataclasses.asdict(error)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(raw: bytes | None) -> Any:
    return None if raw is None else json.loads(raw)


# ---------------------------------------------------------------------------- project


class _Writes:
    """Collects writes and answers reads through them (later writes win)."""

    def __init__(self, get: Getter) -> None:
        self._get = get
        self.pending: dict[bytes, bytes | None] = {}

    def get(self, k: bytes) -> Any:
        if k in self.pending:
            return loads(self.pending[k])
        return loads(self._get(k))

    def put(self, k: bytes, value: Any) -> None:
        self.pending[k] = _dumps(value)

    def delete(self, k: bytes) -> None:
        self.pending[k] = None


def project(event: Any, get: Getter) -> list[Write]:
    """The writes that fold one history event into the read model; [] when the event
    was folded already (its seq is not above the row's) or belongs to no instance."""
    instance_id = getattr(event, "instance_id", None)
    seq = getattr(event, "seq", None)
    if not instance_id or not isinstance(seq, int):
        return []
    w = _Writes(get)
    row = w.get(instance_key(instance_id))
    if row is not None and seq <= row["seq"]:
        return []
    if row is None:
        row = _new_row(instance_id, event)
    old_status = row["status"]
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
    if row.get("indexed") and old_status != new_status:
        for g in index_groups(row["workflow"], row["version"], old_status):
            if g not in index_groups(row["workflow"], row["version"], new_status):
                w.delete(index_key(g, started, instance_id))
    # Indexed once WorkflowStarted is known, and again on every status change.
    if (not row.get("indexed") or old_status != new_status) and row["workflow"]:
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

Handler = Callable[["_Writes", dict[str, Any], Any], None]


def _started(w: _Writes, row: dict[str, Any], event: m.WorkflowStarted) -> None:
    row.update(
        workflow=event.workflow,
        version=event.version,
        input=event.input,
        parent_id=event.parent_id,
        parent_step=event.parent_step,
        started_at=event.at,
        status="RUNNING",
    )


def _queued(w: _Writes, row: dict[str, Any], event: m.WorkflowQueued) -> None:
    row["status"] = "QUEUED"


def _admitted(w: _Writes, row: dict[str, Any], event: m.WorkflowAdmitted) -> None:
    row["status"] = "RUNNING"
    row["admitted_at"] = event.at


def _cancel_requested(w: _Writes, row: dict[str, Any], event: m.CancelRequested) -> None:
    row["cancel_requested"] = True
    row["reason"] = event.reason or row["reason"]


def _ended(status: str) -> Handler:
    def handle(w: _Writes, row: dict[str, Any], event: Any) -> None:
        row["status"] = status
        row["ended_at"] = event.at
        if isinstance(event, m.WorkflowCompleted):
            row["output"] = event.output
        elif isinstance(event, m.WorkflowFailed):
            row["error"] = _error(event.error)
        elif isinstance(event, m.WorkflowCancelled | m.WorkflowTerminated):
            row["reason"] = event.reason

    return handle


def _suspended(w: _Writes, row: dict[str, Any], event: m.WorkflowSuspended) -> None:
    row["status"] = "SUSPENDED"
    row["error"] = _error(event.error)


def _paused(w: _Writes, row: dict[str, Any], event: m.WorkflowPaused) -> None:
    row["status"] = "PAUSED"
    row["reason"] = event.reason or None


def _resumed(w: _Writes, row: dict[str, Any], event: m.WorkflowResumed) -> None:
    # A resume clears the error (suspended); the pause reason goes with the pause, a
    # cancel asked for meanwhile keeps its reason.
    row.update(status="RUNNING", error=None)
    if not row.get("cancel_requested"):
        row["reason"] = None


def _restarted(w: _Writes, row: dict[str, Any], event: m.WorkflowRestarted) -> None:
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


def _call(
    w: _Writes, row: dict[str, Any], identity: str, create: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The timeline entry of an identity; a new one from `create` when there is none."""
    iid = row["id"]
    n = w.get(identity_key(iid, identity))
    if n is not None:
        return w.get(call_key(iid, n))  # type: ignore[no-any-return]
    if create is None:
        return None
    n = row["calls"]
    row["calls"] = n + 1
    w.put(identity_key(iid, identity), n)
    return {"n": n, **create}


def _put_call(w: _Writes, row: dict[str, Any], call: dict[str, Any]) -> None:
    w.put(call_key(row["id"], call["n"]), call)


def _sleep_identity(row: dict[str, Any], index: int) -> str:
    return f"timer:sleep/{index}:{row.get('run', 0)}"


def _wait_identity(row: dict[str, Any], wait: int | None, seq: int) -> str:
    # EventAwaited v1 carried no wait number: such a wait is reachable by its seq only.
    return f"wait:{wait}:{row.get('run', 0)}" if wait is not None else f"wait@{seq}"


def _received_payload(w: _Writes, row: dict[str, Any], received_seq: int | None) -> Any:
    received = None if received_seq is None else w.get(history_key(row["id"], received_seq))
    return None if received is None else received.get("payload")


OPEN = frozenset({"scheduled", "backoff", "waiting"})  # a call's statuses until it ends


def _step_scheduled(w: _Writes, row: dict[str, Any], event: m.StepScheduled) -> None:
    child = event.function.startswith("workflow:")
    call = _call(
        w,
        row,
        f"step:{event.step}",
        {
            "kind": "child" if child else "step",
            "key": event.step,
            "function": event.function,
            "status": "scheduled",
            "started_at": event.at,
            "ended_at": None,
            "input": event.input,
            "result": None,
            "error": None,
            "attempts": [],
            "run": row.get("run", 0),
        },
    )
    assert call is not None
    call.update(status="scheduled", ended_at=None, input=event.input, run=row.get("run", 0))
    call["result"] = None
    call["error"] = None
    call["attempts"] = [
        *call["attempts"],
        {
            "attempt": event.attempt,
            "scheduled_at": event.at,
            "ended_at": None,
            "duration_ms": None,
            "status": "scheduled",
            "error": None,
            "timeout_ms": event.timeout_ms,
        },
    ][-MAX_ATTEMPTS:]
    _put_call(w, row, call)


def _step_result(w: _Writes, row: dict[str, Any], event: m.StepCompleted | m.StepFailed) -> None:
    call = _call(w, row, f"step:{event.step}", None)
    if call is None:
        return
    at = event.at
    attempt = next((a for a in reversed(call["attempts"]) if a["attempt"] == event.attempt), None)
    if isinstance(event, m.StepCompleted):
        call.update(status="completed", result=event.result, ended_at=at, error=None)
    else:
        retry = event.retry_at is not None
        call.update(
            status="backoff" if retry else "failed",
            error=_error(event.error),
            retry_at=event.retry_at,
            ended_at=None if retry else at,
        )
    if attempt is not None:
        failed = isinstance(event, m.StepFailed)
        attempt.update(
            ended_at=at,
            duration_ms=at - attempt["scheduled_at"],
            status="failed" if failed else "completed",
            error=_error(event.error) if isinstance(event, m.StepFailed) else None,
        )
    _put_call(w, row, call)


def _timer_started(w: _Writes, row: dict[str, Any], event: m.TimerStarted) -> None:
    if not event.timer.startswith("sleep/"):
        return  # step timeouts and backoffs show on their steps
    index = int(event.timer.split("/")[1])
    call = _call(
        w,
        row,
        _sleep_identity(row, index),
        {
            "kind": "sleep",
            "key": event.timer,
            "status": "waiting",
            "started_at": event.at,
            "ended_at": None,
            "due": event.due,
            "run": row.get("run", 0),
        },
    )
    assert call is not None
    _put_call(w, row, call)


def _timer_fired(w: _Writes, row: dict[str, Any], event: m.TimerFired) -> None:
    parts = event.timer.split("/")
    if parts[0] == "sleep":
        call, status = _call(w, row, _sleep_identity(row, int(parts[1])), None), "completed"
    elif parts[0] == "event" and parts[-1] == "timeout":
        call, status = _call(w, row, _wait_identity(row, int(parts[1]), 0), None), "timed_out"
    else:
        return
    if call is not None and call["status"] == "waiting":
        call.update(status=status, ended_at=event.at)
        _put_call(w, row, call)


def _event_awaited(w: _Writes, row: dict[str, Any], event: m.EventAwaited) -> None:
    call = _call(
        w,
        row,
        _wait_identity(row, event.wait, event.seq),
        {
            "kind": "wait",
            "key": event.name,
            "status": "waiting",
            "started_at": event.at,
            "ended_at": None,
            "deadline": event.deadline,
            "result": None,
            "run": row.get("run", 0),
        },
    )
    assert call is not None
    _put_call(w, row, call)


def _event_kept(w: _Writes, row: dict[str, Any], event: m.EventKept) -> None:
    call = _call(
        w,
        row,
        f"received:{event.received_seq}",
        {
            "kind": "event",
            "key": event.name,
            "status": "buffered",
            "started_at": event.at,
            "ended_at": event.at,
            "result": _received_payload(w, row, event.received_seq),
            "run": row.get("run", 0),
        },
    )
    assert call is not None
    _put_call(w, row, call)


def _event_delivered(w: _Writes, row: dict[str, Any], event: m.EventDelivered) -> None:
    payload = _received_payload(w, row, event.received_seq)
    wait = _call(w, row, _wait_identity(row, event.wait, 0), None)
    if wait is not None:
        wait.update(status="completed", ended_at=event.at, result=payload)
        _put_call(w, row, wait)
    kept = _call(w, row, f"received:{event.received_seq}", None)
    if kept is not None:
        kept.update(status="delivered")
        _put_call(w, row, kept)


# How a dropped call shows, by why it was dropped (the instance's end status otherwise).
_DROPPED_AS = {
    "RESTARTED": "dropped",
    "TERMINATED": "terminated",
    "TIMED_OUT": "timed_out",
}


def _call_dropped(w: _Writes, row: dict[str, Any], event: m.CallDropped) -> None:
    if event.kind in ("step", "child"):
        call = _call(w, row, f"step:{event.key}", None)
    elif event.kind == "sleep":
        call = _call(w, row, _sleep_identity(row, event.index), None)
    else:
        call = _call(w, row, _wait_identity(row, event.index, 0), None)
    if call is None:
        return
    status = _DROPPED_AS.get(event.cause, "cancelled")
    at = event.at
    if call.get("status") in OPEN or call.get("ended_at") is None:
        call["ended_at"] = at
    call["status"] = status
    call.pop("retry_at", None)
    for attempt in call.get("attempts", []):
        if attempt.get("status") == "scheduled":
            attempt.update(status=status, ended_at=at, duration_ms=at - attempt["scheduled_at"])
    _put_call(w, row, call)


_HANDLERS: dict[str, Handler] = {
    "WorkflowStarted": _started,
    "WorkflowQueued": _queued,
    "WorkflowAdmitted": _admitted,
    "StepScheduled": _step_scheduled,
    "StepCompleted": _step_result,
    "StepFailed": _step_result,
    "TimerStarted": _timer_started,
    "TimerFired": _timer_fired,
    "EventAwaited": _event_awaited,
    "EventKept": _event_kept,
    "EventDelivered": _event_delivered,
    "CallDropped": _call_dropped,
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
    # EventReceived: the payload is in history; EventKept or EventDelivered says where
    # it went.
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
    if full:
        out["input"] = row.get("input")
        out["output"] = row.get("output")
        out["error"] = row.get("error")
        out["parent_step"] = row.get("parent_step")
        out["recent"] = row.get("recent", [])
    else:
        out["error"] = row.get("error")
    return out


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
