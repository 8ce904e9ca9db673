"""Constructors of every Kafka client replayflow runs. Each takes Settings, starts from
replayflow.kafka.config and sends librdkafka's log lines to Python logging
("replayflow.kafka") instead of stderr."""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from replayflow.kafka.config import (
    LOG,
    METADATA_TIMEOUT,
    admin_config,
    consumer_config,
    producer_config,
    transactional_config,
)
from replayflow.kafka.transactional import TransactionalProducer
from replayflow.settings import Settings


def producer(settings: Settings, **extra: Any) -> Producer:
    """An idempotent producer (murmur2, lz4)."""
    return Producer({**producer_config(settings, **extra), "logger": LOG})


def transactional_producer(
    settings: Settings,
    transactional_id: str,
    *,
    init_timeout: float = METADATA_TIMEOUT,
    **extra: Any,
) -> Producer:
    """A transactional producer, initialised: an earlier producer with the same
    transactional id is fenced, and its open transaction committed or aborted, before
    this returns."""
    client = Producer({**transactional_config(settings, transactional_id, **extra), "logger": LOG})
    client.init_transactions(init_timeout)
    return client


def guarded_transactional_producer(
    settings: Settings, transactional_id: str, **extra: Any
) -> TransactionalProducer:
    """A transactional producer whose blocking calls run under deadlines
    (kafka/transactional.py), not yet initialised: call `init()`, which fences an
    earlier producer with the same transactional id."""
    client = Producer({**transactional_config(settings, transactional_id, **extra), "logger": LOG})
    return TransactionalProducer(client, transactional_id)


def consumer(settings: Settings, group: str | None, **extra: Any) -> Consumer:
    """A read_committed consumer without auto commit. With a `group` role it joins that
    (namespaced) group; with None it is a reader that assigns partitions itself, under a
    throwaway group id that never commits."""
    config = consumer_config(settings, group, **extra)
    config.setdefault("group.id", f"replayflow-reader-{uuid.uuid4().hex}")
    return Consumer({**config, "logger": LOG})


def admin(bootstrap: Settings | str, **extra: Any) -> AdminClient:
    """An admin client for a cluster (Settings, or a bootstrap string)."""
    config: dict[str, Any] = {**admin_config(bootstrap, **extra), "logger": LOG}
    return AdminClient(config)
