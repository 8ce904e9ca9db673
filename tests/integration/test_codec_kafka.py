"""Encoded records survive a real Kafka broker, and their keys land where they were sent."""

from __future__ import annotations

import dataclasses
import time
import types
import typing
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from replayflow import codec
from replayflow.core import messages, replies

pytestmark = pytest.mark.kafka

PARTITIONS = 3


def sample(cls: type, n: int) -> Any:
    """An instance with a value in every field, instance id "order-<n>"."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        hint = hints[f.name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kind = next(o for o in options if o is not type(None))
        if f.name in ("instance_id", "limiter"):
            values[f.name] = f"order-{n}" if f.name == "instance_id" else f"limiter:wf-{n % 2}"
        elif kind is str:
            values[f.name] = f'{{"{f.name}": {n}}}'
        elif kind is bool:
            values[f.name] = False
        elif kind is int:
            values[f.name] = 1_732_480_000_000 + 1000 * n + i
        elif kind is bytes:
            values[f.name] = f"original-{f.name}-{n}".encode()
        elif typing.get_origin(kind) is list:
            values[f.name] = [f"{f.name}-{n}:1", f"{f.name}-{n}:2"]
        else:
            values[f.name] = sample(typing.cast(type, kind), n)
    return cls(**values)


def key_of(obj: Any) -> bytes | None:
    """The Kafka key each record is produced with (schemas/README.md, "Topics")."""
    if isinstance(obj, messages.AcquireSlot | messages.ReleaseSlot):
        return obj.limiter.encode()
    if isinstance(obj, messages.DeadLetter):
        return obj.key
    if isinstance(obj, replies.OrchestratorWorkflows):
        return obj.orchestrator.encode()
    # ErrorInfo is never a Kafka value on its own; it still gets a key to travel here.
    return str(getattr(obj, "instance_id", "error-info")).encode()


MESSAGES = [
    sample(cls, n)
    for n, cls in enumerate(
        c
        for module in (messages, replies)
        for c in vars(module).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__
    )
]


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = f"replayflow.test.codec.{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[
        name
    ].result(timeout=30)
    try:
        yield name
    finally:
        admin.delete_topics([name])[name].result(timeout=30)


def test_every_record_type_round_trips_through_kafka(kafka_bootstrap: str, topic: str) -> None:
    assert len({type(m) for m in MESSAGES}) == len(MESSAGES) >= 31

    delivered: dict[bytes | None, int | None] = {}  # value -> partition it was written to

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        delivered[msg.value()] = msg.partition()

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for obj in MESSAGES:
        producer.produce(topic, key=key_of(obj), value=codec.encode(obj), on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert len(delivered) == len(MESSAGES)

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"{topic}.reader",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    received: list[Message] = []
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(MESSAGES) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            received.append(msg)
    finally:
        consumer.close()

    assert len(received) == len(MESSAGES)
    decoded = []
    partition_of_key: dict[bytes | None, int | None] = {}
    for msg in received:
        value = msg.value()
        assert value is not None
        obj = codec.decode(value)
        decoded.append(obj)
        assert msg.key() == key_of(obj)  # the key came back as produced
        assert msg.partition() == delivered[value]
        # one key, one partition: what keeps an instance's inputs in one total order
        assert partition_of_key.setdefault(msg.key(), msg.partition()) == msg.partition()
    assert sorted(map(repr, decoded)) == sorted(map(repr, MESSAGES))
    assert all(any(obj == m for m in MESSAGES) for obj in decoded)
    assert len(set(partition_of_key.values())) > 1  # the keys did spread over partitions
