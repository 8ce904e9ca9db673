"""The wire format: Avro single-object encoding of every message, its schemas and errors."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import io
import json
import re
import types
import typing
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form
from hypothesis import given
from hypothesis import strategies as st

from replayflow import codec
from replayflow.codec import Codec, CodecError
from replayflow.core.messages import DeadLetter, ErrorInfo, EventAwaited, StartWorkflow, StepFailed
from replayflow.core.schedule_spec import Interval, ScheduleSpec
from replayflow.core.schedule_state import Overlap, ScheduleAction, SchedulePolicies

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas"
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)

# Every module whose dataclasses are records (core messages, the DSL's deployed document).
MESSAGE_CLASSES = sorted(
    (
        c
        for module in map(importlib.import_module, codec.MESSAGE_MODULES)
        for c in vars(module).values()
        if isinstance(c, type) and dataclasses.is_dataclass(c) and c.__module__ == module.__name__
    ),
    key=lambda c: c.__name__,
)


# Nested records whose classes check their values: a valid example of each, with no
# field left at its default.
EXAMPLES: dict[type, Any] = {
    ScheduleSpec: ScheduleSpec(
        cron=("0 8 * * 1-5", "@hourly"),
        intervals=(Interval(every_ms=3_600_000, offset_ms=60_000),),
        timezone="Europe/Berlin",
        start_ms=1_767_225_600_000,
        end_ms=1_798_761_600_000,
        jitter_ms=5_000,
    ),
    ScheduleAction: ScheduleAction(workflow="report", input='{"day": "é✓"}', version="2"),
    SchedulePolicies: SchedulePolicies(
        overlap=Overlap.BUFFER_ALL, catchup_window_ms=60_000, pause_on_failure=True
    ),
}


def sample(cls: type, n: int = 0) -> Any:
    """An instance with a non-default value in every field (None only where no value
    is possible), built from the type hints so a new message class is covered at once."""
    if cls in EXAMPLES:
        return EXAMPLES[cls]
    values: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for i, f in enumerate(dataclasses.fields(cls)):
        hint = hints[f.name]
        options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kind = next(o for o in options if o is not type(None))
        if kind is str:
            values[f.name] = f"order-{n}" if f.name == "instance_id" else f'{{"{f.name}": "é✓"}}'
        elif kind is bool:
            values[f.name] = not f.default if isinstance(f.default, bool) else False
        elif kind is int:
            values[f.name] = 1_732_480_000_000 + 1000 * i + n
        elif kind is bytes:
            values[f.name] = bytes([0, 0xC3, 0x01, 0xFF, i])
        elif typing.get_origin(kind) is list and typing.get_args(kind) == (str,):
            values[f.name] = [f"{f.name}-{n}:1", "é✓:2"]
        elif dataclasses.is_dataclass(kind):
            values[f.name] = sample(typing.cast(type, kind), n)
        elif isinstance(kind, type) and issubclass(kind, enum.Enum):
            values[f.name] = list(kind)[-1]  # the first is often the default
        else:
            raise AssertionError(f"sample() does not know {hint} ({cls.__name__}.{f.name})")
    return cls(**values)


def schema_files() -> list[Path]:
    return sorted(SCHEMAS.rglob("*.avsc"))


def newest_schema_files() -> list[Path]:
    """The newest version of each record: the one replayflow writes."""
    newest: dict[str, Path] = {}
    for path in schema_files():
        name, version = path.name.split(".v")[0], int(path.name.split(".v")[1].split(".")[0])
        if name not in newest or version > int(newest[name].name.split(".v")[1].split(".")[0]):
            newest[name] = path
    return sorted(newest.values())


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO (Rabin), written from the Avro spec's reference algorithm."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


# ---------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_every_message_round_trips(cls: type) -> None:
    obj = sample(cls)
    for f in dataclasses.fields(cls):  # the sample really exercises every field
        if f.default is not dataclasses.MISSING:
            assert getattr(obj, f.name) != f.default, f.name
    data = codec.encode(obj)
    assert data[:2] == b"\xc3\x01"
    back = codec.decode(data)
    assert type(back) is cls
    assert back == obj


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_defaults_round_trip(cls: type) -> None:
    required = {
        f.name: getattr(sample(cls), f.name)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING
    }
    obj = cls(**required)
    assert codec.decode(codec.encode(obj)) == obj


optional_text = st.none() | st.text()


@given(
    instance_id=st.text(),
    workflow=st.text(),
    input=st.text(),
    version=optional_text,
    parent_id=optional_text,
    parent_step=optional_text,
)
def test_start_workflow_round_trips_any_text(**fields: Any) -> None:
    obj = StartWorkflow(**fields)
    assert codec.decode(codec.encode(obj)) == obj


@given(
    seq=INT64,
    at=INT64,
    attempt=INT64,
    retry_at=st.none() | INT64,
    text=st.text(),
    retryable=st.booleans(),
    details=optional_text,
)
def test_step_failed_round_trips_any_ints(
    seq: int,
    at: int,
    attempt: int,
    retry_at: int | None,
    text: str,
    retryable: bool,
    details: str | None,
) -> None:
    error = ErrorInfo(type=text, message=text[::-1], retryable=retryable, details=details)
    obj = StepFailed(text, seq, at, text, attempt, error, retry_at)
    assert codec.decode(codec.encode(obj)) == obj


@given(key=st.none() | st.binary(), value=st.none() | st.binary(), offset=INT64, reason=st.text())
def test_dead_letter_round_trips_any_bytes(
    key: bytes | None, value: bytes | None, offset: int, reason: str
) -> None:
    obj = DeadLetter("replayflow.commands", 3, offset, key, value, reason, "CodecError", 1)
    assert codec.decode(codec.encode(obj)) == obj


# ---------------------------------------------------------------------------------------
# Byte layout


def test_crc64_avro_matches_the_avro_test_vectors() -> None:
    # From the Avro project's share/test/data/schema-tests.txt (signed 64-bit there).
    vectors = {
        '"null"': 7195948357588979594,
        '"int"': 8247732601305521295,
        '{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}': (
            7843277075252814651
        ),
    }
    for canonical, signed in vectors.items():
        assert crc64_avro(canonical.encode()) == signed & 0xFFFFFFFFFFFFFFFF


@pytest.mark.parametrize("path", newest_schema_files(), ids=lambda p: p.name)
def test_header_is_magic_and_little_endian_crc64_of_canonical_form(path: Path) -> None:
    schema = json.loads(path.read_text())
    cls = {c.__name__: c for c in MESSAGE_CLASSES}[schema["name"]]
    data = codec.encode(sample(cls))
    expected = crc64_avro(to_parsing_canonical_form(schema).encode()).to_bytes(8, "little")
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == expected == codec.fingerprint_of(schema["name"])
    # and the rest is the plain Avro binary body, readable with the file alone
    body = fastavro.schemaless_reader(io.BytesIO(data[10:]), fastavro.parse_schema(schema))
    assert body == plain(sample(cls))


def plain(value: Any) -> Any:
    """A message as Avro sees it: records as dicts of the fields the constructor takes,
    tuples as lists, enums as their values."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return value


