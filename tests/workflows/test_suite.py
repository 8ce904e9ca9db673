"""The shared workflow suite: written once against the `engine` fixture (conftest.py),
run on one fold shell over each store: in memory, RocksDB, and RocksDB inside the Kafka
orchestrator. Nothing here may reach past that interface."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import replayflow as rf
from replayflow.core.messages import (
    CancelRequested,
    EventReceived,
    HistoryEvent,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowStarted,
    WorkflowTerminated,
)
from replayflow.core.replay import replay
from tests.workflows import definitions as d

REGISTRY = rf.Registry.of(d)
RESULT_TIMEOUT = 60.0  # seconds, for engines on a real clock


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def of_type(history: list[HistoryEvent], kind: type[Any]) -> list[Any]:
    return [event for event in history if isinstance(event, kind)]


def scheduled(history: list[HistoryEvent]) -> list[tuple[str, int]]:
    return [(e.step, e.attempt) for e in of_type(history, StepScheduled)]


def assert_replays(history: list[HistoryEvent]) -> None:
    report = replay(history, REGISTRY)
    assert report.identical, report.difference


def test_three_step_pipeline(engine: Any) -> None:
    handle = engine.start(d.pipeline, 3, id=new_id("pipeline"))
    assert handle.result(timeout=RESULT_TIMEOUT) == 49  # ((3 * 2) + 1) ** 2
    history = engine.history(handle.id)
    assert scheduled(history) == [("double", 1), ("add_one", 1), ("square", 1)]
    assert [e.result for e in of_type(history, StepCompleted)] == ["6", "7", "49"]
    assert isinstance(history[-1], WorkflowCompleted)
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert_replays(history)


def test_retries_then_success(engine: Any) -> None:
    handle = engine.start(d.retries, 2, id=new_id("retries"))
    assert handle.result(timeout=RESULT_TIMEOUT) == 3  # the attempt that succeeded
    history = engine.history(handle.id)
    assert scheduled(history) == [("flaky", 1), ("flaky", 2), ("flaky", 3)]
    failures = of_type(history, StepFailed)
    assert [f.attempt for f in failures] == [1, 2]
    for failure in failures:
        assert failure.error.type == "RuntimeError"
        assert failure.retry_at is not None
        assert failure.retry_at - failure.at == 1000  # QUICK_RETRY: constant 1s, no jitter
    assert_replays(history)


def test_retries_used_up_fail_the_instance(engine: Any) -> None:
    handle = engine.start(d.retries, 5, id=new_id("exhausted"))
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result(timeout=RESULT_TIMEOUT)
    assert caught.value.status == rf.Status.FAILED
    assert caught.value.error is not None and caught.value.error.type == "StepFailed"
    last = of_type(engine.history(handle.id), StepFailed)[-1]
    assert (last.attempt, last.retry_at) == (3, None)


def test_non_retryable_failure_fails_with_the_error_recorded(engine: Any) -> None:
    handle = engine.start(d.charge_only, {"amount": 500, "limit": 100}, id=new_id("declined"))
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result(timeout=RESULT_TIMEOUT)
    error = caught.value.error
    assert caught.value.status == "FAILED"
    assert error is not None and error.type == "StepFailed"
    assert "CardDeclined" in error.message and "over the card limit" in error.message
    history = engine.history(handle.id)
    assert scheduled(history) == [("charge", 1)]  # no retry for a NonRetryableError
    (failed,) = of_type(history, StepFailed)
    assert (failed.error.type, failed.error.retryable, failed.retry_at) == (
        "CardDeclined",
        False,
        None,
    )


def test_step_failed_caught_for_compensation(engine: Any) -> None:
    handle = engine.start(d.compensate, {"item": "book", "amount": 500}, id=new_id("compensate"))
    assert handle.result(timeout=RESULT_TIMEOUT) == {
        "status": "compensated",
        "error": "CardDeclined",
        "released": "r-book",
    }
    assert scheduled(engine.history(handle.id)) == [("reserve", 1), ("charge", 1), ("release", 1)]


def test_compensation_not_needed_when_the_step_succeeds(engine: Any) -> None:
    handle = engine.start(d.compensate, {"item": "pen", "amount": 5}, id=new_id("charged"))
    assert handle.result(timeout=RESULT_TIMEOUT) == {"status": "charged", "charged": 5}


def test_sleep(engine: Any) -> None:
    handle = engine.start(d.sleeper, "1s", id=new_id("sleep"))
    slept = handle.result(timeout=RESULT_TIMEOUT)
    assert slept >= 1000
    history = engine.history(handle.id)
    (started,) = of_type(history, TimerStarted)
    (fired,) = of_type(history, TimerFired)
    assert started.timer == fired.timer
    assert started.due - started.at == 1000 and fired.at >= started.due


def test_wait_for_event_delivered(engine: Any) -> None:
    handle = engine.start(d.wait_event, None, id=new_id("approval"))
    engine.send_event(handle.id, "approval", {"by": "ann"})
    assert handle.result(timeout=RESULT_TIMEOUT) == {"approval": {"by": "ann"}, "timed_out": False}


def test_wait_for_event_timed_out(engine: Any) -> None:
    handle = engine.start(d.wait_event, "1s", id=new_id("no-approval"))
    assert handle.result(timeout=RESULT_TIMEOUT) == {"approval": None, "timed_out": True}
    history = engine.history(handle.id)
    assert [f.timer for f in of_type(history, TimerFired)] == ["event/0/timeout"]
    assert not of_type(history, EventReceived)


def test_events_sent_before_the_wait_are_delivered_in_order(engine: Any) -> None:
    handle = engine.start(d.inbox, 3, id=new_id("inbox"))
    for item in ("first", "second", "third"):
        engine.send_event(handle.id, "item", item)
    engine.send_event(handle.id, "go", None)
    assert handle.result(timeout=RESULT_TIMEOUT) == ["first", "second", "third"]


def test_parallel_steps(engine: Any) -> None:
    handle = engine.start(d.parallel, [1, 2, 3], id=new_id("parallel"))
    assert handle.result(timeout=RESULT_TIMEOUT) == [1, 4, 9]
    history = engine.history(handle.id)
    kinds = [type(e).__name__ for e in history]
    # All three were scheduled in one decision, before any result came back.
    assert kinds[1:4] == ["StepScheduled"] * 3
    assert sorted(s for s, _ in scheduled(history)) == ["square_0", "square_1", "square_2"]


def test_checkout(engine: Any) -> None:
    handle = engine.start(d.checkout, {"item": "lamp", "amount": 40}, id=new_id("checkout"))
    engine.send_event(handle.id, "shipped", {"carrier": "ups"})  # kept until it is awaited
    assert handle.result(timeout=RESULT_TIMEOUT) == {
        "status": "shipped",
        "charge_attempts": 2,
        "label": "lamp via ups",
        "reservation": "r-lamp",
    }
    assert_replays(engine.history(handle.id))


def test_cancel_runs_the_cleanup_step(engine: Any) -> None:
    handle = engine.start(d.cancellable, "order-7", id=new_id("cancel"))
    engine.cancel(handle.id, "customer changed their mind")
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result(timeout=RESULT_TIMEOUT)
    assert caught.value.status == rf.Status.CANCELLED
    history = engine.history(handle.id)
    (requested,) = of_type(history, CancelRequested)
    assert requested.reason == "customer changed their mind"
    assert scheduled(history) == [("cleanup", 1)]
    (cleaned,) = of_type(history, StepCompleted)
    assert cleaned.result == '"cleaned order-7"'
    assert isinstance(history[-1], WorkflowCancelled)
    assert history[-1].reason == "customer changed their mind"
    assert_replays(history)


def test_terminate_stops_at_once(engine: Any) -> None:
    handle = engine.start(d.cancellable, "order-8", id=new_id("terminate"))
    engine.terminate(handle.id, "operator stopped it")
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result(timeout=RESULT_TIMEOUT)
    assert caught.value.status == rf.Status.TERMINATED
    history = engine.history(handle.id)
    assert not of_type(history, StepScheduled)  # no cleanup on terminate
    assert isinstance(history[-1], WorkflowTerminated)
    assert history[-1].reason == "operator stopped it"


def test_duplicate_start_keeps_the_first(engine: Any) -> None:
    instance_id = new_id("duplicate")
    first = engine.start(d.echo_input, {"n": 1}, id=instance_id)
    second = engine.start(d.echo_input, {"n": 2}, id=instance_id)
    assert first.id == second.id == instance_id
    assert second.result(timeout=RESULT_TIMEOUT) == {"n": 1}
    history = engine.history(instance_id)
    (started,) = of_type(history, WorkflowStarted)
    assert started.input == '{"n":1}'
    assert len(of_type(history, WorkflowCompleted)) == 1


def test_now_random_and_uuid_are_deterministic_across_replay(engine: Any) -> None:
    handle = engine.start(d.deterministic, None, id=new_id("deterministic"))
    output = handle.result(timeout=RESULT_TIMEOUT)
    history = engine.history(handle.id)
    first, second = output["first"], output["second"]
    assert 0 <= first["random"] < 1 and 0 <= second["random"] < 1
    assert first["random"] != second["random"]
    assert uuid.UUID(first["uuid"]).version == 4 and first["uuid"] != second["uuid"]
    # now() is the recorded time: the start, then the result that resumed the code.
    assert first["now"] == of_type(history, WorkflowStarted)[0].at
    assert second["now"] == of_type(history, StepCompleted)[0].at
    report = replay(history, REGISTRY)
    assert report.identical, report.difference
    assert report.state is not None and report.state.info.output == history[-1].output
