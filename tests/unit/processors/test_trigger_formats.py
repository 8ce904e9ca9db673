"""Decoding source records in each trigger format, on plain SourceRecord objects."""

from __future__ import annotations

import base64
import json
from io import BytesIO
from pathlib import Path

import pytest
from fastavro import parse_schema, schemaless_writer

from replayflow.codec import MAGIC, fingerprint_bytes
from replayflow.processors.trigger_formats import (
    AvroSchema,
    decode_cloudevent,
    decode_json,
    decode_raw,
    decode_text,
    decoder_for,
    jsonable,
)
from replayflow.processors.trigger_source import SourceRecord, Unmappable

ORDER_SCHEMA = {
    "type": "record",
    "name": "Order",
    "namespace": "shop",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "long"},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "blob", "type": "bytes", "default": ""},
    ],
}
OTHER_SCHEMA = {"type": "record", "name": "Other", "fields": [{"name": "x", "type": "int"}]}


def record(value: bytes | None, key: bytes | None = b"k", headers: tuple = ()) -> SourceRecord:
    return SourceRecord("src", 0, 7, key, value, headers)


def avro_body(schema: dict, value: dict) -> bytes:
    out = BytesIO()
    schemaless_writer(out, parse_schema(schema), value)
    return out.getvalue()


ORDER = {"id": "o-1", "amount": 12, "note": None, "blob": b"\x00\xff"}


# -- json, text, raw ---------------------------------------------------------------------


def test_json_values_of_any_kind() -> None:
    assert decode_json(record(b'{"a": [1, 2]}')) == {"a": [1, 2]}
    assert decode_json(record(b'"text"')) == "text"
    assert decode_json(record(b"42")) == 42


@pytest.mark.parametrize("value", [b"{not json", b"\xff\xfe\x00", b""])
def test_json_that_is_not_json_is_unmappable(value: bytes) -> None:
    with pytest.raises(Unmappable, match="not JSON") as caught:
        decode_json(record(value))
    assert caught.value.error_type == "Undecodable"


@pytest.mark.parametrize("decode", [decode_json, decode_text, decode_raw, decode_cloudevent])
def test_a_tombstone_is_unmappable_in_every_format(decode) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unmappable, match="tombstone"):
        decode(record(None))


def test_text_is_utf8_and_raw_is_base64() -> None:
    assert decode_text(record("grüß".encode())) == "grüß"
    with pytest.raises(Unmappable, match="UTF-8"):
        decode_text(record(b"\xff"))
    assert decode_raw(record(b"\x00\xff")) == base64.b64encode(b"\x00\xff").decode()


# -- Avro ----------------------------------------------------------------------------------


def test_avro_single_object_with_the_schema_file(tmp_path: Path) -> None:
    path = tmp_path / "order.avsc"
    path.write_text(json.dumps(ORDER_SCHEMA))
    decode = decoder_for("avro", AvroSchema.from_file(path))
    value = MAGIC + fingerprint_bytes(ORDER_SCHEMA) + avro_body(ORDER_SCHEMA, ORDER)
    assert decode(record(value)) == {
        "id": "o-1",
        "amount": 12,
        "note": None,
        "blob": base64.b64encode(b"\x00\xff").decode(),
    }


def test_avro_single_object_refuses_another_fingerprint_or_no_header() -> None:
    decode = decoder_for("avro", AvroSchema.from_dict(ORDER_SCHEMA))
    other = MAGIC + fingerprint_bytes(OTHER_SCHEMA) + avro_body(OTHER_SCHEMA, {"x": 1})
    with pytest.raises(Unmappable, match="fingerprint"):
        decode(record(other))
    with pytest.raises(Unmappable, match="not Avro single-object"):
        decode(record(b'{"id": "o-1"}'))


def test_avro_body_that_does_not_fit_the_schema() -> None:
    decode = decoder_for("avro", AvroSchema.from_dict(ORDER_SCHEMA))
    header = MAGIC + fingerprint_bytes(ORDER_SCHEMA)
    with pytest.raises(Unmappable, match="does not match"):
        decode(record(header + b"\x08o-"))  # a string cut short
    with pytest.raises(Unmappable, match="left over"):
        decode(record(header + avro_body(ORDER_SCHEMA, ORDER) + b"\x00\x00"))


