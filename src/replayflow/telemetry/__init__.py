"""OpenTelemetry for replayflow: traces, metrics and structured logs.

Traces: one trace per workflow instance, its id derived from the instance id (ids.py
says why). The orchestrator emits the instance's root span ("workflow <name>") when
the start commits and a "run <name>" span over its whole life when it ends; every
task it produces carries the root as W3C `traceparent` header; the worker runs each
attempt in a "step <step>" span under it and passes its context on in the
CompleteStep / FailStep headers. A client that starts a workflow inside a span emits
a "start <name>" producer span there, linked to the instance's root span, and sends
its context in the StartWorkflow headers.

Metrics (instrumentation scope "replayflow"):

    replayflow.workflows.started        counter    workflow
    replayflow.workflows.completed      counter    workflow, status
    replayflow.step.retries             counter    workflow, function
    replayflow.step.duration            histogram  workflow, function, outcome   (s)
    replayflow.step.schedule_to_start   histogram  workflow, function            (s)
    replayflow.instances                gauge      status, partition
    replayflow.consumer.lag             gauge      consumer.group, topic, partition
                                                   (+ trigger, for a Kafka topic trigger)
    replayflow.trigger.records          counter    trigger, outcome

Statuses and outcomes are upper case everywhere (COMPLETED, FAILED, RUNNING, WAITING,
QUEUED, SUSPENDED), as the engine names them. In Prometheus the counters end in
_total (replayflow_step_retries_total) and carry no otel_scope_* labels unless
REPLAYFLOW_PROMETHEUS_SCOPE_LABELS=1.

Logs: REPLAYFLOW_LOG_FORMAT=json makes them JSON lines with instance_id, step, attempt
(see logs.py). Setup from the environment: setup.py.
"""

from __future__ import annotations

from opentelemetry import propagate
from opentelemetry import trace as trace_api
from opentelemetry.trace import Link, SpanKind

from replayflow.telemetry.ids import (
    TRACEPARENT,
    KafkaHeaders,
    carrier_to_headers,
    format_traceparent,
    instance_trace_id,
    instance_traceparent,
    parse_traceparent,
    root_span_id,
)
from replayflow.telemetry.logs import JsonFormatter, configure_logging, fields
from replayflow.telemetry.orchestrator import OrchestratorTelemetry
from replayflow.telemetry.setup import Telemetry, current, install, reset, setup_from_env
from replayflow.telemetry.spans import instance_root
from replayflow.telemetry.trigger import TriggerTelemetry
from replayflow.telemetry.worker import WorkerTelemetry


def for_orchestrator(group: str) -> OrchestratorTelemetry:
    return OrchestratorTelemetry(setup_from_env(), group)


def for_worker(group: str) -> WorkerTelemetry:
    return WorkerTelemetry(setup_from_env(), group)


def for_trigger(group: str, trigger: str) -> TriggerTelemetry:
    return TriggerTelemetry(setup_from_env(), group, trigger)


def start_headers(workflow: str, instance_id: str) -> KafkaHeaders | None:
    """Headers for a StartWorkflow sent inside an active span: a "start <workflow>"
    producer span there, linked to the instance's trace, and its context. None (no
    headers, no cost) when there is no active span."""
    if not trace_api.get_current_span().get_span_context().is_valid:
        return None
    telemetry = current()
    if not telemetry.tracing:
        return None
    with telemetry.tracer.start_as_current_span(
        f"start {workflow}",
        kind=SpanKind.PRODUCER,
        links=[Link(instance_root(instance_id))],
        attributes={
            "replayflow.instance_id": instance_id,
            "replayflow.workflow": workflow,
            "replayflow.trace_id": f"{instance_trace_id(instance_id):032x}",
        },
    ):
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    return carrier_to_headers(carrier)


__all__ = [
    "TRACEPARENT",
    "JsonFormatter",
    "KafkaHeaders",
    "OrchestratorTelemetry",
    "Telemetry",
    "TriggerTelemetry",
    "WorkerTelemetry",
    "configure_logging",
    "current",
    "fields",
    "for_orchestrator",
    "for_trigger",
    "for_worker",
    "format_traceparent",
    "install",
    "instance_trace_id",
    "instance_traceparent",
    "parse_traceparent",
    "reset",
    "root_span_id",
    "setup_from_env",
    "start_headers",
]
