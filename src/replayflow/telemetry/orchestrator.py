"""The orchestrator's telemetry: counters and spans from committed decisions, instance
gauges per partition, task trace headers, and consumer lag.

Everything is taken from decisions *after* their transaction committed (an aborted
batch is folded again and must not count twice), in the orchestrator's thread.

Instance gauges: each partition's fold keeps counts by status (running, waiting,
queued, suspended) in its store, written with the states they count (store/counts.py),
so they are exact from the moment a partition is assigned, after a restart or a crash
alike. The gauge reads a partition's committed counts while it is assigned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from replayflow.core.decision import Decision
from replayflow.core.messages import StepFailed, WorkflowStarted
from replayflow.core.state import CallKind, InstanceState
from replayflow.store.counts import STATUSES, classify
from replayflow.telemetry.ids import (
    TRACEPARENT,
    KafkaHeaders,
    format_traceparent,
    instance_trace_id,
    root_span_id,
)
from replayflow.telemetry.lag import LagSampler
from replayflow.telemetry.setup import Telemetry
from replayflow.telemetry.spans import forced_ids, instance_root

log = logging.getLogger("replayflow.orchestrator")

__all__ = ["STATUSES", "OrchestratorTelemetry", "PartitionObserver", "classify"]

StatusCounts = Callable[[], Mapping[str, int]]


class PartitionObserver:
    """Hooked into one PartitionFolder: `decided` while folding, `committed` /
    `aborted` when the batch ends."""

    def __init__(self, telemetry: Telemetry, partition: int, counts: StatusCounts) -> None:
        self.telemetry = telemetry
        self.partition = partition
        self._counts = counts
        self._batch: list[Decision] = []
        self._gauge = telemetry.add_gauge("instances", self._observe) if telemetry.metrics else None

    # -- the fold's hooks ------------------------------------------------------------

    def decided(self, before: InstanceState | None, decision: Decision) -> None:
        self._batch.append(decision)

    def aborted(self) -> None:
        self._batch.clear()

    def committed(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        t = self.telemetry
        now_ns = time.time_ns()
        for decision in batch:
            state = decision.state
            if state is None:
                continue
            info = state.info
            for event in decision.events:
                if isinstance(event, WorkflowStarted):
                    if t.metrics:
                        t.started.add(1, {"workflow": info.workflow})
                    if t.tracing:
                        self._root_span(event, info.version, now_ns)
                elif isinstance(event, StepFailed) and event.retry_at is not None and t.metrics:
                    t.retries.add(
                        1, {"workflow": info.workflow, "function": _function(decision, event.step)}
                    )
            completion = decision.completion
            if completion is not None:
                if t.metrics:
                    t.completed.add(1, {"workflow": info.workflow, "status": completion.status})
                if t.tracing:
                    self._run_span(state, completion.status, completion.at)

    # -- spans -----------------------------------------------------------------------

    def _root_span(self, event: WorkflowStarted, version: str, now_ns: int) -> None:
        """The instance's root span, with the derived ids every task points to."""
        instance_id = event.instance_id
        links = [Link(instance_root(event.parent_id))] if event.parent_id else None
        start_ns = event.at * 1_000_000
        with forced_ids(instance_trace_id(instance_id), root_span_id(instance_id)):
            span = self.telemetry.tracer.start_span(
                f"workflow {event.workflow}",
                context=Context(),
                kind=SpanKind.CONSUMER,
                start_time=start_ns,
                links=links,
                attributes=_drop_none(
                    {
                        "replayflow.instance_id": instance_id,
                        "replayflow.workflow": event.workflow,
                        "replayflow.version": version,
                        "replayflow.parent_id": event.parent_id,
                        "replayflow.parent_step": event.parent_step,
                        "messaging.kafka.partition": self.partition,
                    }
                ),
            )
        span.end(end_time=max(start_ns, now_ns))

    def _run_span(self, state: InstanceState, status: str, ended_at: int) -> None:
        """At the end: a span over the instance's whole life, under its root span."""
        from opentelemetry import trace as trace_api

        info = state.info
        parent = trace_api.set_span_in_context(
            trace_api.NonRecordingSpan(instance_root(info.instance_id))
        )
        span = self.telemetry.tracer.start_span(
            f"run {info.workflow}",
            context=parent,
            start_time=info.started_at * 1_000_000,
            attributes={
                "replayflow.instance_id": info.instance_id,
                "replayflow.workflow": info.workflow,
                "replayflow.version": info.version,
                "replayflow.status": status,
                "replayflow.steps": sum(1 for c in state.calls if c.kind is CallKind.STEP),
            },
        )
        if status != "COMPLETED":
            error = info.error
            span.set_status(Status(StatusCode.ERROR, error.message if error else status))
            if error is not None:
                span.set_attribute("error.type", error.type)
        span.end(end_time=max(ended_at, info.started_at) * 1_000_000)

    # -- the gauge -------------------------------------------------------------------

    def _observe(self) -> list[tuple[float, dict[str, Any]]]:
        counts = self._counts()
        return [
            # Upper case, as the instance statuses everywhere else (the store's counts
            # are keyed in lower case).
            (counts.get(status, 0), {"status": status.upper(), "partition": self.partition})
            for status in STATUSES
        ]

    def close(self) -> None:
        self._batch.clear()
        if self._gauge is not None:
            self.telemetry.remove_gauge("instances", self._gauge)
            self._gauge = None