def test_a_record_written_with_an_older_version_reads_with_defaults() -> None:
    v1 = json.loads((SCHEMAS / "history" / "EventAwaited.v1.avsc").read_text())
    body = io.BytesIO()
    record = {"instance_id": "i", "seq": 3, "at": 5, "name": "go", "deadline": None}
    fastavro.schemaless_writer(body, fastavro.parse_schema(v1), record)
    header = crc64_avro(to_parsing_canonical_form(v1).encode()).to_bytes(8, "little")
    event = codec.decode(b"\xc3\x01" + header + body.getvalue())
    assert event == EventAwaited("i", 3, 5, name="go", deadline=None, wait=None)


def test_readme_example_bytes_are_current() -> None:
    data = codec.encode(StartWorkflow("order-1", "checkout", '{"id":1}'))
    readme = (SCHEMAS / "README.md").read_text()
    example = readme.split("<!-- example -->")[1].split("<!-- /example -->")[0]
    hex_in_readme = "".join(re.findall(r"^([0-9a-f ]+)$", example, re.M))
    assert hex_in_readme.replace(" ", "") == data.hex()


def test_schema_for_returns_the_file() -> None:
    newest = json.loads((SCHEMAS / "commands" / "StartWorkflow.v2.avsc").read_text())
    first = json.loads((SCHEMAS / "commands" / "StartWorkflow.v1.avsc").read_text())
    assert codec.schema_for("StartWorkflow") == newest
    assert codec.schema_for("replayflow.commands.StartWorkflow", version=1) == first
    with pytest.raises(CodecError, match="no record named"):
        codec.schema_for("Nope")


# ---------------------------------------------------------------------------------------
# Errors


GOOD = codec.encode(sample(StartWorkflow))


def reason_of(data: bytes) -> str:
    with pytest.raises(CodecError) as info:
        codec.decode(data)
    return info.value.reason


