"""Exported metrics read well: Prometheus series named as documented with upper-case
statuses and no otel_scope_* labels unless asked; OTLP over gRPC or HTTP as the
standard variable says."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest

from replayflow.telemetry import setup


def scrape(monkeypatch: pytest.MonkeyPatch, scope_labels: str | None) -> str:
    if scope_labels is None:
        monkeypatch.delenv(setup.PROMETHEUS_SCOPE_ENV, raising=False)
    else:
        monkeypatch.setenv(setup.PROMETHEUS_SCOPE_ENV, scope_labels)
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[setup.prometheus_reader(registry)])
    telemetry = setup.Telemetry(meter_provider=provider)
    telemetry.retries.add(2, {"workflow": "w", "function": "charge"})
    telemetry.completed.add(1, {"workflow": "w", "status": "COMPLETED"})
    try:
        return generate_latest(registry).decode()
    finally:
        provider.shutdown()


def test_prometheus_series_without_scope_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    text = scrape(monkeypatch, None)
    assert 'replayflow_step_retries_total{function="charge",workflow="w"} 2.0' in text
    assert 'replayflow_workflows_completed_total{status="COMPLETED",workflow="w"} 1.0' in text
    assert "otel_scope" not in text


def test_scope_labels_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert 'otel_scope_name="replayflow"' in scrape(monkeypatch, "1")


@pytest.mark.parametrize(
    ("env", "traces", "metrics"),
    [
        ({}, "http/protobuf", "http/protobuf"),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "grpc", "grpc"),
        (
            {
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            },
            "grpc",
            "http/protobuf",
        ),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"}, "http/protobuf", "http/protobuf"),
    ],
)
def test_the_otlp_protocol_follows_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], traces: str, metrics: str
) -> None:
    for name in ("", "TRACES_", "METRICS_"):
        monkeypatch.delenv(f"OTEL_EXPORTER_OTLP_{name}PROTOCOL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert (setup.otlp_protocol("traces"), setup.otlp_protocol("metrics")) == (traces, metrics)


def test_a_grpc_exporter_is_built_for_grpc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    reader = setup._otlp_metric_reader()
    try:
        assert "proto.grpc" in type(reader._exporter).__module__
    finally:
        reader.shutdown(timeout_millis=1000)