class FoldObserver(Protocol):
    """What a PartitionFolder calls (fold.py)."""

    def decided(self, before: InstanceState | None, decision: Decision) -> None: ...

    def committed(self) -> None: ...

    def aborted(self) -> None: ...


class NullObserver:
    """The observer of a folder when telemetry is off."""

    def decided(self, before: InstanceState | None, decision: Decision) -> None:
        pass

    def committed(self) -> None:
        pass

    def aborted(self) -> None:
        pass


NULL_OBSERVER = NullObserver()


class OrchestratorTelemetry:
    def __init__(self, telemetry: Telemetry, group: str) -> None:
        self.telemetry = telemetry
        self.enabled = telemetry.tracing or telemetry.metrics
        self.observers: dict[int, PartitionObserver] = {}
        self._traceparents: dict[bytes, bytes] = {}
        self.lag = LagSampler(telemetry, group) if telemetry.metrics else None

    def partition(self, partition: int, counts: StatusCounts) -> PartitionObserver | NullObserver:
        """The observer for a newly assigned partition (call before its first fold);
        `counts` gives the partition's committed status counts."""
        if not self.enabled:
            return NULL_OBSERVER
        self.revoked(partition)
        observer = PartitionObserver(self.telemetry, partition, counts)
        self.observers[partition] = observer
        return observer

    def revoked(self, partition: int) -> None:
        observer = self.observers.pop(partition, None)
        if observer is not None:
            observer.close()

    def task_headers(self, topic: str, key: bytes | None) -> KafkaHeaders | None:
        """Kafka headers for a produced record: a task carries its instance's trace."""
        if topic != "tasks" or key is None or not self.telemetry.tracing:
            return None
        return [(TRACEPARENT, self._traceparent(key))]

    def _traceparent(self, key: bytes) -> bytes:
        # Tasks of one instance follow each other: remember the last few thousand.
        found = self._traceparents.get(key)
        if found is None:
            instance_id = key.decode()
            trace_id = instance_trace_id(instance_id)
            found = format_traceparent(
                trace_id, root_span_id(instance_id), self.telemetry.sampled(trace_id)
            ).encode()
            if len(self._traceparents) >= 16384:
                self._traceparents.clear()
            self._traceparents[key] = found
        return found

    def tick(self, consumer: Any) -> None:
        """Once per loop iteration: sample lag."""
        if self.lag is not None:
            self.lag.sample(consumer)

    def close(self) -> None:
        for partition in list(self.observers):
            self.revoked(partition)
        if self.lag is not None:
            self.lag.close()


def _function(decision: Decision, step: str) -> str:
    state = decision.state
    if state is not None:
        for index in decision.changed_calls:
            call = state.calls[index]
            if call.key == step:
                return call.function
    return ""


def _drop_none(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attrs.items() if v is not None}
