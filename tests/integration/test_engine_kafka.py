"""The engine end to end on the real broker: an orchestrator and a worker in this process
(LocalRuntime), the Python client, and one topic namespace per test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import replayflow as rf
from replayflow import codec
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    CancelRequested,
    Completion,
    EventAwaited,
    EventReceived,
    StartWorkflow,
    StepCompleted,
    StepFailed,
    StepScheduled,
    TimerFired,
    TimerStarted,
    WorkflowCancelled,
    WorkflowCompleted,
    WorkflowFailed,
    WorkflowStarted,
)
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.workloads import produce_located, read_topic, wait_folded, wait_until

pytestmark = pytest.mark.kafka

# ---------------------------------------------------------------------------------------
# Workflows


@rf.step(retry=rf.Retry(limit=5, delay="100ms", backoff="constant", jitter=False))
def flaky(succeed_on: int) -> str:
    attempt = rf.current_step().attempt
    if attempt < succeed_on:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"ok on {attempt}"


@rf.workflow(name="retrying")
async def retrying(ctx: rf.Context, succeed_on: int) -> str:
    return await ctx.step("flaky", flaky, succeed_on)


class PaymentDeclined(rf.NonRetryableError):
    pass


@rf.step(retry=rf.Retry(limit=5, delay="100ms"))
def decline(amount: int) -> None:
    raise PaymentDeclined(f"card declined for {amount}")


@rf.workflow(name="declining")
async def declining(ctx: rf.Context, amount: int) -> None:
    await ctx.step("charge", decline, amount)


@rf.workflow(name="sleeping")
async def sleeping(ctx: rf.Context, seconds: float) -> str:
    await ctx.sleep("nap", seconds)
    return "rested"


@rf.workflow(name="approval")
async def approval(ctx: rf.Context, timeout: float | None) -> dict[str, Any]:
    try:
        decision = await ctx.wait_for_event("approve", timeout=timeout)
    except rf.EventTimeout:
        return {"approved": False, "why": "timeout"}
    return {"approved": decision["ok"], "by": decision["by"]}


@rf.step
async def timed(seconds: float) -> list[float]:
    start = time.time()
    await asyncio.sleep(seconds)
    return [start, time.time()]


@rf.workflow(name="fanout")
async def fanout(ctx: rf.Context, n: int) -> list[list[float]]:
    return await ctx.all([ctx.step(f"part-{i}", timed, 1.0) for i in range(n)])


@rf.step
def cleanup(x: str) -> str:
    return f"cleaned {x}"


@rf.workflow(name="cancellable")
async def cancellable(ctx: rf.Context, x: str) -> str:
    try:
        await ctx.wait_for_event("never")
    except rf.Cancelled:
        await ctx.step("cleanup", cleanup, x)
        raise
    return "not reached"


@rf.step
def echo(x: Any) -> Any:
    return x


@rf.workflow(name="echoing")
async def echoing(ctx: rf.Context, x: Any) -> Any:
    return await ctx.step("echo", echo, x)


@rf.step(timeout="1s", retry=rf.Retry(limit=3, delay="100ms", jitter=False))
async def sometimes_slow(seconds: float) -> str:
    attempt = rf.current_step().attempt
    if attempt == 1:
        await asyncio.sleep(seconds)
    return f"done on attempt {attempt}"


@rf.workflow(name="timing-out")
async def timing_out(ctx: rf.Context, seconds: float) -> str:
    return await ctx.step("slow", sometimes_slow, seconds)


REGISTRY = Registry.of(
    flaky,
    retrying,
    decline,
    declining,
    sleeping,
    approval,
    timed,
    fanout,
    cleanup,
    cancellable,
    echo,
    echoing,
    sometimes_slow,
    timing_out,
)

# ---------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[tuple[LocalRuntime, Client]]:
    apply_topics(settings.bootstrap, load_topics(settings))
    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path), REGISTRY, orchestrator_id="engine-test"
    )
    with runtime, Client(settings) as client:
        yield runtime, client
    assert not runtime.errors, runtime.errors


def of_type(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


# ---------------------------------------------------------------------------------------
# Tests


def test_retries_then_success(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    handle = client.start("retrying", 3)
    assert handle.result(timeout=30) == "ok on 3"

    events = client.history(handle.id, wait_final=10)
    failed = of_type(events, StepFailed)
    assert [f.attempt for f in failed] == [1, 2]
    assert all(f.error.type == "ConnectionError" and f.error.retryable for f in failed)
    assert all(f.retry_at is not None for f in failed)
    scheduled = of_type(events, StepScheduled)
    assert [s.attempt for s in scheduled] == [1, 2, 3]
    # Each retry is scheduled by its backoff timer, not before.
    for fail, retry in zip(failed, scheduled[1:], strict=True):
        assert retry.at >= fail.retry_at
    completed = of_type(events, StepCompleted)
    assert [c.attempt for c in completed] == [3]
    assert isinstance(events[-1], WorkflowCompleted)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_non_retryable_failure(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    handle = client.start("declining", 42)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result(timeout=30)
    assert caught.value.status == "FAILED"
    assert caught.value.error is not None
    assert caught.value.error.type == "StepFailed"
    assert "PaymentDeclined" in caught.value.error.message

    events = client.history(handle.id, wait_final=10)
    failed = of_type(events, StepFailed)
    assert len(failed) == 1, "a non-retryable error must not be retried"
    assert failed[0].error.type == "PaymentDeclined"
    assert failed[0].error.retryable is False
    assert failed[0].retry_at is None
    assert "card declined for 42" in failed[0].error.message
    assert len(of_type(events, StepScheduled)) == 1
    final = events[-1]
    assert isinstance(final, WorkflowFailed)
    assert final.error.type == "StepFailed"


def test_sleep(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    started = time.monotonic()
    handle = client.start("sleeping", 1.5)
    assert handle.result(timeout=30) == "rested"
    assert time.monotonic() - started >= 1.4

    events = client.history(handle.id, wait_final=10)
    [timer] = of_type(events, TimerStarted)
    [fired] = of_type(events, TimerFired)
    assert fired.timer == timer.timer
    assert timer.due - of_type(events, WorkflowStarted)[0].at == 1500
    assert fired.at >= timer.due


def test_wait_for_event_delivered(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    handle = client.start("approval", 60)
    wait_until(
        lambda: of_type(client.history(handle.id), EventAwaited),
        30,
        "the workflow to wait for its event",
    )
    client.send_event(handle.id, "approve", {"ok": True, "by": "alice"})
    assert handle.result(timeout=30) == {"approved": True, "by": "alice"}
    events = client.history(handle.id, wait_final=10)
    [received] = of_type(events, EventReceived)
    assert received.name == "approve"
    assert not of_type(events, TimerFired), "the event's timeout timer must be cancelled"


def test_wait_for_event_timed_out(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    started = time.monotonic()
    handle = client.start("approval", 1)
    assert handle.result(timeout=30) == {"approved": False, "why": "timeout"}
    assert time.monotonic() - started >= 0.9
    events = client.history(handle.id, wait_final=10)
    [awaited] = of_type(events, EventAwaited)
    [fired] = of_type(events, TimerFired)
    assert awaited.deadline is not None and fired.at >= awaited.deadline
    assert not of_type(events, EventReceived)
    # An event after the end changes nothing.
    client.send_event(handle.id, "approve", {"ok": True, "by": "late"})
    assert client.result(handle.id, timeout=5) == {"approved": False, "why": "timeout"}


def test_parallel_steps(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    n = 5
    started = time.monotonic()
    handle = client.start("fanout", n)
    spans = handle.result(timeout=30)
    elapsed = time.monotonic() - started
    assert len(spans) == n
    # Every step ran at the same time as every other: the latest start comes before the
    # earliest end.
    assert max(s for s, _ in spans) < min(e for _, e in spans)
    assert elapsed < n * 1.0
    events = client.history(handle.id, wait_final=10)
    scheduled = of_type(events, StepScheduled)
    assert sorted(s.step for s in scheduled) == [f"part-{i}" for i in range(n)]
    # All five were scheduled by one decision, before any completed.
    first_completion = min(e.seq for e in of_type(events, StepCompleted))
    assert max(s.seq for s in scheduled) < first_completion


def test_cancel(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    handle = client.start("cancellable", "order-7")
    wait_until(
        lambda: of_type(client.history(handle.id), EventAwaited),
        30,
        "the workflow to wait for its event",
    )
    client.cancel(handle.id, reason="customer changed their mind")
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result(timeout=30)
    assert caught.value.status == "CANCELLED"

    events = client.history(handle.id, wait_final=10)
    [requested] = of_type(events, CancelRequested)
    assert requested.reason == "customer changed their mind"
    [cleaned] = of_type(events, StepCompleted)
    assert cleaned.step == "cleanup" and cleaned.result == '"cleaned order-7"'
    final = events[-1]
    assert isinstance(final, WorkflowCancelled)
    assert final.reason == "customer changed their mind"
    assert requested.seq < cleaned.seq < final.seq


def test_duplicate_start(engine: tuple[LocalRuntime, Client], settings: Settings) -> None:
    _, client = engine
    instance = "order-dup-1"
    first = client.start("echoing", {"v": 1}, id=instance)
    second = client.start("echoing", {"v": 2}, id=instance)  # while the first may run
    assert first.result(timeout=30) == {"v": 1}
    assert second.result(timeout=30) == {"v": 1}

    # A third start after the end: produced by hand to know its offset, then wait until
    # the orchestrator has folded past it.
    located = produce_located(
        settings,
        [
            (
                instance.encode(),
                codec.encode(
                    StartWorkflow(instance_id=instance, workflow="echoing", input='{"v": 3}')
                ),
            )
        ],
    )
    wait_folded(settings, located)
    assert client.result(instance, timeout=5) == {"v": 1}

    events = client.history(instance)
    assert len(of_type(events, WorkflowStarted)) == 1
    assert of_type(events, WorkflowStarted)[0].input.replace(" ", "") == '{"v":1}'
    assert len(of_type(events, WorkflowCompleted)) == 1
    completions = [
        r for r in read_topic(settings, Topics(settings).completions) if r.key == instance.encode()
    ]
    assert len(completions) == 1, completions
    completion = completions[0].decoded()
    assert isinstance(completion, Completion) and completion.status == "COMPLETED"


def test_step_timeout_then_retry(engine: tuple[LocalRuntime, Client]) -> None:
    _, client = engine
    started = time.monotonic()
    handle = client.start("timing-out", 10.0)
    assert handle.result(timeout=30) == "done on attempt 2"
    assert time.monotonic() - started < 8, "the slow first attempt was waited for"

    events = client.history(handle.id, wait_final=10)
    failed = of_type(events, StepFailed)
    assert len(failed) == 1, failed  # the worker's report and the timer: one is kept
    assert failed[0].attempt == 1
    assert failed[0].error.type == "StepTimeout"
    assert failed[0].retry_at is not None
    assert [s.attempt for s in of_type(events, StepScheduled)] == [1, 2]
    assert all(s.timeout_ms == 1000 for s in of_type(events, StepScheduled))
    [done] = of_type(events, StepCompleted)
    assert done.attempt == 2
