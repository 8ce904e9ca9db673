"""Client configurations built from Settings: every replayflow producer, consumer and
admin client starts from these dictionaries."""

from __future__ import annotations

import logging
from typing import Any

from replayflow.settings import Settings

# Java clients hash keys with murmur2; librdkafka's default differs. Every producer of
# ours uses murmur2 so an instance's commands land on the partition any Java (or other
# murmur2) producer would pick (replayflow.kafka.partition computes the same).
PARTITIONER = "murmur2_random"

#: Seconds to wait for metadata, watermarks and acknowledgements before giving up.
METADATA_TIMEOUT = 30.0
FLUSH_TIMEOUT = 30.0
#: A transaction left open longer than this is aborted by the broker.
TRANSACTION_TIMEOUT_MS = 60_000
#: The first backoff (ms) before a transactional request is tried again; it doubles on
#: each retry up to retry.backoff.max.ms. The common retry is CONCURRENT_TRANSACTIONS:
#: a transaction begun right after a commit asks to add its offsets while the
#: coordinator still writes the previous commit's markers, which takes a millisecond
#: or two. librdkafka's default backoff, 100 ms, made every back-to-back transaction
#: last 100 ms (benchmarks/relay.py measures it).
TRANSACTION_RETRY_BACKOFF_MS = 1
#: A transaction's records wait for its commit, which sends whatever is queued at once
#: (librdkafka's flush ignores linger): batching them costs no latency, and sending
#: them as they were produced cost the broker a produce request per millisecond of
#: folding.
TRANSACTION_LINGER_MS = 50

#: librdkafka's own log lines (connection refused, ...) go to this logger instead of
#: stderr; failures reach callers as exceptions.
LOG = logging.getLogger("replayflow.kafka")
LOG.addHandler(logging.NullHandler())


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "partitioner": PARTITIONER,
        "enable.idempotence": True,
        # A command waits at most a millisecond for company: latency first; under load
        # records batch anyway while earlier requests are in flight.
        "linger.ms": 1,
        # Requests are small and latency matters more than packets: no Nagle delay.
        "socket.nagle.disable": True,
        "compression.type": "lz4",
        # Records up to the topics' max.message.bytes (8 MiB) must fit in a request.
        "message.max.bytes": 10 * 1024 * 1024,
    }
    config.update(extra)
    return config


def transactional_config(settings: Settings, transactional_id: str, **extra: Any) -> dict[str, Any]:
    return producer_config(
        settings,
        **{
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "retry.backoff.ms": TRANSACTION_RETRY_BACKOFF_MS,
            "linger.ms": TRANSACTION_LINGER_MS,
            **extra,
        },
    )


def consumer_config(settings: Settings, group: str | None, **extra: Any) -> dict[str, Any]:
    """A read_committed consumer without auto commit. `group` is a role ("worker")
    made into a namespaced group id; None leaves the group to the caller (readers
    that assign partitions pass their own throwaway group.id)."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
        "socket.nagle.disable": True,
        # How long the broker may park a fetch that finds nothing new. A transaction's
        # commit markers usually wake a parked read_committed fetch at once, but not
        # always: in some runs every hop of benchmarks/relay.py's chain took this long
        # (~90 ms of 100). A short wait bounds that; an idle consumer pays with fifty
        # fetches a second.
        "fetch.wait.max.ms": 20,
    }
    if group is not None:
        config["group.id"] = group_name(settings, group)
    config.update(extra)
    return config


def admin_config(bootstrap: Settings | str, **extra: Any) -> dict[str, Any]:
    servers = bootstrap.bootstrap if isinstance(bootstrap, Settings) else bootstrap
    return {"bootstrap.servers": servers, **extra}


def group_name(settings: Settings, role: str) -> str:
    base = f"replayflow.{role}"
    return f"{settings.namespace}.{base}" if settings.namespace else base
