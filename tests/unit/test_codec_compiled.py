"""The compiled Avro writers and readers (codec_compiled.py) write and read exactly what
fastavro does, for every version of every schema shipped, and never accept what fastavro
refuses."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayflow import codec
from replayflow.codec import CodecError
from replayflow.codec_compiled import compile_reader, compile_writer
from replayflow.core.messages import ErrorInfo, StepFailed, StepScheduled

SCHEMAS = [
    schema for versions in codec.default_codec()._versions.values() for schema in versions.values()
]
LONGS = st.one_of(
    st.integers(min_value=-100, max_value=100),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([-(2**63), 2**63 - 1, 63, 64, -64, -65, 1_700_000_000_000]),
)


def _values(schema: Any, names: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values fastavro accepts for `schema`."""
    if isinstance(schema, str) and schema in names:
        return _values(names[schema], names)
    if isinstance(schema, dict) and schema["type"] == "record":
        names[schema["name"]] = schema
        return st.fixed_dictionaries(
            {f["name"]: _values(f["type"], names) for f in schema["fields"]}
        )
    if isinstance(schema, dict) and schema["type"] == "array":
        return st.lists(_values(schema["items"], names), max_size=3)
    if isinstance(schema, dict):
        return _values(schema["type"], names)
    if isinstance(schema, list):
        return st.one_of(*[_values(branch, names) for branch in schema])
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(min_value=-(2**31), max_value=2**31 - 1),
        "long": LONGS,
        "string": st.text(max_size=80),
        "bytes": st.binary(max_size=80),
    }[schema]


def _fastavro(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def test_every_shipped_schema_compiles() -> None:
    missing = [s.full_name for s in SCHEMAS if compile_writer(s.parsed) is None]
    assert missing == []


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.full_name}.v{s.version}")
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_compiled_writer_writes_what_fastavro_writes(schema: Any, data: st.DataObject) -> None:
    record = data.draw(_values(schema.parsed, {}))
    written = bytearray()
    writer = compile_writer(schema.parsed)
    assert writer is not None
    writer(written, record)
    assert bytes(written) == _fastavro(schema.parsed, record)


def test_schemas_it_does_not_cover_are_left_to_fastavro() -> None:
    for field_type in (
        {"type": "enum", "name": "E", "symbols": ["A"]},
        {"type": "map", "values": "string"},
        ["null", "string", "long"],
        {"type": "long", "logicalType": "timestamp-millis"},
        "double",
    ):
        schema = {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]}
        parsed: Any = fastavro.parse_schema(schema)
        assert compile_writer(parsed) is None
        assert compile_reader(parsed, 0) is None


def _step_scheduled(**changes: Any) -> StepScheduled:
    fields: dict[str, Any] = {
        "instance_id": "w-1",
        "seq": 3,
        "at": 1_700_000_000_000,
        "step": "a",
        "function": "f",
        "attempt": 1,
        "input": "null",
        "timeout_ms": None,
        "max_attempts": 3,
    }
    fields.update(changes)
    return StepScheduled(**fields)


@pytest.mark.parametrize(
    "bad",
    [
        {"seq": 2**63},  # out of a long's range
        {"at": -(2**63) - 1},
        {"step": b"a"},  # bytes where a string goes
        {"timeout_ms": "10"},  # a string in a union of null and long
        {"timeout_ms": 7.0},  # a float there: fastavro truncates only outside a union
        {"input": "\ud800"},  # a lone surrogate: not UTF-8
    ],
)
def test_what_fastavro_refuses_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        codec.encode(_step_scheduled(**bad))


@pytest.mark.parametrize("odd", [{"seq": 1.0}, {"at": 100.5}])
def test_what_the_compiled_writer_refuses_fastavro_writes(odd: dict[str, Any]) -> None:
    # fastavro truncates a float where a long goes; the compiled writer raises and the
    # codec falls back to fastavro, so the bytes are fastavro's either way.
    message = _step_scheduled(**odd)
    header, schema, to_dict, _ = codec.default_codec()._encoders[StepScheduled]
    assert codec.encode(message) == header + _fastavro(schema, to_dict(message))


def test_the_codec_writes_compiled_bytes_that_decode() -> None:
    failed = StepFailed(
        instance_id="w-1",
        seq=4,
        at=1_700_000_000_000,
        step="a",
        attempt=2,
        error=ErrorInfo(type="E", message="é" * 70, retryable=False, details=None),
        retry_at=-5,
    )
    for message in (_step_scheduled(), _step_scheduled(input="x" * 300, seq=-1), failed):
        encoded = codec.encode(message)
        assert codec.decode(encoded) == message
        header, schema, to_dict, _ = codec.default_codec()._encoders[type(message)]
        assert encoded == header + _fastavro(schema, to_dict(message))


def _fastavro_read(schema: Any, body: bytes) -> Any:
    """fastavro's record, or its error as the exception type, and whether bytes are left."""
    stream = io.BytesIO(body)
    try:
        record = fastavro.schemaless_reader(stream, schema, None)
    except Exception as exc:
        return type(exc)
    return record if stream.tell() == len(body) else "bytes left over"


def test_every_shipped_schema_compiles_a_reader() -> None:
    assert [s.full_name for s in SCHEMAS if compile_reader(s.parsed, 0) is None] == []


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.full_name}.v{s.version}")
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_compiled_reader_reads_what_fastavro_reads(schema: Any, data: st.DataObject) -> None:
    record = data.draw(_values(schema.parsed, {}))
    body = b"\xc3\x01" + _fastavro(schema.parsed, record)  # after a header of any length
    reader = compile_reader(schema.parsed, 2)
    assert reader is not None
    assert reader(body) == _fastavro_read(schema.parsed, body[2:]) == record


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: f"{s.full_name}.v{s.version}")
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_damaged_bytes_read_as_fastavro_reads_them_or_not_at_all(
    schema: Any, data: st.DataObject
) -> None:
    body = bytearray(_fastavro(schema.parsed, data.draw(_values(schema.parsed, {}))))
    damage = data.draw(st.sampled_from(["cut", "flip", "append", "varint"]))
    at = data.draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
    if damage == "cut":
        del body[at:]
    elif damage == "flip" and body:
        body[at] = data.draw(st.integers(min_value=0, max_value=255))
    elif damage == "append":
        body += data.draw(st.binary(min_size=1, max_size=3))
    else:  # a long varint: past 64 bits, or just long
        body[at:at] = data.draw(st.sampled_from([b"\xff" * 10 + b"\x01", b"\x80\x80\x00"]))
    reader = compile_reader(schema.parsed, 0)
    assert reader is not None
    try:
        compiled = reader(bytes(body))
    except Exception:
        return  # the codec reads it again with fastavro: its record or its error stands
    assert compiled == _fastavro_read(schema.parsed, bytes(body))


def test_the_codec_decodes_with_fastavro_what_the_compiled_reader_refuses() -> None:
    encoded = codec.encode(_step_scheduled())
    with pytest.raises(CodecError, match="truncated"):
        codec.decode(encoded[:-1])
    with pytest.raises(CodecError, match="trailing"):
        codec.decode(encoded + b"\x00")
    assert codec.decode(encoded) == _step_scheduled()
