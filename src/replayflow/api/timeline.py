"""The timeline half of the projection: one handler per history event about a call (a
step and its attempts, a sleep, an event wait, an event kept for later), each recording
what the event says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replayflow.api.readkeys import (
    MAX_ATTEMPTS,
    Writes,
    call_key,
    error_dict,
    history_key,
    identity_key,
)
from replayflow.core import messages as m


def _call(
    w: Writes, row: dict[str, Any], identity: str, create: dict[str, Any] | None
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


def _put_call(w: Writes, row: dict[str, Any], call: dict[str, Any]) -> None:
    key = call_key(row["id"], call["n"])
    before = w.get(key)
    _track_open(row, before, call)
    w.put(key, call)


# What an instance waits for, kept in its row so lists can say it without reading the
# timeline: every call still open is counted, the first OPEN_KEPT are described.
OPEN_KEPT = 8


def _track_open(row: dict[str, Any], before: dict[str, Any] | None, call: dict[str, Any]) -> None:
    identity = str(call["n"])
    was = before is not None and before.get("status") in OPEN
    now = call.get("status") in OPEN
    waiting: dict[str, Any] = row.setdefault("waiting", {})
    if was and not now:
        row["waiting_count"] = max(0, row.get("waiting_count", 0) - 1)
        waiting.pop(identity, None)
    elif now:
        if not was:
            row["waiting_count"] = row.get("waiting_count", 0) + 1
        if identity in waiting or len(waiting) < OPEN_KEPT:
            waiting[identity] = open_summary(call)


def open_summary(call: dict[str, Any]) -> dict[str, Any]:
    """An open call in a few words: what, which, since when, until when, which attempt
    of how many, the last error."""
    summary: dict[str, Any] = {
        "kind": call.get("kind"),
        "key": call.get("key"),
        "status": call.get("status"),
        "since": call.get("started_at"),
    }
    if call.get("kind") == "sleep":
        summary["until"] = call.get("due")
    elif call.get("kind") == "wait":
        summary["until"] = call.get("deadline")
    attempts = call.get("attempts") or []
    if attempts:
        last = attempts[-1]
        number = last["attempt"] - call.get("first_attempt", attempts[0]["attempt"]) + 1
        summary["attempt"] = number
        summary["max_attempts"] = call.get("max_attempts")
        if call.get("status") == "backoff":
            summary["attempt"] = number + 1  # the one that waits for its turn
            summary["until"] = call.get("retry_at")
            error = call.get("error") or {}
            summary["error"] = {"type": error.get("type"), "message": error.get("message")}
        else:
            summary["since"] = last.get("scheduled_at")
    return summary


def _sleep_identity(row: dict[str, Any], index: int) -> str:
    return f"timer:sleep/{index}:{row.get('run', 0)}"


def _wait_identity(row: dict[str, Any], wait: int | None, seq: int) -> str:
    # EventAwaited v1 carried no wait number: such a wait is reachable by its seq only.
    return f"wait:{wait}:{row.get('run', 0)}" if wait is not None else f"wait@{seq}"


def _received_payload(w: Writes, row: dict[str, Any], received_seq: int | None) -> Any:
    received = None if received_seq is None else w.get(history_key(row["id"], received_seq))
    return None if received is None else received.get("payload")


OPEN = frozenset({"scheduled", "backoff", "waiting"})  # a call's statuses until it ends


def _step_scheduled(w: Writes, row: dict[str, Any], event: m.StepScheduled) -> None:
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
    if "first_attempt" not in call or call.get("run") != row.get("run", 0):
        call["first_attempt"] = event.attempt  # attempts count from here in this run
    call.update(status="scheduled", ended_at=None, input=event.input, run=row.get("run", 0))
    call["max_attempts"] = event.max_attempts
    call["result"] = None
    call["error"] = None
    call["attempts"] = [
        *call["attempts"],
        {
            "attempt": event.attempt,
            "number": event.attempt - call["first_attempt"] + 1,  # within its run: 1, 2, ...
            "run": row.get("run", 0),
            "scheduled_at": event.at,
            "ended_at": None,
            "duration_ms": None,
            "status": "scheduled",
            "error": None,
            "timeout_ms": event.timeout_ms,
        },
    ][-MAX_ATTEMPTS:]
    _put_call(w, row, call)


def _step_result(w: Writes, row: dict[str, Any], event: m.StepCompleted | m.StepFailed) -> None:
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
            error=error_dict(event.error),
            retry_at=event.retry_at,
            ended_at=None if retry else at,
        )
    if attempt is not None:
        failed = isinstance(event, m.StepFailed)
        attempt.update(
            ended_at=at,
            duration_ms=at - attempt["scheduled_at"],
            status="failed" if failed else "completed",
            error=error_dict(event.error) if isinstance(event, m.StepFailed) else None,
        )
    _put_call(w, row, call)


def _timer_started(w: Writes, row: dict[str, Any], event: m.TimerStarted) -> None:
    if not event.timer.startswith("sleep/"):
        return  # step timeouts and backoffs show on their steps
    index = int(event.timer.split("/")[1])
    call = _call(
        w,
        row,
        _sleep_identity(row, index),
        {
            "kind": "sleep",
            # The name the code gave the sleep (recorded since TimerStarted v2).
            "key": event.name or event.timer,
            "timer": event.timer,
            "status": "waiting",
            "started_at": event.at,
            "ended_at": None,
            "due": event.due,
            "run": row.get("run", 0),
        },
    )
    assert call is not None
    _put_call(w, row, call)


def _timer_fired(w: Writes, row: dict[str, Any], event: m.TimerFired) -> None:
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


def _event_awaited(w: Writes, row: dict[str, Any], event: m.EventAwaited) -> None:
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


def _event_kept(w: Writes, row: dict[str, Any], event: m.EventKept) -> None:
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


def _event_delivered(w: Writes, row: dict[str, Any], event: m.EventDelivered) -> None:
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


def _call_dropped(w: Writes, row: dict[str, Any], event: m.CallDropped) -> None:
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


HANDLERS: dict[str, Callable[[Writes, dict[str, Any], Any], None]] = {
    "StepScheduled": _step_scheduled,
    "StepCompleted": _step_result,
    "StepFailed": _step_result,
    "TimerStarted": _timer_started,
    "TimerFired": _timer_fired,
    "EventAwaited": _event_awaited,
    "EventKept": _event_kept,
    "EventDelivered": _event_delivered,
    "CallDropped": _call_dropped,
    # EventReceived: the payload is in history; EventKept or EventDelivered says where
    # it went.
}
