"""Deployed documents: `deploy()` validates a document and produces it to the compacted
topic replayflow.workflows (key '<name>:<version>'); a DocumentStore reads that topic at
process start, follows it in a background thread, and answers the registry as a
workflow source, so every orchestrator and worker knows every deployed version.

A start without a version runs the newest deployed version (natural version order);
an instance keeps the version it started with, since its state records it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replayflow.core.definitions import WorkflowDef
from replayflow.core.errors import ValidationError
from replayflow.core.names import version_key
from replayflow.dsl.interpreter import build
from replayflow.dsl.records import WorkflowDocument
from replayflow.dsl.secrets import Secrets
from replayflow.dsl.validate import load_valid
from replayflow.settings import Settings

log = logging.getLogger("replayflow.dsl.documents")


def digest_of(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def record_of(text: str, path: str = "<document>", now_ms: int | None = None) -> WorkflowDocument:
    """Validate `text` and make its deployment record."""
    data = load_valid(text, path).data
    meta = data["document"]
    build(data)  # names and versions usable by the engine
    return WorkflowDocument(
        name=meta["name"],
        version=str(meta["version"]),
        namespace=meta["namespace"],
        dsl=str(meta["dsl"]),
        document=json.dumps(data, separators=(",", ":"), ensure_ascii=False),
        source=text,
        digest=digest_of(data),
        deployed_at=now_ms if now_ms is not None else int(time.time() * 1000),
    )


def workflow_from_text(text: str, path: str = "<document>") -> WorkflowDef:
    """Validate a document and build the WorkflowDef that interprets it."""
    return build(load_valid(text, path).data)


def workflow_from_file(path: str | Path) -> WorkflowDef:
    path = Path(path)
    return workflow_from_text(path.read_text(encoding="utf-8"), str(path))


def workflow_from_dict(document: dict[str, Any]) -> WorkflowDef:
    return workflow_from_text(json.dumps(document))


class DocumentStore:
    """The deployed documents of one cluster and namespace; a registry WorkflowSource.

    store = DocumentStore(settings).start()      # caught up with the topic
    registry.add_source(store)
    """

    def __init__(self, settings: Settings, secrets: Secrets | None = None) -> None:
        self.settings = settings
        self._secrets = secrets or Secrets()
        self._records: dict[str, dict[str, WorkflowDocument]] = {}
        self._defs: dict[tuple[str, str], WorkflowDef] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Any = None
        self._changed = threading.Condition(self._lock)

    # -- WorkflowSource ----------------------------------------------------------------

    def workflow(self, name: str, version: str | None) -> WorkflowDef | None:
        with self._lock:
            versions = self._records.get(name)
            if not versions:
                return None
            if version is None:
                version = max(versions, key=version_key)
            record = versions.get(version)
            if record is None:
                return None
            cached = self._defs.get((name, version))
            if cached is None:
                cached = build(json.loads(record.document), self._secrets)
                self._defs[(name, version)] = cached
            return cached

    def documents(self) -> list[WorkflowDocument]:
        with self._lock:
            return [r for versions in self._records.values() for r in versions.values()]

    def get(self, name: str, version: str) -> WorkflowDocument | None:
        with self._lock:
            return self._records.get(name, {}).get(version)

    def wait_for(self, name: str, version: str, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._records.get(name, {}).get(version) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def add(self, record: WorkflowDocument) -> None:
        """Know a record (what the follower does for each one it reads)."""
        with self._changed:
            known = self._records.setdefault(record.name, {}).get(record.version)
            if known is not None and known.digest != record.digest:
                log.error("ignoring a second, different document for %s", record.key)
                return
            self._records[record.name][record.version] = record
            self._changed.notify_all()

    def _remove(self, key: str) -> None:
        name, _, version = key.rpartition(":")
        with self._changed:
            self._records.get(name, {}).pop(version, None)
            self._defs.pop((name, version), None)

    # -- following the topic -------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> DocumentStore:
        """Read the topic to its current end, then follow it in a daemon thread."""
        from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

        from replayflow.processors.kafka_config import consumer_config, watermarks
        from replayflow.topics import Topics

        topic = Topics(self.settings).workflows
        consumer = Consumer(
            consumer_config(
                self.settings, None, **{"group.id": f"replayflow-documents-{time.monotonic_ns()}"}
            )
        )
        metadata = consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
        ends = {p: watermarks(consumer, topic, p)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._consumer = consumer
        deadline = time.monotonic() + timeout
        positions: dict[int, int] = dict.fromkeys(partitions, 0)
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end in {timeout} s")
            for message in consumer.consume(1000, timeout=0.5):
                self._apply(message)
                positions[message.partition() or 0] = (message.offset() or 0) + 1
        self._thread = threading.Thread(
            target=self._follow, name="replayflow-documents", daemon=True
        )
        self._thread.start()
        return self

    def _apply(self, message: Any) -> None:
        from replayflow import codec

        if message.error() is not None:
            return
        key = (message.key() or b"").decode(errors="replace")
        if message.value() is None:
            self._remove(key)
            return
        try:
            record = codec.decode(message.value())
        except codec.CodecError as exc:
            log.error("undecodable document record %s: %s", key, exc.reason)
            return
        if isinstance(record, WorkflowDocument):
            self.add(record)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                for message in self._consumer.consume(100, timeout=0.2):
                    self._apply(message)
            except Exception:  # keep following; a broken record is logged in _apply
                log.exception("document follower")
                time.sleep(1)
        self._consumer.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> DocumentStore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Deployed:
    record: WorkflowDocument
    created: bool  # False: this exact document was deployed already


def deploy(
    settings: Settings, text: str, path: str = "<document>", store: DocumentStore | None = None
) -> Deployed:
    """Validate and deploy a document. The same name and version with other content is
    a ValidationError: documents are immutable per version."""
    from confluent_kafka import Producer

    from replayflow import codec
    from replayflow.processors.kafka_config import producer_config
    from replayflow.topics import Topics

    record = record_of(text, path)
    own = store is None
    reader = store or DocumentStore(settings).start()
    try:
        known = reader.get(record.name, record.version)
    finally:
        if own:
            reader.stop()
    if known is not None:
        if known.digest != record.digest:
            raise ValidationError(
                f"{record.name} version {record.version} is deployed already with other "
                "content: documents are immutable per version, give this one a new version"
            )
        return Deployed(known, created=False)
    producer = Producer(producer_config(settings))
    producer.produce(
        Topics(settings).workflows, key=record.key.encode(), value=codec.encode(record)
    )
    if producer.flush(30):
        raise TimeoutError("Kafka did not acknowledge the document in 30 s")
    return Deployed(record, created=True)
