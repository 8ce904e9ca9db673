"""The worker's telemetry: a span per step attempt, step duration and schedule-to-start
latency, a log line per failed attempt, and consumer lag."""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import Any

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode

from replayflow.core.clip import MAX_ECHO, clip
from replayflow.core.messages import CompleteStep, FailStep, Task
from replayflow.telemetry.ids import Headers, KafkaHeaders, carrier_to_headers
from replayflow.telemetry.lag import LagSampler
from replayflow.telemetry.logs import fields
from replayflow.telemetry.setup import Telemetry
from replayflow.telemetry.spans import task_parent

log = logging.getLogger("replayflow.worker")


class StepAttempt:
    """`with telemetry.step(task, headers) as attempt:` around running one attempt;
    `attempt.finish(outcome)` inside; then `attempt.headers` go on the result."""

    __slots__ = ("_scope", "_span", "_start", "_telemetry", "headers", "outcome", "task")

    def __init__(self, telemetry: Telemetry, task: Task, headers: Headers | None) -> None:
        self._telemetry = telemetry
        self.task = task
        self.headers: KafkaHeaders | None = None
        self.outcome: CompleteStep | FailStep | None = None
        self._span: Any = None
        self._scope: Any = None
        self._start = 0.0
        if telemetry.tracing:
            self._scope = telemetry.tracer.start_as_current_span(
                f"step {task.step}",
                context=task_parent(task.instance_id, headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "replayflow.instance_id": task.instance_id,
                    "replayflow.workflow": task.workflow,
                    "replayflow.step": task.step,
                    "replayflow.function": task.function,
                    "replayflow.attempt": task.attempt,
                    "replayflow.idempotency_key": task.idempotency_key,
                },
            )

    def __enter__(self) -> StepAttempt:
        task = self.task
        t = self._telemetry
        if t.metrics:
            waited = max(0.0, time.time() - task.scheduled_at / 1000)
            t.schedule_to_start.record(
                waited, {"workflow": task.workflow, "function": task.function}
            )
        if self._scope is not None:
            self._span = self._scope.__enter__()
        self._start = time.perf_counter()
        return self

    def finish(self, outcome: CompleteStep | FailStep) -> None:
        self.outcome = outcome
        span = self._span
        if span is None:
            return
        if isinstance(outcome, FailStep):
            span.set_attribute("replayflow.outcome", "failed")
            span.set_attribute("error.type", outcome.error.type)
            span.set_attribute("replayflow.retryable", outcome.error.retryable)
            span.set_status(Status(StatusCode.ERROR, outcome.error.message[:500]))
        else:
            span.set_attribute("replayflow.outcome", "completed")
        carrier: dict[str, str] = {}
        propagate.inject(carrier)  # the step span is current here
        self.headers = carrier_to_headers(carrier)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = time.perf_counter() - self._start
        task, outcome = self.task, self.outcome
        if outcome is None:
            label = "cancelled" if exc_type is not None else "unknown"
        else:
            label = "completed" if isinstance(outcome, CompleteStep) else "failed"
        if self._telemetry.metrics:
            self._telemetry.step_duration.record(
                elapsed, {"workflow": task.workflow, "function": task.function, "outcome": label}
            )
        if isinstance(outcome, FailStep) and log.isEnabledFor(logging.INFO):
            log.info(
                "step %s attempt %d failed after %.3f s: %s: %s",
                task.step,
                task.attempt,
                elapsed,
                clip(outcome.error.type, MAX_ECHO),
                clip(outcome.error.message),
                extra=fields(
                    task.instance_id,
                    workflow=task.workflow,
                    step=task.step,
                    attempt=task.attempt,
                    function=task.function,
                ),
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug(
                "step %s attempt %d %s in %.3f s",
                task.step,
                task.attempt,
                label,
                elapsed,
                extra=fields(
                    task.instance_id,
                    workflow=task.workflow,
                    step=task.step,
                    attempt=task.attempt,
                    function=task.function,
                ),
            )
        if self._scope is not None:
            self._scope.__exit__(exc_type, exc, tb)


class WorkerTelemetry:
    def __init__(self, telemetry: Telemetry, group: str) -> None:
        self.telemetry = telemetry
        self.lag = LagSampler(telemetry, group) if telemetry.metrics else None

    def step(self, task: Task, headers: Headers | None) -> StepAttempt:
        return StepAttempt(self.telemetry, task, headers)

    def tick(self, consumer: Any) -> None:
        if self.lag is not None:
            self.lag.sample(consumer)

    def close(self) -> None:
        if self.lag is not None:
            self.lag.close()
