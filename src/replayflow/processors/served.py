"""Which workflows the engine runs, known before a start is sent.

Each orchestrator publishes the code workflows and versions of its registry to the
compacted topic replayflow.orchestrators (key: its id) when it starts; deployed DSL
documents are on replayflow.workflows already (key '<name>:<version>'). `Served.load`
reads both (keys and small records only), and `Served.unknown` says why a start would be
rejected, so the client, the CLI and the API refuse it at once instead of sending it.
The orchestrator still decides: a start that passes this check can be rejected by an
orchestrator that does not run it (the caller then gets the orchestrator's Reply).
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field
from typing import Any

from replayflow import codec
from replayflow.core.definitions import Registry
from replayflow.core.names import version_key
from replayflow.core.replies import OrchestratorWorkflows
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.reading import read_to_end
from replayflow.kafka.transactional import TransactionalProducer
from replayflow.settings import Settings
from replayflow.topics import Topics

log = logging.getLogger("replayflow.served")


def record_of(orchestrator: str, registry: Registry, now_ms: int) -> OrchestratorWorkflows:
    """What an orchestrator publishes about itself."""
    return OrchestratorWorkflows(
        orchestrator=orchestrator,
        host=socket.gethostname(),
        started_at=now_ms,
        # Copied first (list() of a dict is one step under the GIL): a program may add
        # workflows from another thread while this runs.
        workflows=sorted(
            f"{name}:{version}"
            for name, versions in list(registry.workflows.items())
            for version in list(versions)
        ),
    )


def publish(
    producer: TransactionalProducer, settings: Settings, record: OrchestratorWorkflows
) -> bool:
    """Write `record` in a transaction of its own, through the orchestrator's
    transactional producer (its calls under deadlines: Hung or KafkaException raise).
    The caller must have no transaction of its own open or committing. False (and a
    warning) when the topic does not exist: the check is then skipped by callers,
    nothing else depends on it."""
    topic = Topics(settings).orchestrators
    if not topic_partitions(producer.producer, topic, settings.connect_timeout):
        log.warning(
            "topic %s does not exist (run `replayflow topics apply`): clients cannot "
            "check starts against the workflows this orchestrator runs",
            topic,
        )
        return False
    producer.begin()
    producer.produce(topic, key=record.orchestrator.encode(), value=codec.encode(record))
    producer.commit()
    return True


class Publisher:
    """Keeps an orchestrator's record current: published at start, and again when the
    workflows of its registry change (a program may add some while it runs); `due` is
    checked at most once per `interval` seconds from the orchestrator's loop, between
    batches (a sorted list of names compared: cheap next to a poll). A record not
    published (a failed transaction) stays due."""

    def __init__(
        self,
        settings: Settings,
        orchestrator: str,
        registry: Registry,
        interval: float = 0.2,
        clock: Any = None,
    ) -> None:
        import time

        self.settings = settings
        self.orchestrator = orchestrator
        self.registry = registry
        self.interval = interval
        self._clock = clock or time.monotonic
        self._published: list[str] | None = None
        self._checked: float | None = None
        self._exists = True

    def due(self, now_ms: int) -> OrchestratorWorkflows | None:
        """The record to publish now: the first, or one whose workflows changed since
        the last published; None between checks or when the topic does not exist."""
        now = self._clock()
        if not self._exists or (self._checked is not None and now - self._checked < self.interval):
            return None
        self._checked = now
        current = record_of(self.orchestrator, self.registry, now_ms)
        return current if current.workflows != self._published else None

    def publish(self, producer: TransactionalProducer, record: OrchestratorWorkflows) -> None:
        self._exists = publish(producer, self.settings, record)
        self.published(record)

    def published(self, record: OrchestratorWorkflows) -> None:
        """`record` is out: the next is due when the workflows differ from its."""
        self._published = record.workflows


@dataclass
class Served:
    """Workflow versions run by code (per orchestrator) and deployed as documents."""

    orchestrators: dict[str, OrchestratorWorkflows] = field(default_factory=dict)
    documents: set[tuple[str, str]] = field(default_factory=set)

    @property
    def known(self) -> bool:
        """Whether any orchestrator has said what it runs (if none has, nothing can be
        told: the check lets every start through)."""
        return bool(self.orchestrators)

    def versions(self) -> dict[str, set[str]]:
        """Every workflow name and its versions, code and documents together."""
        out: dict[str, set[str]] = {}
        for record in self.orchestrators.values():
            for entry in record.workflows:
                name, _, version = entry.rpartition(":")
                out.setdefault(name, set()).add(version)
        for name, version in self.documents:
            out.setdefault(name, set()).add(version)
        return out

    def run_by(self, name: str) -> list[str]:
        """The orchestrators whose code has workflow `name`."""
        return sorted(
            o
            for o, record in self.orchestrators.items()
            if any(e.rpartition(":")[0] == name for e in record.workflows)
        )

    def unknown(self, name: str, version: str | None) -> str | None:
        """Why a start of `name` (at `version`) would be rejected; None if it is known
        (or nothing is known)."""
        if not self.known:
            return None
        versions = self.versions()
        known = versions.get(name)
        if not known:
            names = ", ".join(sorted(versions)) or "none"
            return f"unknown workflow {name!r}: the orchestrators run {names}"
        if version is not None and version not in known:
            listed = ", ".join(sorted(known, key=version_key))
            return f"unknown version {version!r} of workflow {name!r} (known: {listed})"
        return None

    @classmethod
    def load(cls, settings: Settings) -> Served:
        """Read both topics to their ends (a missing topic reads as empty)."""
        topics = Topics(settings)
        served = cls()
        consumer = clients.consumer(settings, None)
        try:
            for message in _read(consumer, topics.orchestrators, settings):
                key = (message.key() or b"").decode("utf-8", "replace")
                if message.value() is None:
                    served.orchestrators.pop(key, None)
                    continue
                try:
                    record = codec.decode(message.value())
                except codec.CodecError:
                    continue
                if isinstance(record, OrchestratorWorkflows):
                    served.orchestrators[key] = record
            for message in _read(consumer, topics.workflows, settings):
                name, _, version = (message.key() or b"").decode("utf-8", "replace").partition(":")
                if message.value() is None:
                    served.documents.discard((name, version))
                elif name and version:
                    served.documents.add((name, version))
        finally:
            close_consumer(consumer)
        return served


def _read(consumer: Any, topic: str, settings: Settings) -> list[Any]:
    partitions = topic_partitions(consumer, topic, settings.connect_timeout)
    if not partitions:
        return []
    return [m for batch in read_to_end(consumer, topic, partitions) for m in batch]
