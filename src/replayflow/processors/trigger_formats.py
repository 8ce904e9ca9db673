"""Reading a source record's value in a trigger's format, into a JSON value.

Each decoder takes a SourceRecord and returns a JSON-compatible Python value (what jq
expressions and workflow inputs see), or raises Unmappable with a reason fit for a dead
letter. Avro is read with fastavro against the schema file the trigger names; Avro
values JSON has no type for become text (bytes and fixed as base64, decimals, UUIDs
and times in their usual text forms).

CloudEvents follow the Kafka protocol binding of the CloudEvents spec: a record with a
`ce_specversion` header is binary mode (attributes in `ce_*` headers, `content-type`
as datacontenttype, the value is the data); otherwise the value is one event in JSON
structured mode. Either way the result is the structured-mode envelope: `specversion`,
`id`, `source`, `type`, other attributes, and `data` (or `data_base64` for data that is
neither JSON nor text).
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader

from replayflow.codec import MAGIC, fingerprint_bytes
from replayflow.processors.trigger_source import SourceRecord, Unmappable

Decoder = Callable[[SourceRecord], Any]

CONFLUENT_MAGIC = 0
CE_PREFIX = "ce_"
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")


@dataclass(frozen=True)
class AvroSchema:
    """A writer schema given as a file: parsed once, with its single-object fingerprint."""

    parsed: Any
    fingerprint: bytes
    name: str

    @classmethod
    def from_dict(cls, raw: Any, name: str = "<schema>") -> AvroSchema:
        try:
            parsed = parse_schema(raw)
            fingerprint = fingerprint_bytes(raw)
        except Exception as exc:  # fastavro raises several kinds for a bad schema
            raise ValueError(f"{name} is not an Avro schema: {exc}") from None
        return cls(parsed, fingerprint, name)

    @classmethod
    def from_file(cls, path: str | Path) -> AvroSchema:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read the Avro schema file {str(path)!r}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"the Avro schema file {str(path)!r} is not JSON: {exc}") from None
        return cls.from_dict(raw, str(path))


def _value(record: SourceRecord) -> bytes:
    if record.value is None:
        raise Unmappable("the record has no value (a tombstone)")
    return record.value


def decode_json(record: SourceRecord) -> Any:
    try:
        return json.loads(_value(record))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unmappable(f"the value is not JSON: {exc}") from None


def decode_text(record: SourceRecord) -> Any:
    try:
        return _value(record).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Unmappable(f"the value is not UTF-8 text: {exc}") from None


def decode_raw(record: SourceRecord) -> Any:
    return base64.b64encode(_value(record)).decode("ascii")


def jsonable(value: Any) -> Any:
    """An Avro value as JSON: bytes as base64, decimals, UUIDs and times as text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    return value


def _avro_body(body: bytes, schema: AvroSchema, what: str) -> Any:
    stream = BytesIO(body)
    try:
        value = schemaless_reader(stream, schema.parsed, None)
    except Exception as exc:  # EOFError, ValueError, IndexError, ...: the bytes do not fit
        raise Unmappable(
            f"the {what} body does not match {schema.name}: {type(exc).__name__}: {exc}"
        ) from None
    if stream.tell() != len(body):
        raise Unmappable(
            f"the {what} body has {len(body) - stream.tell()} bytes left over after a "
            f"record of {schema.name}: written with another schema?"
        )
    return jsonable(value)


def avro_single_object(schema: AvroSchema) -> Decoder:
    def decode(record: SourceRecord) -> Any:
        value = _value(record)
        if value[:2] != MAGIC or len(value) < 10:
            raise Unmappable(
                "the value is not Avro single-object encoding (it does not start with C3 01 "
                "and an 8-byte fingerprint)"
            )
        fingerprint = value[2:10]
        if fingerprint != schema.fingerprint:
            raise Unmappable(
                f"the value was written with schema fingerprint {fingerprint.hex()}, not "
                f"{schema.fingerprint.hex()} of {schema.name}"
            )
        return _avro_body(value[10:], schema, "Avro single-object")

    return decode


def confluent(schema: AvroSchema, schema_id: int | None = None) -> Decoder:
    def decode(record: SourceRecord) -> Any:
        value = _value(record)
        if len(value) < 5 or value[0] != CONFLUENT_MAGIC:
            raise Unmappable(
                "the value is not in Confluent wire format (magic byte 0 and a 4-byte schema id)"
            )
        found = int.from_bytes(value[1:5], "big")
        if schema_id is not None and found != schema_id:
            raise Unmappable(f"the value names schema id {found}, not {schema_id}")
        return _avro_body(value[5:], schema, "Confluent")

    return decode


def _text(value: bytes | None, what: str) -> str:
    try:
        return (value or b"").decode("utf-8")
    except UnicodeDecodeError:
        raise Unmappable(f"{what} is not UTF-8 text") from None


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True  # the binding's default for a binary-mode event without one
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def _check_event(event: Any, mode: str) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise Unmappable(f"a {mode}-mode CloudEvent must be a JSON object")
    missing = [a for a in REQUIRED_ATTRIBUTES if not isinstance(event.get(a), str) or not event[a]]
    if missing:
        raise Unmappable(f"not a CloudEvent ({mode} mode): no {', '.join(missing)}")
    if not str(event["specversion"]).startswith("1."):
        raise Unmappable(f"CloudEvents specversion {event['specversion']!r} is not 1.x")
    return event


def _binary_event(record: SourceRecord) -> dict[str, Any]:
    event: dict[str, Any] = {}
    content_type = None
    for name, raw in record.headers:
        lowered = name.lower()
        if lowered.startswith(CE_PREFIX):
            event[lowered[len(CE_PREFIX) :]] = _text(raw, f"header {name}")
        elif lowered == "content-type":
            content_type = _text(raw, "header content-type")
    if content_type is not None:
        event["datacontenttype"] = content_type
    if record.value is not None:
        if _is_json(content_type):
            try:
                event["data"] = json.loads(record.value)
            except (UnicodeDecodeError, ValueError) as exc:
                raise Unmappable(f"the CloudEvent's data is not JSON: {exc}") from None
        elif content_type is not None and content_type.lower().startswith("text/"):
            event["data"] = _text(record.value, "the CloudEvent's text data")
        else:
            event["data_base64"] = base64.b64encode(record.value).decode("ascii")
    return _check_event(event, "binary")


def decode_cloudevent(record: SourceRecord) -> Any:
    if record.has_header("ce_specversion"):
        return _binary_event(record)
    content_type = record.header("content-type")
    if content_type is not None and b"cloudevents-batch" in content_type.lower():
        raise Unmappable("CloudEvents batch mode is not supported: one event per record")
    try:
        event = json.loads(_value(record))
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unmappable(
            f"the value is not a structured-mode CloudEvent (not JSON: {exc}) and there is "
            "no ce_specversion header (binary mode)"
        ) from None
    return _check_event(event, "structured")


def decoder_for(
    format: str, schema: AvroSchema | None = None, schema_id: int | None = None
) -> Decoder:
    """The decoder of a format (see replayflow.core.triggers.FORMATS)."""
    if format in ("avro", "confluent"):
        if schema is None:
            raise ValueError(f"format {format!r} needs an Avro schema")
        return avro_single_object(schema) if format == "avro" else confluent(schema, schema_id)
    simple: dict[str, Decoder] = {
        "json": decode_json,
        "text": decode_text,
        "raw": decode_raw,
        "cloudevents": decode_cloudevent,
    }
    if format not in simple:
        raise ValueError(f"unknown trigger format {format!r}")
    return simple[format]
