"""Dead letters: list the entries of replayflow.dlq and redrive one, once.

An entry's id is `<dlq partition>-<dlq offset>`. Redriving produces the entry's
original key and value back to its source topic and, in the SAME Kafka transaction, a
marker record on the entry's dlq partition (same key; JSON value
{"redrive_of": id, ...}; header `replayflow-redrive`). The transactional id is derived
from the entry, so two redrives of one entry (from any processes) fence each other:
the later one starts only after the earlier has committed or been aborted, reads the
partition (read_committed) and finds the marker if there is one -> 409. A redrive
therefore happens at most once per entry, and a committed one always has its marker.
Markers are not Avro, so DeadLetter readers (`replayflow dlq`) skip them.

A redrive that can only fail again is refused with the reason (409): bytes that are no
command, a key that is not the instance id, a start of a workflow no orchestrator runs
yet (see `why_not`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer

from replayflow import codec
from replayflow.api import values
from replayflow.core.errors import ReplayflowError
from replayflow.core.messages import Command, DeadLetter, FireTimer, StartWorkflow
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.membership import close_consumer
from replayflow.kafka.reading import BEGINNING, read_all
from replayflow.processors.served import Served
from replayflow.settings import Settings
from replayflow.topics import Topics

MARKER_HEADER = "replayflow-redrive"
#: Bytes of an original record shown decoded in a list of entries.
MAX_SHOWN = 64 * 1024


class DeadLetterError(ReplayflowError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _marker_of(message: Any) -> str | None:
    for name, _ in message.headers() or ():
        if name == MARKER_HEADER:
            try:
                return str(json.loads(message.value())["redrive_of"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


class DeadLetters:
    def __init__(self, settings: Settings, node: str) -> None:
        self.settings = settings
        self.node = node
        self.topic = Topics(settings).dlq
        self._served: Served | None = None  # read once per redrive (see why_not)

    def _consumer(self) -> Consumer:
        return clients.consumer(self.settings, None)

    def _read(self, consumer: Consumer, starts: dict[int, int]) -> list[Any]:
        """Every message of the given partitions from the given offsets to their end."""
        return read_all(consumer, self.topic, starts)

    def _partitions(self, consumer: Consumer) -> list[int]:
        return topic_partitions(consumer, self.topic)

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest `limit` entries, newest last, each with whether it was redriven."""
        consumer = self._consumer()
        try:
            messages = self._read(consumer, dict.fromkeys(self._partitions(consumer), BEGINNING))
        finally:
            close_consumer(consumer)
        entries: dict[str, dict[str, Any]] = {}
        redriven: dict[str, dict[str, Any]] = {}
        for message in messages:
            entry_id = f"{message.partition()}-{message.offset()}"
            marker = _marker_of(message)
            if marker is not None:
                redriven[marker] = json.loads(message.value())
                continue
            try:
                record = codec.decode(message.value() or b"")
            except codec.CodecError:
                continue
            if isinstance(record, DeadLetter):
                entries[entry_id] = _entry(entry_id, record)
        for redriven_id, done in redriven.items():
            if redriven_id in entries:
                entries[redriven_id]["redriven"] = True
                entries[redriven_id]["redriven_at"] = done.get("at")
        ordered = sorted(entries.values(), key=lambda e: (e["at"], e["id"]))
        return ordered[-limit:]

    def _check(self, entry_id: str) -> tuple[Any, DeadLetter]:
        """The entry's message and record; DeadLetterError 404 when there is no such
        dead letter, 409 when it was redriven already (or has nothing to redrive)."""
        partition, offset = (int(x) for x in entry_id.split("-"))
        consumer = self._consumer()
        try:
            if partition not in self._partitions(consumer):
                raise DeadLetterError(404, f"no dead-letter entry {entry_id}")
            messages = self._read(consumer, {partition: offset})
        finally:
            close_consumer(consumer)
        if not messages or messages[0].offset() != offset:
            raise DeadLetterError(404, f"no dead-letter entry {entry_id}")
        first = messages[0]
        try:
            record = codec.decode(first.value() or b"")
        except codec.CodecError:
            record = None
        if not isinstance(record, DeadLetter):
            raise DeadLetterError(404, f"{entry_id} is not a dead-letter entry")
        for message in messages[1:]:
            if _marker_of(message) == entry_id:
                marker = json.loads(message.value())
                at = marker.get("at")
                when = (
                    datetime.fromtimestamp(at / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
                    if isinstance(at, int)
                    else "?"
                )
                raise DeadLetterError(
                    409, f"{entry_id} was redriven already (at {when} by {marker.get('by')})"
                )
        if record.value is None and record.value_size:
            raise DeadLetterError(
                409,
                f"{entry_id} kept only the size ({record.value_size} bytes) and SHA-256 of its "
                f"original value, not the value; the original is at {record.source_topic} "
                f"partition {record.partition} offset {record.offset} while the topic keeps it",
            )
        if record.value is None:
            raise DeadLetterError(409, f"{entry_id} has no original value to redrive")
        refused = self.why_not(record)
        if refused is not None:
            raise DeadLetterError(409, f"{entry_id} cannot succeed if redriven: {refused}")
        return first, record

    def why_not(self, record: DeadLetter) -> str | None:
        """Why redriving `record` would only fail again (None: it may succeed now)."""
        if record.error_type == "WrongKey":
            return "its key is not its instance id, and a redrive keeps the key"
        try:
            original = codec.decode(record.value or b"")
        except codec.CodecError as exc:
            return f"its bytes are not a replayflow record ({exc.reason})"
        if not isinstance(original, Command) or isinstance(original, FireTimer):
            return f"a {type(original).__name__} is not a command"
        if isinstance(original, StartWorkflow):
            if self._served is None:
                self._served = Served.load(self.settings)
            unknown = self._served.unknown(original.workflow, original.version)
            if unknown is not None:
                return f"{unknown} (deploy it or start an orchestrator that runs it first)"
        return None

    def redrive(self, entry_id: str) -> dict[str, Any]:
        # A first check without a producer: unknown and redriven entries cost no
        # transactional id (and no fencing of a redrive under way).
        self._served = None
        self._check(entry_id)
        # Initialising the transactional id fences an earlier redrive of this entry.
        producer = clients.transactional_producer(self.settings, f"{self.topic}.redrive.{entry_id}")
        try:
            # Again after fencing: an earlier redrive has committed (its marker is read
            # now) or been aborted.
            first, record = self._check(entry_id)
            partition = first.partition()
            at = int(time.time() * 1000)
            marker = {
                "redrive_of": entry_id,
                "at": at,
                "by": self.node,
                "to": record.source_topic,
            }
            producer.begin_transaction()
            producer.produce(
                record.source_topic,
                key=record.key,
                value=record.value,
                headers=[("replayflow-redriven-from", entry_id.encode())],
            )
            producer.produce(
                self.topic,
                key=first.key(),
                value=json.dumps(marker).encode(),
                partition=partition,
                headers=[(MARKER_HEADER, b"1")],
            )
            producer.commit_transaction(30)
        finally:
            producer.flush(10)
            del producer
        return {"id": entry_id, "redriven": True, "to": record.source_topic, "at": at}


def original_of(value: bytes) -> dict[str, Any] | None:
    """The dead-lettered record decoded, as JSON: its type and fields (payloads as JSON
    values, bytes as text), or None when its bytes are no replayflow record."""
    try:
        decoded = codec.decode(value)
    except codec.CodecError:
        return None
    if len(value) > MAX_SHOWN:  # a list of entries stays small: the type says enough
        return {"type": type(decoded).__name__, "too_large_to_show": len(value)}
    fields: dict[str, Any] = {}
    if dataclasses.is_dataclass(decoded):
        for f in dataclasses.fields(decoded):
            item = getattr(decoded, f.name)
            if dataclasses.is_dataclass(item):
                item = dataclasses.asdict(item)  # type: ignore[arg-type]
            elif isinstance(item, bytes):
                item = item.decode("utf-8", "replace")
            fields[f.name] = item
    return {"type": type(decoded).__name__, **values.decoded(fields)}


def _entry(entry_id: str, record: DeadLetter) -> dict[str, Any]:
    value = record.value or b""
    original = original_of(value)
    return {
        "id": entry_id,
        "source_topic": record.source_topic,
        "source_partition": record.partition,
        "source_offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key else None,
        "value_hex": value[:4096].hex() if value else None,
        "value_size": record.value_size if record.value_size is not None else len(value),
        "value_sha256": record.value_sha256,
        "value_kept": record.value is not None or not record.value_size,
        "original": original,
        "reason": record.reason,
        "error_type": record.error_type,
        "at": record.at,
        "redriven": False,
        "redriven_at": None,
    }
