"""In-memory exporters for tests: spans and metrics read back from the SDK.

with InMemoryTelemetry() as otel:     # before creating the runtime
    ... run workflows ...
    spans = otel.spans("step ")
    points = otel.points("replayflow.workflows.started")
"""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from replayflow.telemetry import setup


class InMemoryTelemetry:
    """Installs private SDK providers with in-memory exporters (the global providers are
    left alone, so tests can install and reset as often as they like)."""

    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        self.telemetry: setup.Telemetry | None = None

    def install(self) -> InMemoryTelemetry:
        self.telemetry = setup.install(self.tracer_provider, self.meter_provider)
        return self

    def uninstall(self) -> None:
        setup.reset()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()

    def __enter__(self) -> InMemoryTelemetry:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    # -- reading ---------------------------------------------------------------------

    def spans(self, prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.span_exporter.get_finished_spans() if s.name.startswith(prefix)]

    def metrics(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (collected now)."""
        data = self.metric_reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out
