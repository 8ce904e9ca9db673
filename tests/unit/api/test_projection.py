"""The read-model projection as pure functions: events in, keyed rows out."""

from __future__ import annotations

from typing import Any

from replayflow.api import projection as p
from replayflow.core.messages import (
    CallDropped,
    CancelRequested,
    ErrorInfo,
    EventAwaited,
    EventDelivered,
    EventKept,
    EventReceived,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowPaused,
    WorkflowRestarted,
    WorkflowResumed,
    WorkflowStarted,
    WorkflowSuspended,
    WorkflowTerminated,
    WorkflowTimedOut,
)

ID = "order-1"


def started(seq: int = 1, at: int = 1000) -> WorkflowStarted:
    return WorkflowStarted(ID, seq, at, workflow="checkout", version="2", input='{"n":1}')


def happy_path() -> list[Any]:
    return [
        started(),
        StepScheduled(ID, 2, 1000, step="charge", function="charge", attempt=1, input="[]"),
        StepFailed(
            ID,
            3,
            1100,
            step="charge",
            attempt=1,
            error=ErrorInfo("ConnectionError", "down"),
            retry_at=1200,
        ),
        TimerFired(ID, 4, 1200, timer="step/charge/retry/1"),
        StepScheduled(ID, 5, 1200, step="charge", function="charge", attempt=2, input="[]"),
        StepCompleted(ID, 6, 1300, step="charge", attempt=2, result='"paid"'),
        TimerStarted(ID, 7, 1300, timer="sleep/1", due=1800),
        TimerFired(ID, 8, 1800, timer="sleep/1"),
        EventAwaited(ID, 9, 1800, name="approval", deadline=None, wait=2),
        EventReceived(ID, 10, 1900, name="approval", payload='{"ok":true}'),
        EventDelivered(ID, 11, 1900, name="approval", wait=2, received_seq=10),
        WorkflowCompleted(ID, 12, 2000, output='"done"'),
    ]


def row(store: dict[bytes, bytes]) -> dict[str, Any]:
    return p.loads(store[p.instance_key(ID)])  # type: ignore[no-any-return]


def timeline(store: dict[bytes, bytes]) -> list[dict[str, Any]]:
    prefix = p.calls_prefix(ID)
    return [p.loads(v) for k, v in sorted(store.items()) if k.startswith(prefix)]


def index(store: dict[bytes, bytes]) -> set[tuple[str, str]]:
    return {
        (p.split_index_key(k)[0], p.split_index_key(k)[2]) for k in store if k.startswith(b"x\x1f")
    }


def test_instance_row_status_timings_input_output() -> None:
    store = p.fold_all(happy_path())
    r = row(store)
    assert (r["status"], r["workflow"], r["version"]) == ("COMPLETED", "checkout", "2")
    assert (r["input"], r["output"], r["seq"]) == ('{"n":1}', '"done"', 12)
    assert (r["started_at"], r["ended_at"]) == (1000, 2000)
    assert [e["type"] for e in r["recent"]][-2:] == ["EventDelivered", "WorkflowCompleted"]


def test_timeline_has_steps_with_attempts_sleeps_and_waits() -> None:
    entries = timeline(p.fold_all(happy_path()))
    assert [(e["kind"], e["key"], e["status"]) for e in entries] == [
        ("step", "charge", "completed"),
        ("sleep", "sleep/1", "completed"),
        ("wait", "approval", "completed"),
    ]
    charge = entries[0]
    assert [(a["attempt"], a["status"], a["duration_ms"]) for a in charge["attempts"]] == [
        (1, "failed", 100),
        (2, "completed", 100),
    ]
    assert charge["attempts"][0]["error"]["type"] == "ConnectionError"
    assert charge["result"] == '"paid"'
    assert entries[2]["result"] == '{"ok":true}'


def test_history_is_kept_by_seq() -> None:
    store = p.fold_all(happy_path())
    keys = sorted(k for k in store if k.startswith(p.history_prefix(ID)))
    assert [p.loads(store[k])["seq"] for k in keys] == list(range(1, 13))


def test_redelivery_changes_nothing() -> None:
    events = happy_path()
    once = p.fold_all(events)
    twice = p.fold_all(events + events[3:7] + events)
    assert once == twice
    assert p.project(events[4], once.get) == []


