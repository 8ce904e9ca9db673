"""Kafka topic triggers on the real broker: every format starts its workflow, bad
records go to the DLQ while good ones flow, events reach waiting instances by
correlation, and CloudEvents on topics start a DSL document and wake its `listen`.

Each test has its own namespace; source topics are made in it (and deleted with it).
The engine (orchestrator and worker) runs in this process (LocalRuntime), the triggers
in a TriggerRunner beside it. The kill -9 test is tests/chaos/test_trigger_crashes.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from fastavro import parse_schema, schemaless_writer

import replayflow as rf
from replayflow import codec
from replayflow.client import Client
from replayflow.codec import MAGIC, fingerprint_bytes
from replayflow.core.definitions import Registry
from replayflow.core.messages import DeadLetter, EventAwaited, StartWorkflow
from replayflow.dsl.documents import DocumentStore, deploy
from replayflow.dsl.triggers import document_triggers
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.config import group_name
from replayflow.kafka.producing import Record, deliver
from replayflow.kafka.reading import read_all
from replayflow.processors.documents import KafkaDocumentLog
from replayflow.processors.runtime import LocalRuntime
from replayflow.processors.trigger import SOURCE_HEADER, TRIGGER_HEADER, group_role
from replayflow.processors.trigger_mapping import compile_trigger
from replayflow.processors.trigger_runner import TriggerRunner
from replayflow.processors.trigger_source import TriggerSpec
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.chaos.workloads import read_topic, wait_until
from tests.integration import trigger_workloads

pytestmark = pytest.mark.kafka

ORDER_SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "long"}],
}

Headers = list[tuple[str, bytes]]
AVRO_ORDER = {"id": "avro-1", "amount": 5}


def source_topic(settings: Settings, name: str, partitions: int = 3) -> str:
    real = settings.topic_name(name)
    admin = clients.admin(settings)  # kept referenced until the futures resolve
    for future in admin.create_topics([NewTopic(real, partitions, 1)]).values():
        future.result()
    return real


def produce(
    settings: Settings, topic: str, *records: tuple[bytes | None, bytes | None, Headers]
) -> None:
    deliver(
        clients.producer(settings),
        [Record(topic, value, key=key, headers=headers) for key, value, headers in records],
    )


def avro_body(value: dict) -> bytes:  # type: ignore[type-arg]
    out = BytesIO()
    schemaless_writer(out, parse_schema(ORDER_SCHEMA), value)
    return out.getvalue()


@pytest.fixture
def engine(settings: Settings, tmp_path: Path) -> Iterator[tuple[LocalRuntime, Client]]:
    apply_topics(settings.bootstrap, load_topics(settings))
    runtime = LocalRuntime(
        settings.replace(data_dir=tmp_path / "data"),
        Registry.of(trigger_workloads),
        orchestrator_id="trigger-test",
    )
    with runtime, Client(settings) as client:
        yield runtime, client
    assert not runtime.errors, runtime.errors


def run_triggers(settings: Settings, specs: list[TriggerSpec]) -> TriggerRunner:
    runner = TriggerRunner(settings, "trigger-test")
    runner.reconcile(specs)
    assert runner.wait_ready(60), "the triggers got no partitions"
    return runner


def test_each_format_starts_its_workflow(
    engine: tuple[LocalRuntime, Client], settings: Settings, tmp_path: Path
) -> None:
    _, client = engine
    schema = tmp_path / "order.avsc"
    schema.write_text(json.dumps(ORDER_SCHEMA))
    echo = "trig-echo"
    triggers = [
        rf.KafkaTrigger(topic="in-json", workflow=echo, id="key"),
        rf.KafkaTrigger(
            topic="in-avro", format="avro", schema=str(schema), workflow=echo, id=".id"
        ),
        rf.KafkaTrigger(
            topic="in-confluent",
            format="confluent",
            schema=str(schema),
            schema_id=7,
            workflow=echo,
            id=".id",
        ),
        rf.KafkaTrigger(
            topic="in-events", format="cloudevents", workflow=echo, id=".data.id", input=".data"
        ),
        rf.KafkaTrigger(topic="in-raw", format="raw", workflow=echo, id="key"),
        rf.KafkaTrigger(topic="in-text", format="text", workflow=echo, id="header:x-id"),
    ]
    topics = {t.topic: source_topic(settings, t.topic) for t in triggers}
    ce_headers: Headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-2"),
        ("ce_source", b"https://shop.example.com"),
        ("ce_type", b"com.example.order.placed"),
        ("content-type", b"application/json"),
    ]
    structured = {
        "specversion": "1.0",
        "id": "e-1",
        "source": "https://shop.example.com",
        "type": "com.example.order.placed",
        "data": {"id": "ce-structured", "v": 1},
    }
    with run_triggers(settings, [compile_trigger(t) for t in triggers]):
        produce(settings, topics["in-json"], (b"json-1", b'{"a": [1, 2]}', []))
        produce(
            settings,
            topics["in-avro"],
            (
                None,
                MAGIC + fingerprint_bytes(ORDER_SCHEMA) + avro_body({"id": "avro-1", "amount": 5}),
                [],
            ),
        )
        produce(
            settings,
            topics["in-confluent"],
            (None, b"\x00" + (7).to_bytes(4, "big") + avro_body({"id": "conf-1", "amount": 6}), []),
        )
        produce(
            settings,
            topics["in-events"],
            (
                None,
                json.dumps(structured).encode(),
                [("content-type", b"application/cloudevents+json")],
            ),
            (None, b'{"id": "ce-binary", "v": 2}', ce_headers),
        )
        produce(settings, topics["in-raw"], (b"raw-1", b"\x00\x01\xff", []))
        produce(settings, topics["in-text"], (None, "grüße".encode(), [("x-id", b"text-1")]))
        expected = {
            "json-1": {"a": [1, 2]},
            "avro-1": AVRO_ORDER,
            "conf-1": {"id": "conf-1", "amount": 6},
            "ce-structured": {"id": "ce-structured", "v": 1},
            "ce-binary": {"id": "ce-binary", "v": 2},
            "raw-1": base64.b64encode(b"\x00\x01\xff").decode(),
            "text-1": "grüße",
        }
        for instance_id, value in expected.items():
            assert client.result(instance_id, timeout=60) == value, instance_id


def test_bad_records_go_to_the_dlq_with_reasons_while_good_ones_flow(
    engine: tuple[LocalRuntime, Client], settings: Settings
) -> None:
    _, client = engine
    topic = source_topic(settings, "mixed", partitions=1)  # one partition: one order
    trigger = rf.KafkaTrigger(topic="mixed", workflow="trig-echo", id=".id", name="mixed-in")
    bad = [
        (b"{not json", "not JSON", "Undecodable"),
        (b'{"other": 1}', "no instance id", "NoInstanceId"),
        (b'{"id": "has a space"}', "invalid instance id", "InvalidInstanceId"),
        (b'[{"id": "in-a-list"}]', "cannot index array", "ExpressionFailed"),
    ]
    records: list[tuple[bytes | None, bytes | None, Headers]] = []
    for i, (value, _, _) in enumerate(bad):
        records.append((b"k", json.dumps({"id": f"good-{i}", "n": i}).encode(), []))
        records.append((b"k", value, [("x-origin", b"test")]))
    records.append((b"k", b'{"id": "good-last"}', []))
    with run_triggers(settings, [compile_trigger(trigger)]) as runner:
        produce(settings, topic, *records)
        for i in range(len(bad)):
            assert client.result(f"good-{i}", timeout=60) == {"id": f"good-{i}", "n": i}
        assert client.result("good-last", timeout=60) == {"id": "good-last"}
        wait_until(lambda: runner.stats()["mixed-in"].records == len(records), 30, "all records")
        assert runner.stats()["mixed-in"].dead_letters == len(bad)

    letters = [
        (r, r.decoded())
        for r in read_topic(settings, Topics(settings).dlq)
        if isinstance(r.decoded(), DeadLetter)
    ]
    assert len(letters) == len(bad)
    by_value = {letter.value: letter for _, letter in letters}
    for value, reason, error_type in bad:
        letter = by_value[value]  # the original bytes, as they were
        assert reason in letter.reason and letter.error_type == error_type
        assert (letter.source_topic, letter.partition, letter.key) == (topic, 0, b"k")
    # The committed source offset is past the last record: the partition kept flowing.
    consumer = clients.consumer(
        settings, None, **{"group.id": group_name(settings, group_role("mixed-in"))}
    )
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        assert committed.offset == len(records)
    finally:
        consumer.close()


def test_correlation_delivers_events_to_waiting_instances(
    engine: tuple[LocalRuntime, Client], settings: Settings
) -> None:
    _, client = engine
    topic = source_topic(settings, "payments")
    trigger = rf.KafkaTrigger(
        topic="payments", format="json", event="paid", id=".order", input=".amount", name="paid-in"
    )
    ids = [f"waiter-{i}" for i in range(5)]
    client.start_many([("trig-waiter", i, instance_id) for i, instance_id in enumerate(ids)])
    for instance_id in ids:  # waiting before the events come (an event for no instance is refused)
        wait_until(
            lambda i=instance_id: any(isinstance(e, EventAwaited) for e in client.history(i)),
            30,
            f"{instance_id} to wait",
        )
    with run_triggers(settings, [compile_trigger(trigger)]):
        produce(
            settings,
            topic,
            *[
                (None, json.dumps({"order": i, "amount": n * 10}).encode(), [])
                for n, i in enumerate(ids)
            ],
        )
        for n, instance_id in enumerate(ids):
            assert client.result(instance_id, timeout=60) == {"n": n, "paid": n * 10}
    sent = [
        r
        for r in read_topic(settings, Topics(settings).commands)
        if r.key in {i.encode() for i in ids}
    ]
    assert len(sent) == 2 * len(ids)  # a start and an event each


ORDER_FLOW = """\
document:
  dsl: '1.0.3'
  namespace: shop
  name: order-flow
  version: '1.0.0'
  metadata:
    replayflow:
      topic: orders
      id: '${ "order-" + .data.orderId }'