@pytest.mark.parametrize("data", [b"", b"\xc3", GOOD[:9]], ids=["empty", "1", "9"])
def test_too_short(data: bytes) -> None:
    assert "too short" in reason_of(data)


def test_wrong_magic() -> None:
    assert "wrong magic" in reason_of(b"\xc3\x02" + GOOD[2:])
    assert "wrong magic" in reason_of(b'{"instance_id": "order-1"}')


def test_unknown_fingerprint() -> None:
    reason = reason_of(GOOD[:2] + bytes(8) + GOOD[10:])
    assert "unknown schema fingerprint 0000000000000000" in reason


def test_truncated_body() -> None:
    for cut in range(10, len(GOOD)):
        assert "truncated" in reason_of(GOOD[:cut]), cut


def test_garbage_body() -> None:
    header = GOOD[:10]
    assert "garbage" in reason_of(header + b"\x04\xff\xfe")  # invalid UTF-8
    assert "garbage" in reason_of(header + b"\x7f\x01")  # negative string length
    # valid strings, then union branch 5 of a two-branch union
    assert "garbage" in reason_of(header + b"\x02a\x02b\x02c\x0a")


def test_trailing_bytes() -> None:
    assert "2 trailing bytes" in reason_of(GOOD + b"\x00\x00")


def test_record_without_dataclass() -> None:
    c = Codec.load()
    stray = {"type": "record", "name": "Nope", "namespace": "replayflow.commands", "fields": []}
    fp = c.register_writer(stray)
    with pytest.raises(CodecError, match=r"replayflow\.commands\.Nope maps to no known dataclass"):
        c.decode(b"\xc3\x01" + fp)


def test_encode_errors() -> None:
    with pytest.raises(CodecError, match=r"not a dataclass of replayflow\.core\.messages"):
        codec.encode({"instance_id": "x"})
    with pytest.raises(CodecError, match="cannot encode StartWorkflow"):
        codec.encode(StartWorkflow(instance_id=None, workflow="w"))  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="cannot encode StepFailed"):
        codec.encode(StepFailed("i", 2**64, 1, "s", 1, ErrorInfo("T", "m")))


# ---------------------------------------------------------------------------------------
# Schema evolution


def older_start_workflow() -> dict[str, Any]:
    """StartWorkflow as it could have been before `input` and `parent_step` existed."""
    schema = codec.schema_for("StartWorkflow")
    schema["fields"] = [f for f in schema["fields"] if f["name"] not in ("input", "parent_step")]
    schema["replayflow.version"] = 0
    return schema


def test_older_writer_is_read_with_defaults_filled() -> None:
    old = older_start_workflow()
    c = Codec.load()
    fp = c.register_writer(old)
    assert fp != c.fingerprint_of("StartWorkflow")
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body,
        fastavro.parse_schema(old),
        {"instance_id": "order-1", "workflow": "checkout", "version": "7", "parent_id": "p"},
    )
    back = c.decode(b"\xc3\x01" + fp + body.getvalue())
    assert back == StartWorkflow("order-1", "checkout", "null", "7", "p", None)
    # the default codec never heard of that writer
    assert "unknown schema fingerprint" in reason_of(b"\xc3\x01" + fp + body.getvalue())


def test_versions_side_by_side_in_a_folder(tmp_path: Path) -> None:
    current = codec.schema_for("StartWorkflow")
    current["replayflow.version"] = 2
    old = older_start_workflow()
    old["replayflow.version"] = 1
    (tmp_path / "commands").mkdir()
    (tmp_path / "commands" / "StartWorkflow.v1.avsc").write_text(json.dumps(old))
    (tmp_path / "commands" / "StartWorkflow.v2.avsc").write_text(json.dumps(current))
    c = Codec.load(tmp_path)
    assert c.versions("StartWorkflow") == [1, 2]
    obj = StartWorkflow("order-1", "checkout", '{"id":1}')
    assert c.encode(obj)[2:10] == c.fingerprint_of("StartWorkflow", 2)
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, fastavro.parse_schema(old), {"instance_id": "order-1", "workflow": "checkout"}
    )
    old_bytes = b"\xc3\x01" + c.fingerprint_of("StartWorkflow", 1) + body.getvalue()
    assert c.decode(old_bytes) == StartWorkflow("order-1", "checkout")


def test_newest_schema_must_match_the_dataclass(tmp_path: Path) -> None:
    old = {**older_start_workflow(), "replayflow.version": 1}
    (tmp_path / "StartWorkflow.v1.avsc").write_text(json.dumps(old))
    with pytest.raises(CodecError, match="has fields"):
        Codec.load(tmp_path)


