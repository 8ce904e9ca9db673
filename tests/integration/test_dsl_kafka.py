"""Serverless Workflow documents on the real broker: deploy to replayflow.workflows,
start by name through the Client, versions kept by instances in flight; and the CTK
scenarios on the Kafka engine (LocalRuntime)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow import dsl
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.errors import ValidationError, WorkflowError
from replayflow.dsl import builtins as dsl_builtins
from replayflow.dsl.documents import DocumentStore, deploy
from replayflow.processors.documents import KafkaDocumentLog
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.ctk import kit
from tests.ctk.features import Scenario
from tests.ctk.runner import Outcome, run_scenario
from tests.ctk.server import Services
from tests.ctk.test_ctk import EXPECTED_FAILURES, scenarios

pytestmark = pytest.mark.kafka

GREETER = """\
document:
  dsl: '1.0.3'
  namespace: test
  name: greeter
  version: '{version}'
do:
  - waitForGo:
      listen:
        to:
          one:
            with:
              type: com.example.go
  - greet:
      set:
        greeting: ${{ "{word} " + $input[0].who }}
        version: '{version}'
"""


@pytest.fixture
def runtime(
    settings: Settings, tmp_path: Path
) -> Iterator[tuple[LocalRuntime, Client, DocumentStore]]:
    apply_topics(settings.bootstrap, load_topics(settings))
    store = DocumentStore(KafkaDocumentLog(settings)).start()
    registry = Registry()
    registry.add_source(store)
    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path), registry, orchestrator_id="dsl-test"
    )
    with runtime, Client(settings) as client:
        yield runtime, client, store
    store.stop()
    assert not runtime.errors, runtime.errors


def test_deploy_start_by_name_and_versions_in_flight(
    runtime: tuple[LocalRuntime, Client, DocumentStore], settings: Settings
) -> None:
    _, client, store = runtime
    first = deploy(store, GREETER.format(version="1.0.0", word="Hello"), "v1.yaml")
    assert first.created
    again = deploy(store, GREETER.format(version="1.0.0", word="Hello"), "v1.yaml")
    assert not again.created
    with pytest.raises(ValidationError, match="immutable"):
        deploy(store, GREETER.format(version="1.0.0", word="Howdy"), "v1b.yaml")
    assert store.wait_for("greeter", "1.0.0", 10)

    old = client.start("greeter", None)
    deploy(store, GREETER.format(version="2.0.0", word="Hi"), "v2.yaml")
    assert store.wait_for("greeter", "2.0.0", 10)
    new = client.start("greeter", None)
    for handle in (old, new):
        client.send_event(
            handle.id,
            dsl.event_name("com.example.go"),
            {
                "specversion": "1.0",
                "type": "com.example.go",
                "source": "test",
                "id": handle.id,
                "data": {"who": "Ada"},
            },
        )
    assert old.result(timeout=30) == {"greeting": "Hello Ada", "version": "1.0.0"}
    assert new.result(timeout=30) == {"greeting": "Hi Ada", "version": "2.0.0"}


def test_a_fresh_store_reads_deployed_documents(settings: Settings) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    with DocumentStore(KafkaDocumentLog(settings)) as deployer:
        deploy(deployer, GREETER.format(version="1.0.0", word="Hello"), "v1.yaml")
    with DocumentStore(KafkaDocumentLog(settings)) as store:
        assert store.workflow("greeter", None) is not None
        assert store.workflow("greeter", "9.9.9") is None


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with Services() as running:
        yield running


def test_ctk_on_kafka(settings: Settings, tmp_path: Path, services: Services) -> None:
    """Every CTK scenario that passes in memory passes on the Kafka engine too."""
    kit.require()
    apply_topics(settings.bootstrap, load_topics(settings))
    registry = Registry()
    dsl_builtins.register(registry)  # emitted events are captured by run_scenario
    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path), registry, orchestrator_id="ctk-test"
    )
    counter = iter(range(1000))

    def kafka_engine(workflow: object, data: object) -> Outcome:
        unique = dataclasses.replace(workflow, name=f"ctk-{next(counter)}")  # type: ignore[type-var]
        registry.add(unique)
        handle = client.start(unique.name, data)
        try:
            return Outcome(True, output=handle.result(timeout=30))
        except WorkflowError as exc:
            assert exc.error is not None
            return Outcome(False, error=dsl.problem_of(exc.error))

    chosen: list[Scenario] = [s for s in scenarios() if s.name not in EXPECTED_FAILURES]
    with runtime, Client(settings) as client:
        for scenario in chosen:
            run_scenario(scenario, services.rewrite, kafka_engine)
    assert not runtime.errors, runtime.errors