def test_confluent_wire_format_with_a_schema_file() -> None:
    decode = decoder_for("confluent", AvroSchema.from_dict(ORDER_SCHEMA), schema_id=None)
    value = b"\x00" + (42).to_bytes(4, "big") + avro_body(ORDER_SCHEMA, ORDER)
    assert decode(record(value))["id"] == "o-1"


def test_confluent_checks_the_magic_byte_and_the_schema_id() -> None:
    body = avro_body(ORDER_SCHEMA, ORDER)
    pinned = decoder_for("confluent", AvroSchema.from_dict(ORDER_SCHEMA), schema_id=7)
    assert pinned(record(b"\x00" + (7).to_bytes(4, "big") + body))["amount"] == 12
    with pytest.raises(Unmappable, match="schema id 42, not 7"):
        pinned(record(b"\x00" + (42).to_bytes(4, "big") + body))
    with pytest.raises(Unmappable, match="Confluent wire format"):
        pinned(record(b"\x01" + (7).to_bytes(4, "big") + body))
    with pytest.raises(Unmappable, match="Confluent wire format"):
        pinned(record(b"\x00\x00"))


def test_a_schema_file_that_is_not_a_schema_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read"):
        AvroSchema.from_file(tmp_path / "missing.avsc")
    bad = tmp_path / "bad.avsc"
    bad.write_text('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}')
    with pytest.raises(ValueError, match="not an Avro schema"):
        AvroSchema.from_file(bad)


def test_jsonable_turns_avro_only_types_into_text() -> None:
    import datetime
    import decimal
    import uuid

    value = {
        "d": decimal.Decimal("1.50"),
        "u": uuid.UUID(int=1),
        "t": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "day": datetime.date(2026, 1, 2),
        "list": [b"\x01"],
    }
    assert jsonable(value) == {
        "d": "1.50",
        "u": "00000000-0000-0000-0000-000000000001",
        "t": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "list": ["AQ=="],
    }


# -- CloudEvents -----------------------------------------------------------------------------

EVENT = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "/shop",
    "type": "com.example.order.placed",
    "datacontenttype": "application/json",
    "data": {"orderId": "o-1"},
}


def test_cloudevent_in_structured_mode() -> None:
    headers = (("content-type", b"application/cloudevents+json; charset=utf-8"),)
    assert decode_cloudevent(record(json.dumps(EVENT).encode(), headers=headers)) == EVENT
    # Without a content-type header too: the value is taken as structured mode.
    assert decode_cloudevent(record(json.dumps(EVENT).encode())) == EVENT


def test_cloudevent_in_binary_mode() -> None:
    headers = (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_source", b"/shop"),
        ("ce_type", b"com.example.order.placed"),
        ("ce_subject", b"o-1"),
        ("content-type", b"application/json"),
    )
    event = decode_cloudevent(record(b'{"orderId": "o-1"}', headers=headers))
    assert event == {**EVENT, "subject": "o-1"}


def test_binary_mode_data_that_is_text_or_bytes() -> None:
    base = (("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"/s"), ("ce_type", b"t"))
    text = decode_cloudevent(record(b"hello", headers=(*base, ("content-type", b"text/plain"))))
    assert text["data"] == "hello"
    raw = decode_cloudevent(
        record(b"\x00\x01", headers=(*base, ("content-type", b"application/octet-stream")))
    )
    assert raw["data_base64"] == "AAE=" and "data" not in raw


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"not json", (), "not a structured-mode CloudEvent"),
        (b"[1, 2]", (), "must be a JSON object"),
        (json.dumps({**EVENT, "id": ""}).encode(), (), "no id"),
        (json.dumps({k: v for k, v in EVENT.items() if k != "type"}).encode(), (), "no type"),
        (json.dumps({**EVENT, "specversion": "0.3"}).encode(), (), "specversion"),
        (b"[]", (("content-type", b"application/cloudevents-batch+json"),), "batch mode"),
        (b"{}", (("ce_specversion", b"1.0"), ("ce_id", b"1")), "no source, type"),
        (b"{bad", (("ce_specversion", b"1.0"),), "data is not JSON"),
    ],
)
def test_records_that_are_not_cloudevents(value: bytes, headers: tuple, reason: str) -> None:
    with pytest.raises(Unmappable, match=reason):
        decode_cloudevent(record(value, headers=headers))


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown trigger format"):
        decoder_for("xml")
    with pytest.raises(ValueError, match="needs an Avro schema"):
        decoder_for("avro")
