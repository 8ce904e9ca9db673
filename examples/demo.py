"""`make demo`: an orchestrator and a worker in this process, on the local Kafka, run
the example workflows end to end: a pipeline, a Pydantic AI travel agent (an MCP tool,
a human approval, its answer streamed here, then replayed without calling the model),
and the YAML pipeline."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples import agent, pipeline
from replayflow.cli.instances import history_table
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.replay import replay
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings


def wait_for(client: Client, instance_id: str, event_type: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(type(e).__name__ == event_type for e in client.history(instance_id)):
            return
        time.sleep(0.3)
    raise TimeoutError(f"{instance_id} never reached {event_type}")


@contextlib.contextmanager
def demo_api(settings: Settings) -> Iterator[None]:
    """The HTTP API and web UI next to the demo (REPLAYFLOW_API_PORT, default 8080; 0:
    none). Guarded: the demo runs without them if they do not start."""
    port = int(os.environ.get("REPLAYFLOW_API_PORT", "8080") or 0)
    server = None
    if port > 0:
        try:
            from replayflow.api.process import ApiServer, free_port

            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    port = free_port()  # 8080 is taken: any free port
            server = ApiServer(settings, port, data_dir=settings.data_dir.resolve() / "api-demo")
            server.start()
            server.wait_ready(90)
            print(f"API: {server.url}   UI: {server.url}/ui/")
        except Exception as exc:  # the demo's point is the engine; the UI is a bonus
            print(f"(the API and UI did not start: {exc})")
    try:
        yield
        if server is not None and sys.stdin.isatty():
            input(f"\nbrowse {server.url}/ui/ ; press Enter to stop ")
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    settings = Settings.from_env()
    registry = Registry.of(pipeline, agent)
    yaml_workflow = add_yaml_pipeline(registry, settings)  # before the orchestrator starts
    run = uuid.uuid4().hex[:8]
    print(f"replayflow demo on {settings.bootstrap}")
    with (
        LocalRuntime(settings, registry, orchestrator_id="demo-orchestrator"),
        Client(settings) as client,
        demo_api(settings),
    ):
        started = time.monotonic()
        handle = client.start("pipeline", {"source": "s3://demo/orders.csv"}, id=f"pipeline-{run}")
        print(
            f"\n[pipeline] {handle.id}: {handle.result(timeout=60)}"
            f"  ({time.monotonic() - started:.2f} s)"
        )

        trip = client.start(
            "travel-agent", {"goal": "a flight to Lisbon under 500 EUR"}, id=f"trip-{run}"
        )
        wait_for(client, trip.id, "EventAwaited")
        print(
            f"\n[agent] {trip.id} searched flights (a tool of the MCP server in "
            "examples/mcp_server.py) and waits for approval to book; approving"
        )
        client.send_event(trip.id, "approval", {"approved": True, "by": "demo"})
        print("[agent] answer, streamed: ", end="", flush=True)
        for item in trip.stream("answer", idle_timeout=60):
            if item.kind == "value":
                print(item.value, end="", flush=True)
        print(f"\n[agent] {trip.id}: {trip.result(timeout=60)}")

        history = client.history(trip.id)
        print(f"\nhistory of {trip.id}:")
        for line in history_table(history):
            print("  " + line)
        calls = agent.MODEL_CALLS["count"]
        report = replay(history, registry)
        print(
            f"\n[agent] replayed from its history: "
            f"{'identical' if report.identical else report.difference}; model calls during "
            f"the replay: {agent.MODEL_CALLS['count'] - calls}"
        )

        if yaml_workflow is not None:  # the YAML (DSL) pipeline
            yaml_pipeline(client, yaml_workflow, run)
    print("\ndemo finished")


def add_yaml_pipeline(registry: Registry, settings: Settings) -> str | None:
    """examples/pipeline.yaml (and the steps it calls) in the registry: the
    orchestrator tells clients what it runs when it starts, so this comes first."""
    if not (Path(__file__).parent / "pipeline.yaml").exists():
        return None
    from examples.dsl_pipeline import DOCUMENT, write_report
    from replayflow import dsl
    from replayflow.dsl import builtins
    from replayflow.processors.emitter import KafkaEmitter

    workflow = dsl.workflow_from_file(DOCUMENT)
    registry.add(workflow)
    builtins.register(registry, KafkaEmitter(settings))  # rf_http_call, rf_emit
    registry.add(write_report)
    return workflow.name


def yaml_pipeline(client: Client, workflow: str, run: str) -> None:
    """examples/pipeline.yaml on the same engine: fetch over HTTP, transform, fan out."""
    import json
    import tempfile

    from examples.dsl_pipeline import OrdersService

    report = Path(tempfile.gettempdir()) / f"replayflow-demo-{run}" / "report.json"
    with OrdersService() as service:
        started = time.monotonic()
        handle = client.start(
            workflow,
            {"source": f"{service.url}/orders", "report": str(report)},
            id=f"yaml-{run}",
        )
        print(
            f"\n[yaml pipeline] {handle.id}: {handle.result(timeout=60)}"
            f"  ({time.monotonic() - started:.2f} s)"
        )
    written = json.loads(report.read_text(encoding="utf-8"))
    print(f"[yaml pipeline] {report}: {json.dumps(written, separators=(',', ':'))}")


if __name__ == "__main__":
    main()
