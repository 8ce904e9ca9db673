"""Deployed documents: `deploy()` validates a document and appends it to a document log
(key '<name>:<version>'); a DocumentStore reads that log at process start, follows it,
and answers the registry as a workflow source, so every orchestrator and worker knows
every deployed version. The log is handed in by whoever composes the process: in a
running engine it is the compacted topic replayflow.workflows
(replayflow.processors.documents.KafkaDocumentLog); the DSL itself does no I/O.

A start without a version runs the newest deployed version (natural version order);
an instance keeps the version it started with, since its state records it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from replayflow import codec
from replayflow.core.definitions import WorkflowDef
from replayflow.core.errors import ValidationError
from replayflow.core.names import version_key
from replayflow.dsl.records import WorkflowDocument
from replayflow.dsl.secrets import Secrets
from replayflow.dsl.validate import load_valid
from replayflow.dsl.workflow import build

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


class DocumentLog(Protocol):
    """Where deployed documents are kept: records keyed '<name>:<version>' whose value
    is an encoded WorkflowDocument, or None (a tombstone: the version is removed)."""

    def follow(self, apply: Callable[[str, bytes | None], None], timeout: float) -> None:
        """Hand every record so far to `apply`, return once caught up, then keep handing
        new ones (from another thread) until close()."""

    def append(self, key: str, value: bytes) -> None:
        """Keep one record durably; raise when that cannot be confirmed."""

    def close(self) -> None: ...


class DocumentStore:
    """The deployed documents of a document log; a registry WorkflowSource.

    store = DocumentStore(KafkaDocumentLog(settings)).start()   # caught up with the log
    registry.add_source(store)
    """

    def __init__(self, log: DocumentLog, secrets: Secrets | None = None) -> None:
        self.log = log
        self._secrets = secrets or Secrets()
        self._records: dict[str, dict[str, WorkflowDocument]] = {}
        self._defs: dict[tuple[str, str], WorkflowDef] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._listeners: list[Callable[[str], None]] = []

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

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(name)` after a version of document `name` is added or removed
        (from the follower's thread)."""
        self._listeners.append(listener)

    def _changed_name(self, name: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(name)
            except Exception:  # one listener's failure must not stop the follower
                log.exception("document listener failed for %s", name)

    def add(self, record: WorkflowDocument) -> None:
        """Know a record (what the follower does for each one it reads)."""
        with self._changed:
            known = self._records.setdefault(record.name, {}).get(record.version)
            if known is not None and known.digest != record.digest:
                log.error("ignoring a second, different document for %s", record.key)
                return
            self._records[record.name][record.version] = record
            self._changed.notify_all()
        if known is None:
            self._changed_name(record.name)

    def _remove(self, key: str) -> None:
        name, _, version = key.rpartition(":")
        with self._changed:
            removed = self._records.get(name, {}).pop(version, None)
            self._defs.pop((name, version), None)
        if removed is not None:
            self._changed_name(name)

    # -- following the log ---------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> DocumentStore:
        """Read the log to its current end, then follow it."""
        self.log.follow(self.apply, timeout)
        return self

    def apply(self, key: str, value: bytes | None) -> None:
        """Know one record of the log (a tombstone removes the version)."""
        if value is None:
            self._remove(key)
            return
        try:
            record = codec.decode(value)
        except codec.CodecError as exc:
            log.error("undecodable document record %s: %s", key, exc.reason)
            return
        if isinstance(record, WorkflowDocument):
            self.add(record)

    def stop(self) -> None:
        self.log.close()

    def __enter__(self) -> DocumentStore:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Deployed:
    record: WorkflowDocument
    created: bool  # False: this exact document was deployed already


_SEEN_TIMEOUT = 10.0


def deploy(store: DocumentStore, text: str, path: str = "<document>") -> Deployed:
    """Validate a document and append it to the store's log; returns once the store has
    read it back (or after 10 s). The same name and version with other content is a
    ValidationError: documents are immutable per version. `store` must be started
    (caught up with its log)."""
    record = record_of(text, path)
    known = store.get(record.name, record.version)
    if known is not None:
        if known.digest != record.digest:
            raise ValidationError(
                f"{record.name} version {record.version} is deployed already with other "
                "content: documents are immutable per version, give this one a new version"
            )
        return Deployed(known, created=False)
    store.log.append(record.key, codec.encode(record))
    # Known to the store before returning, so a deploy right after this one (the same
    # document, or other content for this version) is checked against it.
    store.wait_for(record.name, record.version, _SEEN_TIMEOUT)
    return Deployed(record, created=True)
