"""Telemetry on the real broker: one trace per instance with a span per step attempt,
the trace context in Kafka headers, and the metrics, read from the SDK's in-memory
exporters installed in this process before the runtime starts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from opentelemetry.trace import SpanKind, StatusCode

import replayflow as rf
from replayflow import codec
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import CompleteStep, FailStep, StartWorkflow, Task
from replayflow.kafka.config import consumer_config
from replayflow.kafka.reading import watermarks
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.telemetry import (
    TRACEPARENT,
    instance_trace_id,
    instance_traceparent,
    parse_traceparent,
    root_span_id,
)
from replayflow.telemetry.testing import InMemoryTelemetry
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.workloads import wait_until

pytestmark = pytest.mark.kafka

_failed_once: set[str] = set()


@rf.step
def add_one(n: int) -> int:
    return n + 1


@rf.step(retry=rf.Retry(limit=3, delay="50ms", jitter=False))
async def flaky(n: int) -> int:
    key = rf.current_step().idempotency_key
    if key not in _failed_once:
        _failed_once.add(key)
        raise ConnectionError("the first attempt always fails")
    return n * 10


@rf.workflow(name="otel-steps")
async def otel_steps(ctx: rf.Context, n: int) -> int:
    m = await ctx.step("add", add_one, n)
    return await ctx.step("flaky", flaky, m)


@rf.workflow(name="otel-waits")
async def otel_waits(ctx: rf.Context, n: int) -> int:
    got = await ctx.wait_for_event("go", timeout="5m")
    return await ctx.step("add", add_one, got)


@pytest.fixture
def otel() -> Iterator[InMemoryTelemetry]:
    with InMemoryTelemetry() as installed:
        yield installed


def headers_by_instance(settings: Settings, topic: str) -> list[tuple[Any, dict[str, bytes]]]:
    """(decoded record, headers) of every committed record of a topic."""
    consumer = Consumer(
        consumer_config(settings, None, **{"group.id": f"otel-test-{uuid.uuid4().hex}"})
    )
    try:
        partitions = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = {p: watermarks(consumer, topic, p)[1] for p in range(partitions)}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        out: list[tuple[Any, dict[str, bytes]]] = []
        deadline = time.monotonic() + 20
        idle = 0
        while time.monotonic() < deadline and idle < 3:
            batch = consumer.consume(500, timeout=0.3)
            idle = 0 if batch else idle + 1
            for message in batch:
                if message.error() is None:
                    out.append(
                        (
                            codec.decode(message.value() or b""),
                            {k: v for k, v in (message.headers() or []) if v is not None},
                        )
                    )
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            if all(tp.offset >= ends[tp.partition] for tp in positions):
                break
        return out
    finally:
        consumer.close()


def points(otel: InMemoryTelemetry, name: str) -> list[Any]:
    return otel.metrics().get(name, [])


def test_one_trace_per_instance_and_metrics(
    settings: Settings, tmp_path: Path, otel: InMemoryTelemetry
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path),
        Registry.of(add_one, flaky, otel_steps, otel_waits),
        orchestrator_id="otel-test",
    )
    assert runtime.orchestrator.telemetry.lag is not None
    assert runtime.worker.telemetry.lag is not None
    runtime.orchestrator.telemetry.lag.interval = 0.2
    runtime.worker.telemetry.lag.interval = 0.2
    caller = otel.tracer_provider.get_tracer("the-caller")
    with runtime, Client(settings) as client:
        with caller.start_as_current_span("http request"):
            first = client.start("otel-steps", 1, id=f"steps-{uuid.uuid4().hex[:8]}")
        second = client.start("otel-steps", 5, id=f"steps-{uuid.uuid4().hex[:8]}")
        waiting = client.start("otel-waits", 0, id=f"waits-{uuid.uuid4().hex[:8]}")
        assert first.result(timeout=30) == 20
        assert second.result(timeout=30) == 60

        # The waiting instance shows in the gauge while it waits for its event.
        def waiting_gauge() -> bool:
            found = {
                (p.attributes["status"], p.attributes["partition"]): p.value
                for p in points(otel, "replayflow.instances")
            }
            return sum(v for (s, _), v in found.items() if s == "WAITING") == 1

        wait_until(waiting_gauge, 20, "one waiting instance in replayflow.instances")
        client.send_event(waiting.id, "go", 41)
        assert waiting.result(timeout=30) == 42

        def lag_of_both() -> list[Any] | None:
            # Each sampler reports once it has consumed; a fast run can end before the
            # worker's first report after its first task.
            found = points(otel, "replayflow.consumer.lag")
            return found if len({p.attributes["consumer.group"] for p in found}) == 2 else None

        lag = wait_until(lag_of_both, 20, "consumer lag points of both groups")

        def gauge_by_status() -> dict[str, float] | None:
            found: dict[str, float] = {}
            for p in points(otel, "replayflow.instances"):
                status = p.attributes["status"]
                found[status] = found.get(status, 0) + p.value
            return found if found and not any(found.values()) else None

        gauge = wait_until(gauge_by_status, 10, "no instance left in the gauge")
    assert not runtime.errors, runtime.errors

    # -- traces ----------------------------------------------------------------------
    for handle in (first, second):
        trace_id = instance_trace_id(handle.id)
        steps = sorted(
            (s for s in otel.spans("step ") if s.attributes["replayflow.instance_id"] == handle.id),
            key=lambda s: (s.start_time, s.attributes["replayflow.attempt"]),
        )
        assert [(s.name, s.attributes["replayflow.attempt"]) for s in steps] == [
            ("step add", 1),
            ("step flaky", 1),
            ("step flaky", 2),
        ]
        assert {s.context.trace_id for s in steps} == {trace_id}, "one trace per instance"
        assert {s.parent.span_id for s in steps} == {root_span_id(handle.id)}
        assert all(s.kind is SpanKind.CONSUMER for s in steps)
        add, failed, retried = steps
        assert add.attributes["replayflow.function"] == "add_one"
        assert add.attributes["replayflow.workflow"] == "otel-steps"
        assert add.attributes["replayflow.step"] == "add"
        assert add.attributes["replayflow.idempotency_key"] == f"{handle.id}/add"
        assert add.attributes["replayflow.outcome"] == "COMPLETED"
        assert failed.attributes["replayflow.outcome"] == "FAILED"
        assert failed.attributes["error.type"] == "ConnectionError"
        assert failed.status.status_code is StatusCode.ERROR
        assert retried.attributes["replayflow.outcome"] == "COMPLETED"
        assert (
            failed.attributes["replayflow.idempotency_key"]
            == retried.attributes["replayflow.idempotency_key"]
        )

        roots = [
            s
            for s in otel.spans("workflow otel-steps")
            if s.attributes["replayflow.instance_id"] == handle.id
        ]
        assert len(roots) == 1
        root = roots[0]
        assert (root.context.trace_id, root.context.span_id) == (trace_id, root_span_id(handle.id))
        assert root.parent is None
        runs = [
            s
            for s in otel.spans("run otel-steps")
            if s.attributes["replayflow.instance_id"] == handle.id
        ]
        assert len(runs) == 1 and runs[0].context.trace_id == trace_id
        assert runs[0].parent.span_id == root.context.span_id
        assert runs[0].attributes["replayflow.status"] == "COMPLETED"
        assert (
            runs[0].start_time
            <= steps[0].start_time
            <= steps[-1].end_time
            <= runs[0].end_time + 1_000_000
        )

    # The caller's span got a "start" child linked to the instance's trace.
    starts = otel.spans("start otel-steps")
    assert len(starts) == 1 and starts[0].kind is SpanKind.PRODUCER
    caller_span = otel.spans("http request")[0]
    assert starts[0].parent.span_id == caller_span.context.span_id
    assert [link.context.trace_id for link in starts[0].links] == [instance_trace_id(first.id)]

    # -- headers on the topics -------------------------------------------------------
    topics = Topics(settings)
    for record, headers in headers_by_instance(settings, topics.tasks):
        assert isinstance(record, Task)
        assert headers[TRACEPARENT] == instance_traceparent(record.instance_id).encode()
    results = [
        (r, h)
        for r, h in headers_by_instance(settings, topics.commands)
        if isinstance(r, CompleteStep | FailStep)
    ]
    assert len(results) == 7
    for record, headers in results:
        parsed = parse_traceparent(headers[TRACEPARENT])
        assert parsed is not None and parsed[0] == instance_trace_id(record.instance_id)
    start_headers = [
        h
        for r, h in headers_by_instance(settings, topics.commands)
        if isinstance(r, StartWorkflow) and r.instance_id == first.id
    ]
    assert parse_traceparent(start_headers[0][TRACEPARENT])[1] == starts[0].context.span_id  # type: ignore[index]

    # -- metrics ---------------------------------------------------------------------
    def total(name: str, **attrs: str) -> float:
        return sum(
            p.value
            for p in points(otel, name)
            if all(p.attributes.get(k) == v for k, v in attrs.items())
        )

    assert total("replayflow.workflows.started", workflow="otel-steps") == 2
    assert total("replayflow.workflows.started", workflow="otel-waits") == 1
    assert total("replayflow.workflows.completed", workflow="otel-steps", status="COMPLETED") == 2
    assert total("replayflow.step.retries", workflow="otel-steps", function="flaky") == 2
    durations: dict[tuple[str, str], int] = {}
    for p in points(otel, "replayflow.step.duration"):
        key = (p.attributes["function"], p.attributes["outcome"])
        durations[key] = durations.get(key, 0) + p.count
    assert durations == {
        ("add_one", "COMPLETED"): 3,
        ("flaky", "FAILED"): 2,
        ("flaky", "COMPLETED"): 2,
    }
    latency = points(otel, "replayflow.step.schedule_to_start")
    assert sum(p.count for p in latency) == 7
    assert all(p.min >= 0 and p.max < 30 for p in latency)
    assert set(gauge) == {"RUNNING", "WAITING", "QUEUED", "SUSPENDED"}
    assert points(otel, "replayflow.instances") == [], "no partitions after the stop"
    groups = {p.attributes["consumer.group"] for p in lag}
    assert groups == {
        f"{settings.namespace}.replayflow.orchestrator",
        f"{settings.namespace}.replayflow.worker",
    }
    assert all(p.value >= 0 for p in lag)


def test_instance_gauge_counts_the_store_after_a_restart(
    settings: Settings, tmp_path: Path, otel: InMemoryTelemetry
) -> None:
    """A restarted orchestrator counts its partitions' instances from RocksDB."""
    apply_topics(settings.bootstrap, load_topics(settings))
    registry = Registry.of(add_one, otel_waits)
    config = settings.replace(data_dir=tmp_path)

    def by_status() -> dict[str, float]:
        found: dict[str, float] = {}
        for p in points(otel, "replayflow.instances"):
            status = p.attributes["status"].lower()  # labelled in upper case
            found[status] = found.get(status, 0) + p.value
        return found

    ids = [f"waits-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    with LocalRuntime(config, registry, orchestrator_id="otel-gauge"), Client(settings) as client:
        for instance_id in ids:
            client.start("otel-waits", 0, id=instance_id)
        wait_until(lambda: by_status().get("waiting") == 3, 20, "three waiting instances")
    assert by_status() == {}

    with LocalRuntime(config, registry, orchestrator_id="otel-gauge"), Client(settings) as client:
        # Counted from the store on assignment, before any command about them.
        wait_until(lambda: by_status().get("waiting") == 3, 20, "the count after restart")
        client.send_event(ids[0], "go", 1)
        assert client.result(ids[0], timeout=30) == 2
        wait_until(
            lambda: by_status() == {"running": 0, "waiting": 2, "queued": 0, "suspended": 0},
            10,
            "two still waiting",
        )
