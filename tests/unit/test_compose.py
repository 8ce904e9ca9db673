"""compose/docker-compose.yml as documented: the API and UI service, a health check for
every long-running process (through commands the CLI has), and an OpenTelemetry
collector example whose configuration receives OTLP over gRPC and HTTP. (No Docker
daemon is needed: the files are read, not run.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from replayflow.cli import main

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def load(name: str) -> Any:
    return YAML(typ="safe").load((COMPOSE / name).read_text())


def test_every_long_running_service_has_a_health_check() -> None:
    services = load("docker-compose.yml")["services"]
    long_running = {name for name, s in services.items() if s.get("restart") != "no"}
    assert {"kafka", "orchestrator", "worker", "api", "otel-collector"} <= long_running
    # The collector image has no shell to run a check in (the compose file says so).
    assert {n for n in long_running if "healthcheck" not in services[n]} == {"otel-collector"}
    for name in ("orchestrator", "worker"):
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "replayflow", "health"] and "health" in main.commands
        assert services[name]["environment"]["REPLAYFLOW_HEALTH_FILE"]
    assert "/health/ready" in " ".join(services["api"]["healthcheck"]["test"])


def test_the_api_and_ui_service() -> None:
    api = load("docker-compose.yml")["services"]["api"]
    assert api["command"][0] == "serve" and api["command"][0] in main.commands
    assert "127.0.0.1:8080:8080" in api["ports"]
    assert api["environment"]["KAFKA_BOOTSTRAP"]


def test_the_collector_example_receives_otlp_over_grpc_and_http() -> None:
    services = load("docker-compose.yml")["services"]
    collector = services["otel-collector"]
    assert collector["profiles"] == ["otel"]
    assert any("otel-collector.yaml" in v for v in collector["volumes"])
    config = load("otel-collector.yaml")
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317")
    assert protocols["http"]["endpoint"].endswith(":4318")
    pipelines = config["service"]["pipelines"]
    assert pipelines["traces"]["receivers"] == pipelines["metrics"]["receivers"] == ["otlp"]
    for name in ("orchestrator", "worker", "api"):
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" in services[name]["environment"]


def test_both_local_brokers_keep_the_transactional_write_check() -> None:
    # The broker `make up` starts and the one in docker-compose.yml must measure and
    # behave alike, and as a cluster does by default: docs/performance.md gives what
    # the check costs and what it guards against.
    properties = dict(
        line.split("=", 1)
        for line in (COMPOSE / "kafka/server.properties").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    )
    assert properties["transaction.partition.verification.enable"] == "true"
    env = load("docker-compose.yml")["x-kafka-env"]
    assert env["KAFKA_TRANSACTION_PARTITION_VERIFICATION_ENABLE"] == "true"
