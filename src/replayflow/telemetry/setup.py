"""Providers and instruments.

`setup_from_env()` (called by the orchestrator and worker, idempotent):

- OTEL_EXPORTER_OTLP_ENDPOINT (or the _TRACES_ / _METRICS_ variants): traces and
  metrics over OTLP, by HTTP (http/protobuf, port 4318) or gRPC (port 4317) as
  OTEL_EXPORTER_OTLP_PROTOCOL says (the exporters read the standard OTEL_* variables
  themselves, e.g. headers, OTEL_METRIC_EXPORT_INTERVAL);
- REPLAYFLOW_PROMETHEUS_PORT: a Prometheus scrape endpoint on that port, bound to
  REPLAYFLOW_PROMETHEUS_HOST (default 127.0.0.1), without otel_scope_* labels on every
  series unless REPLAYFLOW_PROMETHEUS_SCOPE_LABELS=1;
- neither: whatever the application installed as the global providers; when that is
  the API's default no-op, tracing and metrics are off and the hooks cost next to
  nothing (no spans, no headers, no counting).

Global providers the application set itself are never replaced. Tests install the
SDK's in-memory exporters with replayflow.telemetry.testing instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics as metrics_api
from opentelemetry import trace as trace_api
from opentelemetry.metrics import CallbackOptions, Observation

log = logging.getLogger("replayflow.telemetry")

SCOPE = "replayflow"
PROMETHEUS_PORT_ENV = "REPLAYFLOW_PROMETHEUS_PORT"
PROMETHEUS_HOST_ENV = "REPLAYFLOW_PROMETHEUS_HOST"
PROMETHEUS_SCOPE_ENV = "REPLAYFLOW_PROMETHEUS_SCOPE_LABELS"
OTLP_PROTOCOLS = ("grpc", "http/protobuf", "http/json")
_OTLP_ENVS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)

# Seconds, from sub-millisecond steps to ten-minute ones.
DURATION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)

Gauge = Callable[[], Iterable[tuple[float, dict[str, Any]]]]


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("replayflow")
    except Exception:
        return "0"


class Telemetry:
    """The tracer and instruments every replayflow hook uses. `tracing` / `metrics` say
    whether a real (SDK) provider is behind them; hooks skip their work when not."""

    def __init__(
        self, tracer_provider: Any | None = None, meter_provider: Any | None = None
    ) -> None:
        tracer_provider = tracer_provider or trace_api.get_tracer_provider()
        meter_provider = meter_provider or metrics_api.get_meter_provider()
        self.tracing = _is_sdk_tracer_provider(tracer_provider)
        self.metrics = _is_sdk_meter_provider(meter_provider)
        self.tracer = tracer_provider.get_tracer(SCOPE, _version())
        if self.tracing:
            from replayflow.telemetry.spans import wrap_id_generator

            wrap_id_generator(self.tracer)
        meter = meter_provider.get_meter(SCOPE, _version())
        self.meter = meter
        self.started = meter.create_counter(
            "replayflow.workflows.started",
            unit="{workflow}",
            description="Workflow instances started (accepted by the orchestrator)",
        )
        self.completed = meter.create_counter(
            "replayflow.workflows.completed",
            unit="{workflow}",
            description="Workflow instances ended, by final status",
        )
        self.retries = meter.create_counter(
            "replayflow.step.retries",  # Prometheus: replayflow_step_retries_total
            unit="{retry}",
            description="Step attempts that failed and were scheduled again",
        )
        self.step_duration = meter.create_histogram(
            "replayflow.step.duration",
            unit="s",
            description="Duration of one step attempt in a worker",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.schedule_to_start = meter.create_histogram(
            "replayflow.step.schedule_to_start",
            unit="s",
            description="From the orchestrator scheduling an attempt to a worker starting it",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._gauges: dict[str, dict[int, Gauge]] = {"instances": {}, "lag": {}}
        self._gauge_lock = threading.Lock()
        meter.create_observable_gauge(
            "replayflow.instances",
            unit="{workflow}",
            description="Instances held by this orchestrator's partitions, by status "
            "(running: a step is out or backing off; waiting: only sleeps "
            "or event waits pending; queued; suspended)",
            callbacks=[self._observe("instances")],
        )
        meter.create_observable_gauge(
            "replayflow.consumer.lag",
            unit="{message}",
            description="High watermark minus position, per consumed partition",
            callbacks=[self._observe("lag")],
        )

    def sampled(self, trace_id: int) -> bool:
        """Whether our sampler keeps a new trace with this id. With a ratio sampler this
        depends on the id alone, so every process decides the same for an instance."""
        sampler = getattr(self.tracer, "sampler", None)
        if not self.tracing or sampler is None:
            return self.tracing
        try:
            result = sampler.should_sample(None, trace_id, "replayflow")
            return bool(result.decision.is_sampled())
        except Exception:
            return True

    # Gauges are fed by objects that come and go (partitions, consumers): each
    # registers a callable returning (value, attributes) pairs.

    def add_gauge(self, kind: str, source: Gauge) -> int:
        with self._gauge_lock:
            key = id(source)
            self._gauges[kind][key] = source
            return key

    def remove_gauge(self, kind: str, key: int) -> None:
        with self._gauge_lock:
            self._gauges[kind].pop(key, None)

    def _observe(self, kind: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            with self._gauge_lock:
                sources = list(self._gauges[kind].values())
            out: list[Observation] = []
            for source in sources:
                try:
                    out.extend(Observation(value, attrs) for value, attrs in source())
                except Exception:  # a gauge must never break an export
                    log.debug("gauge %s failed", kind, exc_info=True)
            return out

        return callback


def _is_sdk_tracer_provider(provider: Any) -> bool:
    if isinstance(provider, trace_api.ProxyTracerProvider | trace_api.NoOpTracerProvider):
        return False  # the API's defaults: do not even import the SDK
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(provider, TracerProvider)


def _is_sdk_meter_provider(provider: Any) -> bool:
    if (
        isinstance(provider, metrics_api.NoOpMeterProvider)
        or type(provider).__name__ == "_ProxyMeterProvider"
    ):
        return False
    from opentelemetry.sdk.metrics import MeterProvider

    return isinstance(provider, MeterProvider)


_lock = threading.Lock()
_current: Telemetry | None = None
_installed = False  # True: install() / setup_from_env() chose the providers
_built_on: tuple[Any, Any] | None = None  # the global providers _current was built on
_env_done = False


def current() -> Telemetry:
    """The telemetry in use: installed by setup_from_env() / install(), or built on the
    global providers (again if the application replaced them since)."""
    global _current, _built_on
    with _lock:
        if _installed and _current is not None:
            return _current
        globals_now = (trace_api.get_tracer_provider(), metrics_api.get_meter_provider())
        if (
            _current is None
            or _built_on is None
            or globals_now[0] is not _built_on[0]
            or globals_now[1] is not _built_on[1]
        ):
            _current = Telemetry(*globals_now)
            _built_on = globals_now
        return _current


def install(tracer_provider: Any | None = None, meter_provider: Any | None = None) -> Telemetry:
    """Use these providers (not the global ones) from now on; processes created later
    pick them up. Used by tests and by applications that keep providers private."""
    global _current, _installed
    with _lock:
        _current = Telemetry(tracer_provider, meter_provider)
        _installed = True
        return _current


def reset() -> None:
    """Forget the installed telemetry: the next current() uses the global providers."""
    global _current, _installed, _built_on
    with _lock:
        _current = None
        _installed = False
        _built_on = None


def setup_from_env() -> Telemetry:
    """Configure exporters from the environment once per process (see the module doc)."""
    global _env_done, _current, _installed
    with _lock:
        configure = not _env_done and not _installed
        _env_done = True
        otlp = any(os.environ.get(name, "").strip() for name in _OTLP_ENVS)
        port_text = os.environ.get(PROMETHEUS_PORT_ENV, "").strip()
        if configure and (otlp or port_text):
            _current = _from_env(otlp, port_text)
            _installed = True
            log.info(
                "telemetry: tracing %s, metrics %s",
                "on" if _current.tracing else "off",
                "on" if _current.metrics else "off",
            )
    return current()


def _from_env(otlp: bool, port_text: str) -> Telemetry:
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create(
        {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "replayflow"}
    )
    tracer_provider = trace_api.get_tracer_provider()
    if otlp and not _is_sdk_tracer_provider(tracer_provider):
        tracer_provider = _otlp_tracer_provider(resource)
        trace_api.set_tracer_provider(tracer_provider)
    meter_provider = metrics_api.get_meter_provider()
    if not _is_sdk_meter_provider(meter_provider):
        readers = []
        if otlp:
            readers.append(_otlp_metric_reader())
        if port_text:
            reader = _prometheus_reader(port_text)
            if reader is not None:
                readers.append(reader)
        if readers:
            from opentelemetry.sdk.metrics import MeterProvider

            meter_provider = MeterProvider(resource=resource, metric_readers=readers)
            metrics_api.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider)


def otlp_protocol(signal: str) -> str:
    """'grpc' or 'http/protobuf' for "traces" or "metrics": the standard variables
    OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL; default
    http/protobuf (port 4318; gRPC is port 4317)."""
    for name in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = os.environ.get(name, "").strip().lower()
        if value:
            if value not in OTLP_PROTOCOLS:
                log.warning(
                    "%s=%r: use one of %s; exporting over http/protobuf",
                    name,
                    value,
                    ", ".join(OTLP_PROTOCOLS),
                )
                return "http/protobuf"
            return "http/protobuf" if value == "http/json" else value
    return "http/protobuf"


def _otlp_tracer_provider(resource: Any) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if otlp_protocol("traces") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
            OTLPSpanExporter,
        )

    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def _otlp_metric_reader() -> Any:
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    if otlp_protocol("metrics") == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment]
            OTLPMetricExporter,
        )

    return PeriodicExportingMetricReader(OTLPMetricExporter())


def prometheus_reader(registry: Any = None) -> Any:
    """A Prometheus reader whose series carry no otel_scope_* labels (every series is
    replayflow's), unless REPLAYFLOW_PROMETHEUS_SCOPE_LABELS=1 asks for them."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    wanted = os.environ.get(PROMETHEUS_SCOPE_ENV, "").strip().lower() in ("1", "true", "yes")
    if registry is None:
        return PrometheusMetricReader(scope_info_enabled=wanted)
    return PrometheusMetricReader(scope_info_enabled=wanted, registry=registry)


def _prometheus_reader(port_text: str) -> Any | None:
    try:
        port = int(port_text)
    except ValueError:
        log.warning(
            "%s=%r is not a port number; no Prometheus endpoint", PROMETHEUS_PORT_ENV, port_text
        )
        return None
    from prometheus_client import start_http_server

    host = os.environ.get(PROMETHEUS_HOST_ENV, "").strip() or "127.0.0.1"
    reader = prometheus_reader()
    try:
        start_http_server(port, addr=host)
        log.info("Prometheus metrics on http://%s:%d/metrics", host, port)
    except OSError as exc:
        log.warning("no Prometheus endpoint on %s:%d: %s", host, port, exc)
    return reader
