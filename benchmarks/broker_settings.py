"""The broker setting `make bench` reports and toggles: whether partition leaders verify
each transactional write with the transaction coordinator.

Kafka (3.6 and later) turns `transaction.partition.verification.enable` on by default:
before a leader appends a transactional batch it asks the coordinator whether the
partition belongs to the producer's open transaction, so that a write arriving after
its transaction ended cannot open a transaction nobody will finish. librdkafka has no
client side of KIP-890, so for its producers that check is one more request between
brokers inside every produce. compose/kafka/server.properties keeps Kafka's default (its
comment gives the trade-off); the benchmark measures the fixed rates both ways, so an
operator sees what turning it off would buy. The setting is dynamic, so the bench
switches it on the running broker(s) and puts back what was there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from replayflow.kafka import clients
from replayflow.settings import Settings

VERIFICATION = "transaction.partition.verification.enable"
# ConfigSource.DYNAMIC_BROKER_CONFIG: a value set on this broker at run time.
_DYNAMIC_BROKER = 2
_TIMEOUT = 30.0


def _brokers(admin: AdminClient, settings: Settings) -> list[str]:
    metadata = clients.cluster_metadata(admin, settings)
    return sorted(str(broker_id) for broker_id in metadata.brokers)


def _describe(admin: AdminClient, broker: str) -> tuple[bool, bool]:
    """(verification on, whether that value is a run-time override on this broker)."""
    resource = ConfigResource(ResourceType.BROKER, broker)
    entries = admin.describe_configs([resource])[resource].result(_TIMEOUT)
    entry = entries[VERIFICATION]
    return entry.value == "true", int(entry.source) == _DYNAMIC_BROKER


def _alter(admin: AdminClient, broker: str, value: str | None) -> None:
    """Set the override on one broker, or drop it (value None: back to server.properties)."""
    resource = ConfigResource(ResourceType.BROKER, broker)
    if value is None:
        entry = ConfigEntry(VERIFICATION, None, incremental_operation=AlterConfigOpType.DELETE)
    else:
        entry = ConfigEntry(VERIFICATION, value, incremental_operation=AlterConfigOpType.SET)
    resource.add_incremental_config(entry)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(_TIMEOUT)


def _until(admin: AdminClient, settings: Settings, wanted: dict[str, bool]) -> None:
    """A broker applies a dynamic change a moment after acknowledging it: wait until
    each reports the wanted value, so no measured produce meets the old one."""
    give_up = time.monotonic() + _TIMEOUT
    while any(_describe(admin, b)[0] != on for b, on in wanted.items()):
        if time.monotonic() > give_up:
            raise RuntimeError(f"the brokers did not apply {VERIFICATION}={wanted}")
        time.sleep(0.2)


def verification(settings: Settings) -> dict[str, bool]:
    """Whether each broker (by id) verifies transactional writes."""
    admin = clients.admin(settings)
    return {broker: _describe(admin, broker)[0] for broker in _brokers(admin, settings)}


@contextmanager
def verification_set(settings: Settings, enabled: bool) -> Iterator[None]:
    """Every broker verifies transactional writes (or not) inside the block; afterwards
    each has what it had before: its earlier override, or none."""
    admin = clients.admin(settings)
    before = {broker: _describe(admin, broker) for broker in _brokers(admin, settings)}
    for broker in before:
        _alter(admin, broker, "true" if enabled else "false")
    _until(admin, settings, {broker: enabled for broker in before})
    try:
        yield
    finally:
        for broker, (was_on, was_override) in before.items():
            _alter(admin, broker, ("true" if was_on else "false") if was_override else None)
        _until(admin, settings, {broker: was_on for broker, (was_on, _) in before.items()})