schedule:
  on:
    one:
      with:
        type: com.example.order.placed
do:
  - pay:
      metadata:
        replayflow:
          topic: payments
      listen:
        to:
          one:
            with:
              type: com.example.payment.received
            correlate:
              order:
                from: '${ "order-" + .data.orderId }'
                expect: '${ $workflow.id }'
  - done:
      set:
        order: '${ $workflow.input[0].data.orderId }'
        paid: '${ .[0].amount }'
"""


def test_cloudevents_on_topics_start_a_document_and_wake_its_listen(
    settings: Settings, tmp_path: Path
) -> None:
    apply_topics(settings.bootstrap, load_topics(settings))
    orders = source_topic(settings, "orders")
    payments = source_topic(settings, "payments")
    store = DocumentStore(KafkaDocumentLog(settings)).start()
    registry = Registry()
    registry.add_source(store)
    runtime = LocalRuntime(settings.replace(data_dir=tmp_path), registry, orchestrator_id="dsl-t")
    try:
        with runtime, Client(settings) as client:
            deploy(store, ORDER_FLOW, "order-flow.yaml")
            specs = document_triggers(store.documents())
            assert sorted(s.name for s in specs) == [
                "dsl.order-flow.listen.payments",
                "dsl.order-flow.on",
            ]
            with run_triggers(settings, specs):
                placed = {
                    "specversion": "1.0",
                    "id": "e-1",
                    "source": "https://shop.example.com",
                    "type": "com.example.order.placed",
                    "data": {"orderId": "7"},
                }
                produce(settings, orders, (None, json.dumps(placed).encode(), []))
                wait_until(
                    lambda: any(isinstance(e, EventAwaited) for e in client.history("order-7")),
                    60,
                    "the instance to listen",
                )
                # The payment in binary mode, keyed by something else than the instance.
                produce(
                    settings,
                    payments,
                    (
                        b"payment-1",
                        b'{"orderId": "7", "amount": 12}',
                        [
                            ("ce_specversion", b"1.0"),
                            ("ce_id", b"p-1"),
                            ("ce_source", b"https://pay.example.com"),
                            ("ce_type", b"com.example.payment.received"),
                            ("content-type", b"application/json"),
                        ],
                    ),
                )
                assert client.result("order-7", timeout=60) == {"order": "7", "paid": 12}
            started = [
                r.decoded()
                for r in read_topic(settings, Topics(settings).commands)
                if isinstance(r.decoded(), StartWorkflow)
            ]
            assert [(s.instance_id, s.workflow, s.version) for s in started] == [
                ("order-7", "order-flow", "1.0.0")
            ]
        assert not runtime.errors, runtime.errors
    finally:
        store.stop()


def test_commands_are_keyed_by_instance_id_and_name_their_trigger(settings: Settings) -> None:
    """Without an engine: the commands a trigger writes are visible read_committed,
    keyed by instance id, with the trigger's name and the source record in headers."""
    apply_topics(settings.bootstrap, load_topics(settings))
    topic = source_topic(settings, "plain")
    trigger = rf.KafkaTrigger(topic="plain", workflow="w", id="key", name="plain-in")
    with run_triggers(settings, [compile_trigger(trigger)]) as runner:
        produce(settings, topic, *[(f"p-{i}".encode(), b"{}", []) for i in range(20)])
        wait_until(lambda: runner.stats()["plain-in"].started == 20, 30, "20 starts")
    consumer = clients.consumer(settings, None)
    try:
        commands = Topics(settings).commands
        messages = read_all(consumer, commands, topic_partitions(consumer, commands))
    finally:
        consumer.close()
    assert sorted(m.key() for m in messages) == sorted(f"p-{i}".encode() for i in range(20))
    for message in messages:
        command = codec.decode(message.value())
        assert isinstance(command, StartWorkflow) and command.instance_id.encode() == message.key()
        headers = dict(message.headers() or [])
        assert headers[TRIGGER_HEADER] == b"plain-in"
        assert headers[SOURCE_HEADER].startswith(f"{topic}/".encode())


