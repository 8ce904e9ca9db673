"""Client configurations built from Settings."""

from __future__ import annotations

import logging
import time

import pytest

from replayflow.kafka.config import (
    LOG,
    PARTITIONER,
    RateLimit,
    admin_config,
    consumer_config,
    group_name,
    producer_config,
    transactional_config,
)
from replayflow.settings import Settings

SETTINGS = Settings(bootstrap="broker-a:9092,broker-b:9092", namespace="team1")


def test_producers_are_idempotent_murmur2_and_compressed() -> None:
    config = producer_config(SETTINGS)
    assert config["bootstrap.servers"] == "broker-a:9092,broker-b:9092"
    assert config["partitioner"] == PARTITIONER == "murmur2_random"
    assert config["enable.idempotence"] is True
    assert config["compression.type"] == "lz4"


def test_extra_keys_win_over_the_defaults() -> None:
    assert producer_config(SETTINGS, **{"linger.ms": 50})["linger.ms"] == 50
    assert consumer_config(SETTINGS, None, **{"fetch.wait.max.ms": 500})["fetch.wait.max.ms"] == 500


def test_a_transactional_producer_has_its_id_and_a_transaction_timeout() -> None:
    config = transactional_config(SETTINGS, "team1.replayflow.orchestrator-1")
    assert config["transactional.id"] == "team1.replayflow.orchestrator-1"
    assert config["transaction.timeout.ms"] == 60_000
    assert config["partitioner"] == "murmur2_random"
    # No re-bootstrap while the broker is away: it decommissions the broker a cached
    # group coordinator points at, and send_offsets_to_transaction then hangs.
    assert config["metadata.recovery.strategy"] == "none"


def test_every_client_tries_a_broker_that_is_down_again_within_a_second() -> None:
    # After a broker restart a client finds it within ~1 s, not librdkafka's 10 s.
    assert producer_config(SETTINGS)["reconnect.backoff.max.ms"] == 1_000
    assert consumer_config(SETTINGS, "worker")["reconnect.backoff.max.ms"] == 1_000


def test_consumers_read_committed_records_and_never_commit_by_themselves() -> None:
    config = consumer_config(SETTINGS, None)
    assert config["isolation.level"] == "read_committed"
    assert config["enable.auto.commit"] is False
    assert config["auto.offset.reset"] == "earliest"
    assert "group.id" not in config


def test_a_role_becomes_a_namespaced_group() -> None:
    assert consumer_config(SETTINGS, "worker")["group.id"] == "team1.replayflow.worker"
    assert group_name(Settings(), "worker") == "replayflow.worker"


def test_admin_config_takes_settings_or_a_bootstrap_string() -> None:
    assert admin_config(SETTINGS) == {"bootstrap.servers": "broker-a:9092,broker-b:9092"}
    assert admin_config("h:1")["bootstrap.servers"] == "h:1"


def test_librdkafka_logs_through_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    from replayflow.kafka import clients

    # Nothing listens on port 1: librdkafka logs the refused connection (once per
    # interval: other tests may have logged the same line just now).
    for limit in LOG.filters:
        if isinstance(limit, RateLimit):
            limit.reset()
    producer = clients.producer(Settings(bootstrap="127.0.0.1:1"))
    deadline = time.monotonic() + 10
    with caplog.at_level(logging.DEBUG, logger="replayflow.kafka"):
        while time.monotonic() < deadline and not caplog.records:
            producer.poll(0.1)
    assert any(r.name == "replayflow.kafka" for r in caplog.records)