def test_index_follows_status_and_old_entries_go() -> None:
    store = p.fold_all(happy_path()[:3])
    assert ("s\x1fRUNNING", ID) in index(store)
    store = p.fold_all(happy_path()[3:], store)
    groups = {g for g, _ in index(store)}
    assert groups == {
        "all",
        "s\x1fCOMPLETED",
        "w\x1fcheckout",
        "ws\x1fcheckout\x1fCOMPLETED",
        "v\x1fcheckout\x1f2",
    }


def test_index_keys_sort_newest_first() -> None:
    older = p.index_key("all", 1000, "a")
    newer = p.index_key("all", 2000, "b")
    assert newer < older
    assert p.split_index_key(newer) == ("all", 2000, "b")


def test_event_before_wait_is_buffered_then_delivered() -> None:
    store = p.fold_all(
        [
            started(),
            EventReceived(ID, 2, 1100, name="go", payload="1"),
            EventKept(ID, 3, 1100, name="go", received_seq=2),
            EventAwaited(ID, 4, 1200, name="go", wait=0),
            EventDelivered(ID, 5, 1200, name="go", wait=0, received_seq=2),
        ]
    )
    entries = timeline(store)
    assert [(e["kind"], e["status"]) for e in entries] == [
        ("event", "delivered"),
        ("wait", "completed"),
    ]
    assert entries[1]["result"] == "1"


def test_cancel_pause_resume_restart() -> None:
    store = p.fold_all(
        [
            started(),
            StepScheduled(ID, 2, 1000, step="a", function="a", attempt=1, input="[]"),
            StepCompleted(ID, 3, 1100, step="a", attempt=1, result="1"),
            WorkflowPaused(ID, 4, 1200, reason="ops"),
        ]
    )
    assert (row(store)["status"], row(store)["reason"]) == ("PAUSED", "ops")
    store = p.fold_all(
        [
            WorkflowResumed(ID, 5, 1300),
            CancelRequested(ID, 6, 1400, reason="bye"),
            WorkflowCancelled(ID, 7, 1500, reason="bye"),
        ],
        store,
    )
    assert (row(store)["status"], row(store)["ended_at"]) == ("CANCELLED", 1500)
    store = p.fold_all(
        [
            WorkflowRestarted(ID, 8, 1600, from_step="a"),
            StepScheduled(ID, 9, 1600, step="a", function="a", attempt=2, input="[]"),
        ],
        store,
    )
    r = row(store)
    assert (r["status"], r["run"], r["ended_at"], r["restarted_from"]) == ("RUNNING", 1, None, "a")
    [a] = timeline(store)
    assert (a["status"], [x["attempt"] for x in a["attempts"]]) == ("scheduled", [1, 2])
    assert ("s\x1fCANCELLED", ID) not in index(store)
    assert ("s\x1fRUNNING", ID) in index(store)


def test_public_instance_hides_bookkeeping() -> None:
    shown = p.public_instance(row(p.fold_all(happy_path())))
    assert "waits" not in shown and "inbox" not in shown
    assert shown["steps"] == 3 and shown["status"] == "COMPLETED"


def test_events_without_an_instance_are_ignored() -> None:
    assert p.project(object(), {}.get) == []


def calls(store: dict[bytes, bytes]) -> list[tuple[str, str, str, int | None]]:
    return [(e["kind"], e["key"], e["status"], e["ended_at"]) for e in timeline(store)]


def test_ending_closes_steps_in_flight_sleeps_and_waits() -> None:
    opened = [
        started(),
        StepScheduled(ID, 2, 1000, step="a", function="a", attempt=1, input="[]"),
        StepScheduled(ID, 3, 1000, step="b", function="b", attempt=1, input="[]"),
        StepFailed(ID, 4, 1100, step="b", attempt=1, error=ErrorInfo("E", "x"), retry_at=9000),
        TimerStarted(ID, 5, 1100, timer="sleep/2", due=99999),
        EventAwaited(ID, 6, 1100, name="go", deadline=None, wait=3),
    ]
    for ending, status in (
        (WorkflowCancelled(ID, 11, 1500, reason="bye"), "cancelled"),
        (WorkflowTerminated(ID, 11, 1500, reason="kill"), "terminated"),
        (WorkflowTimedOut(ID, 11, 1500), "timed_out"),
    ):
        cause = (
            type(ending).__name__.removeprefix("Workflow").upper().replace("TIMEDOUT", "TIMED_OUT")
        )
        dropped = [
            CallDropped(ID, 7 + i, 1500, kind=kind, key=key, index=i, cause=cause)
            for i, (kind, key) in enumerate(
                [("step", "a"), ("step", "b"), ("sleep", "sleep"), ("event", "go")]
            )
        ]
        store = p.fold_all([*opened, *dropped, ending])
        assert calls(store) == [
            ("step", "a", status, 1500),
            ("step", "b", status, 1500),
            ("sleep", "sleep/2", status, 1500),
            ("wait", "go", status, 1500),
        ]
        a = timeline(store)[0]["attempts"][0]
        assert (a["status"], a["ended_at"], a["duration_ms"]) == (status, 1500, 500)


