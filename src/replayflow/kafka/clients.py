"""Constructors of every Kafka client replayflow runs. Each takes Settings, starts from
replayflow.kafka.config and sends librdkafka's log lines to Python logging
("replayflow.kafka") instead of stderr."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from replayflow.kafka.config import (
    LOG,
    METADATA_TIMEOUT,
    admin_config,
    consumer_config,
    producer_config,
    transactional_config,
)
from replayflow.kafka.outage import KafkaUnreachable, Outage
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


def cluster_metadata(
    client: Any, settings: Settings, topic: str | None = None, timeout: float | None = None
) -> Any:
    """The cluster's metadata (of one topic, or all) through `client`; KafkaUnreachable
    when no broker answers within `timeout` (default: settings.connect_timeout)."""
    wait = settings.connect_timeout if timeout is None else timeout
    try:
        if topic is None:
            return client.list_topics(timeout=wait)
        return client.list_topics(topic, timeout=wait)
    except KafkaException:
        raise KafkaUnreachable(settings.bootstrap, wait) from None


def check_reachable(settings: Settings, timeout: float | None = None) -> None:
    """Raise KafkaUnreachable unless a broker answers within the connect timeout
    (default: settings.connect_timeout); at once when every bootstrap broker refuses
    the connection (nothing listens there), without waiting the timeout out."""
    wait = settings.connect_timeout if timeout is None else timeout
    refused = threading.Event()

    def on_error(error: KafkaError) -> None:
        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            refused.set()

    client = admin(settings, error_cb=on_error)
    deadline = time.monotonic() + wait
    while True:
        left = deadline - time.monotonic()
        try:
            client.list_topics(timeout=max(0.05, min(0.25, left)))
            return
        except KafkaException:
            pass
        client.poll(0)  # serves on_error
        if refused.is_set() or left <= 0:
            raise KafkaUnreachable(settings.bootstrap, wait, refused=refused.is_set())


def wait_until_reachable(
    settings: Settings, who: str, log: logging.Logger, stop: threading.Event | None = None
) -> bool:
    """Block until a broker answers (True), saying "waiting for Kafka" once per interval
    meanwhile; False if `stop` was set first. Long-running processes start with this,
    so they may be started before the broker."""
    outage = Outage(settings.bootstrap, who, log)
    pause = stop or threading.Event()
    while not pause.is_set():
        try:
            check_reachable(settings)
        except KafkaUnreachable as exc:
            outage.unreachable("connection refused" if exc.refused else "no answer")
            pause.wait(1.0)
            continue
        outage.recovered()
        return True
    return False
