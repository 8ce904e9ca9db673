"""Errors that reach the caller keep their kind and their traceback; a sleep keeps the
name the code gave it; replay ignores where code ran (tracebacks) and fields an older
history could not hold."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

import replayflow as rf
from replayflow.core.errors import (
    MAX_TRACEBACK,
    error_info,
    format_traceback,
    traceback_of,
    workflow_error,
)
from replayflow.core.messages import (
    ErrorInfo,
    StepScheduled,
    TimerStarted,
    WorkflowFailed,
)
from replayflow.core.replay import replay
from replayflow.testing import Environment


@rf.step(retry=rf.Retry(limit=2, delay="1s"))
def refuse(order: int) -> int:
    raise ValueError(f"order {order} refused")


@rf.workflow(name="k_waits")
async def waits(ctx: rf.Context, _: object) -> object:
    return await ctx.wait_for_event("approval", timeout="1h")


@rf.workflow(name="k_fails_step")
async def fails_step(ctx: rf.Context, _: object) -> object:
    return await ctx.step("refuse", refuse, 7)


@rf.workflow(name="k_breaks")
async def breaks(ctx: rf.Context, _: object) -> object:
    await ctx.sleep("cool-off", "1m")
    raise KeyError("missing")


def test_an_event_timeout_reaches_the_caller_as_event_timeout() -> None:
    env = Environment(waits)
    handle = env.start(waits, id="w1")
    with pytest.raises(rf.EventTimeout) as caught:
        handle.result()
    assert isinstance(caught.value, rf.WorkflowError)
    assert not isinstance(caught.value, rf.StepFailed)
    assert caught.value.name == "approval"
    assert caught.value.status == "FAILED"
    assert "waits" in (caught.value.traceback or "")


def test_a_failed_step_reaches_the_caller_as_step_failed_with_its_cause() -> None:
    env = Environment(fails_step, refuse)
    handle = env.start(fails_step, id="s1")
    with pytest.raises(rf.StepFailed) as caught:
        handle.result()
    assert not isinstance(caught.value, rf.EventTimeout)
    assert (caught.value.step, caught.value.attempts) == ("refuse", 2)
    # As a WorkflowError, `error` is the instance's recorded error; the step's own error
    # is the cause's, with its traceback and line of code.
    assert caught.value.error is not None and caught.value.error.type == "StepFailed"
    cause = caught.value.cause
    assert isinstance(cause, rf.StepFailed) and cause.error.type == "ValueError"
    assert "raise ValueError" in (traceback_of(cause.error) or "")


def test_a_cancelled_instance_reaches_the_caller_as_cancelled() -> None:
    env = Environment(waits)
    handle = env.start(waits, id="c1")
    env.cancel("c1", "not needed")
    with pytest.raises(rf.Cancelled):
        handle.result()


def test_a_workflow_failure_records_its_traceback_without_reading_source() -> None:
    env = Environment(breaks)
    handle = env.start(breaks, id="b1")
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    (failed,) = [e for e in env.history("b1") if isinstance(e, WorkflowFailed)]
    trace = traceback_of(failed.error)
    assert trace is not None
    assert "in breaks" in trace and trace.endswith("KeyError: 'missing'")
    # The fold reads no files: frames name file and line, not the code on it.
    assert 'raise KeyError("missing")' not in trace
    assert caught.value.traceback == trace


def test_tracebacks_are_bounded_to_their_tail() -> None:
    def deep(n: int) -> None:
        if n == 0:
            raise RuntimeError("bottom")
        deep(n - 1)

    try:
        deep(400)
    except RuntimeError as exc:
        text = format_traceback(exc)
    assert text is not None and len(text) == MAX_TRACEBACK
    assert text.startswith("…") and text.endswith("RuntimeError: bottom")


def test_an_exception_with_its_own_details_keeps_them() -> None:
    class Problem(Exception):
        details = json.dumps({"type": "about:blank", "status": 502})

    info = error_info(Problem("bad gateway"))
    assert json.loads(info.details or "") == {"type": "about:blank", "status": 502}


def test_other_errors_stay_plain_workflow_errors() -> None:
    error = workflow_error("x", "FAILED", ErrorInfo(type="ValueError", message="no"))
    assert type(error) is rf.WorkflowError
    assert workflow_error("x", "TIMED_OUT", None).__class__ is rf.WorkflowError


def test_a_sleep_records_the_name_the_code_gave_it() -> None:
    env = Environment(breaks)
    env.start(breaks, id="n1")
    (started,) = [e for e in env.history("n1") if isinstance(e, TimerStarted)]
    assert (started.timer, started.name) == ("sleep/0", "cool-off")


def test_a_step_attempt_records_how_many_attempts_its_policy_allows() -> None:
    env = Environment(fails_step, refuse)
    env.start(fails_step, id="m1")
    env.run_until_idle()
    scheduled = [e for e in env.history("m1") if isinstance(e, StepScheduled)]
    assert scheduled and all(e.max_attempts == 2 for e in scheduled)


def test_replay_ignores_tracebacks_and_fields_an_older_history_lacks() -> None:
    env = Environment(breaks)
    env.start(breaks, id="r1")
    env.advance("2m")
    history = env.history("r1")
    assert replay(history, env.registry).identical

    def older(event: object) -> object:
        # As written by an engine before TimerStarted v2 and error details, on another
        # machine (other paths in the traceback).
        if isinstance(event, TimerStarted):
            return replace(event, name=None)
        if isinstance(event, WorkflowFailed):
            return replace(event, error=replace(event.error, details=None))
        return event

    def elsewhere(event: object) -> object:
        if isinstance(event, WorkflowFailed):
            details = json.loads(event.error.details or "{}")
            details["traceback"] = details["traceback"].replace("/", "\\")
            return replace(event, error=replace(event.error, details=json.dumps(details)))
        return event

    assert replay([older(e) for e in history], env.registry).identical  # type: ignore[misc]
    assert replay([elsewhere(e) for e in history], env.registry).identical  # type: ignore[misc]
    # A different name is a difference.
    renamed = [replace(e, name="other") if isinstance(e, TimerStarted) else e for e in history]
    assert not replay(renamed, env.registry).identical