def three_steps() -> list[Any]:
    events: list[Any] = [started()]
    for i, step in enumerate(("s1", "s2", "s3")):
        events += [
            StepScheduled(ID, 2 + 2 * i, 1000, step=step, function="f", attempt=1, input="[]"),
            StepCompleted(ID, 3 + 2 * i, 1100, step=step, attempt=1, result=f'"{step}"'),
        ]
    return [*events, WorkflowCompleted(ID, 8, 1200, output='"done"')]


def test_restart_drops_the_calls_from_the_step_on() -> None:
    store = p.fold_all(
        [
            *three_steps(),
            CallDropped(ID, 9, 1300, kind="step", key="s2", index=1, cause="RESTARTED"),
            CallDropped(ID, 10, 1300, kind="step", key="s3", index=2, cause="RESTARTED"),
            WorkflowRestarted(ID, 11, 1300, from_step="s2"),
            StepScheduled(ID, 12, 1300, step="s2", function="f", attempt=2, input="[]"),
        ]
    )
    assert [(k, s) for _, k, s, _ in calls(store)] == [
        ("s1", "completed"),
        ("s2", "scheduled"),
        ("s3", "dropped"),
    ]
    entries = timeline(store)
    assert entries[0]["result"] == '"s1"' and entries[1]["result"] is None


def test_restart_from_the_start_drops_every_call_and_open_sleep() -> None:
    store = p.fold_all(
        [
            started(),
            StepScheduled(ID, 2, 1000, step="s1", function="f", attempt=1, input="[]"),
            TimerStarted(ID, 3, 1100, timer="sleep/1", due=99999),
            CallDropped(ID, 4, 1300, kind="step", key="s1", index=0, cause="RESTARTED"),
            CallDropped(ID, 5, 1300, kind="sleep", key="rest", index=1, cause="RESTARTED"),
            WorkflowRestarted(ID, 6, 1300, from_step=None),
        ]
    )
    assert calls(store) == [("step", "s1", "dropped", 1300), ("sleep", "sleep/1", "dropped", 1300)]


def test_resume_clears_error_and_pause_reason() -> None:
    store = p.fold_all(
        [
            started(),
            WorkflowSuspended(ID, 2, 1100, error=ErrorInfo("Boom", "x")),
            WorkflowResumed(ID, 3, 1200),
            WorkflowPaused(ID, 4, 1300, reason="maintenance"),
            WorkflowResumed(ID, 5, 1400),
            WorkflowCompleted(ID, 6, 1500, output="1"),
        ]
    )
    r = row(store)
    assert (r["status"], r["error"], r["reason"]) == ("COMPLETED", None, None)


def test_resume_delivers_events_kept_while_paused() -> None:
    store = p.fold_all(
        [
            started(),
            EventAwaited(ID, 2, 1100, name="approve", deadline=None, wait=0),
            WorkflowPaused(ID, 3, 1200, reason="hold"),
            EventReceived(ID, 4, 1300, name="other", payload="0"),
            EventKept(ID, 5, 1300, name="other", received_seq=4),
            EventReceived(ID, 6, 1300, name="approve", payload="true"),
            EventKept(ID, 7, 1300, name="approve", received_seq=6),
        ]
    )
    assert [s for _, _, s, _ in calls(store)] == ["waiting", "buffered", "buffered"]
    store = p.fold_all(
        [
            WorkflowResumed(ID, 8, 1400),
            EventDelivered(ID, 9, 1400, name="approve", wait=0, received_seq=6),
        ],
        store,
    )
    entries = timeline(store)
    assert [(e["key"], e["status"]) for e in entries] == [
        ("approve", "completed"),
        ("other", "buffered"),
        ("approve", "delivered"),
    ]
    assert (entries[0]["result"], entries[0]["ended_at"]) == ("true", 1400)
    assert entries[2]["result"] == "true"
