"""The orchestrator's telemetry: counters and spans from committed decisions, instance
gauges per partition, task trace headers, and consumer lag.

Everything is taken from decisions *after* their transaction committed (an aborted
batch is folded again and must not count twice), in the orchestrator's thread.

Instance gauges: each partition keeps counts by status (running, waiting, queued,
suspended), changed by the transitions its decisions make. A partition newly assigned
(a restart, a rebalance) starts by counting what its RocksDB store holds, a few
milliseconds per loop iteration so a large store does not stall the fold; a
decision about an instance the count has not reached yet is left to the count (it
will read the instance's committed state), so the result is exact. The gauge reports
a partition once its count is done, and stops reporting it when it is revoked.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from replayflow.core.decision import Decision
from replayflow.core.messages import StepFailed, WorkflowStarted
from replayflow.core.state import CallKind, CallStatus, InstanceState
from replayflow.core.state import Status as InstanceStatus
from replayflow.store import keys, serde
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

STATUSES = ("running", "waiting", "queued", "suspended")
_PENDING_STEP = 1
_PENDING_WAIT = 2
_INSTANCES = b"i/"
_INSTANCES_END = b"i0"  # the first key after every "i/..." key
SCAN_BUDGET = 0.003  # seconds of counting per loop iteration, over all partitions


def classify(state: InstanceState | None) -> str | None:
    """The gauge status of an instance; None when it is not counted (absent, final)."""
    if state is None:
        return None
    status = state.info.status
    if status is InstanceStatus.RUNNING:
        waiting = False
        for call in reversed(state.calls):
            s = call.status
            if s is CallStatus.SCHEDULED or s is CallStatus.BACKOFF:
                return "running"
            if s is CallStatus.WAITING:
                waiting = True
        return "waiting" if waiting else "running"
    if status is InstanceStatus.QUEUED:
        return "queued"
    if status is InstanceStatus.SUSPENDED:
        return "suspended"
    return None


def _raw_status(raw: bytes) -> str | None:
    # The store writes compact JSON; the first '"st":"' is the top-level key because
    # quotes inside string values are escaped. Anything else: parse properly.
    at = raw.find(b'"st":"')
    if at < 0:
        return None
    end = raw.find(b'"', at + 6)
    return raw[at + 6 : end].decode() if end > 0 else None


def _classify_raw(info: bytes, flags: int) -> str | None:
    status = _raw_status(info) or serde.load_info(info, "null").status.value
    if status == InstanceStatus.RUNNING:
        if flags & _PENDING_STEP or not flags & _PENDING_WAIT:
            return "running"
        return "waiting"
    if status == InstanceStatus.QUEUED:
        return "queued"
    if status == InstanceStatus.SUSPENDED:
        return "suspended"
    return None


def _call_flags(raw: bytes) -> int:
    status = _raw_status(raw) or serde.load_call(raw).status.value
    if status in (CallStatus.SCHEDULED, CallStatus.BACKOFF):
        return _PENDING_STEP
    if status == CallStatus.WAITING:
        return _PENDING_WAIT
    return 0


class PartitionObserver:
    """Hooked into one PartitionFolder: `decided` while folding, `committed` /
    `aborted` when the batch ends."""

    def __init__(self, telemetry: Telemetry, partition: int, store: Any) -> None:
        self.telemetry = telemetry
        self.partition = partition
        self.counts = dict.fromkeys(STATUSES, 0)
        self.scanned = not telemetry.metrics
        self._store = store
        self._cursor = b""
        self._batch: list[tuple[InstanceState | None, Decision]] = []
        self._gauge = telemetry.add_gauge("instances", self._observe) if telemetry.metrics else None

    # -- the fold's hooks ------------------------------------------------------------

    def decided(self, before: InstanceState | None, decision: Decision) -> None:
        self._batch.append((before, decision))

    def aborted(self) -> None:
        self._batch.clear()

    def committed(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        t = self.telemetry
        now_ns = time.time_ns()
        for before, decision in batch:
            state = decision.state
            if state is None:
                continue
            info = state.info
            if t.metrics:
                self._count(before, state)
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

    def _count(self, before: InstanceState | None, state: InstanceState) -> None:
        if not self.scanned and keys.info(state.info.instance_id) > self._cursor:
            return  # the count has not reached it: it will read the committed state
        old, new = classify(before), classify(state)
        if old != new:
            if old is not None:
                self.counts[old] -= 1
            if new is not None:
                self.counts[new] += 1

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

    # -- counting the store on assignment --------------------------------------------

    def scan(self, budget: float) -> None:
        """Count up to `budget` seconds more of the store; ends at an instance edge."""
        if self.scanned:
            return
        deadline = time.perf_counter() + budget
        pending: dict[bytes, int] = {}
        start = self._cursor + b"\0" if self._cursor else _INSTANCES
        rows = self._store.scan(start, end=_INSTANCES_END)
        n = 0
        try:
            for key, value in rows:
                if key.endswith(b"\0info"):
                    found = _classify_raw(value, pending.pop(key[2:-5], 0))
                    if found is not None:
                        self.counts[found] += 1
                elif key[-11:-8] == b"\0c/":
                    flags = _call_flags(value)
                    if flags:
                        instance = key[2:-11]
                        pending[instance] = pending.get(instance, 0) | flags
                self._cursor = key
                n += 1
                if not pending and n % 32 == 0 and time.perf_counter() > deadline:
                    return
            self.scanned = True
        finally:
            rows.close()

    def _observe(self) -> list[tuple[float, dict[str, Any]]]:
        if not self.scanned:
            return []
        return [
            (value, {"status": status, "partition": self.partition})
            for status, value in dict(self.counts).items()
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

    def partition(self, partition: int, store: Any) -> PartitionObserver | NullObserver:
        """The observer for a newly assigned partition (call before its first fold)."""
        if not self.enabled:
            return NULL_OBSERVER
        self.revoked(partition)
        observer = PartitionObserver(self.telemetry, partition, store)
        self.observers[partition] = observer
        observer.scan(SCAN_BUDGET)
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
        """Once per loop iteration: sample lag, count a little more of new partitions."""
        if self.lag is not None:
            self.lag.sample(consumer)
            deadline = time.perf_counter() + SCAN_BUDGET
            for observer in list(self.observers.values()):
                if not observer.scanned:
                    observer.scan(max(0.0, deadline - time.perf_counter()))

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