def test_file_name_and_version_property_must_agree(tmp_path: Path) -> None:
    schema = codec.schema_for("StartWorkflow")  # says version 2
    (tmp_path / "StartWorkflow.v3.avsc").write_text(json.dumps(schema))
    with pytest.raises(CodecError, match="disagree"):
        Codec.load(tmp_path)


# ---------------------------------------------------------------------------------------
# The schema files themselves


def docs_missing(schema: Any, where: str) -> list[str]:
    """Every record and every field, nested ones included, needs a non-empty doc."""
    if isinstance(schema, list):
        return [m for branch in schema for m in docs_missing(branch, where)]
    if not isinstance(schema, dict) or schema.get("type") != "record":
        return []
    missing = [] if schema.get("doc") else [f"{where} ({schema['name']})"]
    for f in schema["fields"]:
        if not f.get("doc"):
            missing.append(f"{where}.{f['name']}")
        missing += docs_missing(f["type"], f"{where}.{f['name']}")
    return missing


@pytest.mark.parametrize("path", schema_files(), ids=lambda p: p.name)
def test_schema_file_conventions(path: Path) -> None:
    schema = json.loads(path.read_text())
    kind = path.parent.name
    name, version = re.fullmatch(r"(\w+)\.v(\d+)\.avsc", path.name).groups()  # type: ignore[union-attr]
    assert schema["name"] == name
    assert schema["namespace"] == f"replayflow.{kind}"
    assert schema["replayflow.version"] == int(version)
    assert docs_missing(schema, name) == []
    for f in schema["fields"]:
        if isinstance(f["type"], list):  # optional: ["null", T] with default null
            assert f["type"][0] == "null" and len(f["type"]) == 2, f["name"]
            assert "default" in f and f["default"] is None, f["name"]


def test_nested_error_info_is_the_common_one() -> None:
    common = json.loads((SCHEMAS / "common" / "ErrorInfo.v1.avsc").read_text())
    del common["replayflow.version"]
    found = 0
    for path in schema_files():
        for f in json.loads(path.read_text())["fields"]:
            for t in f["type"] if isinstance(f["type"], list) else [f["type"]]:
                if isinstance(t, dict) and t.get("name") == "ErrorInfo":
                    assert t == common, f"{path.name}.{f['name']}"
                    found += 1
    assert found == 5  # FailStep, StepFailed, WorkflowFailed, WorkflowSuspended, Completion


def test_nested_schedule_records_are_identical_everywhere() -> None:
    """ScheduleSpec, ScheduleAction and SchedulePolicies are written out in full in each
    record that holds them (and named after that within the file), every copy the same."""
    copies: dict[str, list[Any]] = {}
    for path in schema_files():
        for f in json.loads(path.read_text())["fields"]:
            for t in f["type"] if isinstance(f["type"], list) else [f["type"]]:
                if isinstance(t, dict) and t.get("namespace") == "replayflow.schedule":
                    copies.setdefault(t["name"], []).append(t)
    assert set(copies) == {"ScheduleSpec", "ScheduleAction", "SchedulePolicies"}
    for name, found in copies.items():
        assert all(t == found[0] for t in found), name
        assert len(found) == 4, name  # CreateSchedule, UpdateSchedule, their two facts


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda c: c.__name__)
def test_avro_defaults_mirror_dataclass_defaults(cls: type) -> None:
    schema = codec.schema_for(cls.__name__)
    avro = {f["name"]: f for f in schema["fields"]}
    assert list(avro) == [f.name for f in dataclasses.fields(cls)]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert avro[f.name].get("default", "<none>") == f.default, f.name
        elif "default" in avro[f.name]:  # only optional fields may add a default: null
            assert avro[f.name]["default"] is None and isinstance(avro[f.name]["type"], list)


def test_one_record_per_dataclass_and_back() -> None:
    records: dict[str, set[str]] = {}  # short name -> full names
    versions: dict[str, list[int]] = {}
    for path in schema_files():
        schema = json.loads(path.read_text())
        records.setdefault(schema["name"], set()).add(f"{schema['namespace']}.{schema['name']}")
        versions.setdefault(schema["name"], []).append(schema["replayflow.version"])
    assert set(records) == {c.__name__ for c in MESSAGE_CLASSES}
    for name, full_names in records.items():
        assert len(full_names) == 1, f"{name} is in several namespaces: {full_names}"
        assert sorted(versions[name]) == list(range(1, len(versions[name]) + 1)), name


def test_package_ships_every_schema_file() -> None:
    packaged = sorted(e.name for e in codec._walk(codec.package_schemas()))
    assert packaged == sorted(p.name for p in schema_files())