def test_two_trigger_processes_share_the_partitions(settings: Settings) -> None:
    """Two members of one trigger's group split its partitions; each record still gives
    one start."""
    apply_topics(settings.bootstrap, load_topics(settings))
    topic = source_topic(settings, "shared", partitions=6)
    spec = compile_trigger(rf.KafkaTrigger(topic="shared", workflow="w", id="key", name="shared"))
    one, two = TriggerRunner(settings, "member-1"), TriggerRunner(settings, "member-2")
    with one, two:
        one.reconcile([spec])
        two.reconcile([spec])

        def split() -> bool:
            owned = [r._running["shared"].processor for r in (one, two)]
            return (
                all(p is not None and p.assigned for p in owned)
                and sum(len(p.assigned) for p in owned if p is not None) == 6
            )

        wait_until(split, 60, "both members to own partitions")
        produce(settings, topic, *[(f"s-{i}".encode(), b"{}", []) for i in range(300)])
        wait_until(
            lambda: one.stats()["shared"].started + two.stats()["shared"].started == 300,
            60,
            "300 starts",
        )
        assert one.stats()["shared"].started > 0 and two.stats()["shared"].started > 0
    keys = [r.key for r in read_topic(settings, Topics(settings).commands)]
    assert sorted(keys) == sorted(f"s-{i}".encode() for i in range(300))
