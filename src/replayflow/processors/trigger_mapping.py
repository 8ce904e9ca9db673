"""A declared KafkaTrigger made into a mapper: record -> StartWorkflow or SendEvent.

    spec = compile_trigger(rf.KafkaTrigger(topic="orders", workflow="checkout",
                                           id=".orderId"))
    spec.mapper(record)  # [StartWorkflow(instance_id="o-1", workflow="checkout", ...)]

The instance id and the input come from the record: its key, a header, or a jq
expression over the decoded value. Plain field paths (`.a.b`) are read directly, with
jq's meaning (a missing field is null; indexing a non-object is an error); anything
else runs in jq. Every failure is Unmappable with a reason: the record goes to the DLQ.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jq

from replayflow.core.definitions import Registry
from replayflow.core.errors import PayloadError, ValidationError
from replayflow.core.messages import Command, SendEvent, StartWorkflow
from replayflow.core.names import check_instance_id
from replayflow.core.payloads import dump
from replayflow.core.triggers import KafkaTrigger, Source
from replayflow.processors.trigger_formats import AvroSchema, Decoder, decoder_for
from replayflow.processors.trigger_source import SourceRecord, TriggerSpec, Unmappable

Extract = Callable[[SourceRecord, Any], Any]

_PATH = re.compile(r"\.[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _text(raw: bytes | None, what: str) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Unmappable(f"{what} is not UTF-8 text", "Undecodable") from None


def _path(fields: list[str], text: str) -> Extract:
    def extract(record: SourceRecord, value: Any) -> Any:
        for name in fields:
            if value is None:
                return None
            if not isinstance(value, dict):
                raise Unmappable(
                    f"{text!r} failed: cannot index {_jq_type(value)} with {name!r}",
                    "ExpressionFailed",
                )
            value = value.get(name)
        return value

    return extract


def _jq_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, int | float):
        return "number"
    return "object" if isinstance(value, dict) else "null"


def _jq(text: str) -> Extract:
    program = jq.compile(text)

    def extract(record: SourceRecord, value: Any) -> Any:
        try:
            results = program.input_value(value).all()
        except ValueError as exc:
            message = str(exc).splitlines()[0] if str(exc) else "failed"
            raise Unmappable(f"{text!r} failed: {message}", "ExpressionFailed") from None
        return results[0] if results else None

    return extract


def extractor(source: Source) -> Extract:
    """How to take a source's value from a record and its decoded value."""
    if source.kind == "key":
        return lambda record, value: _text(record.key, "the record key")
    if source.kind == "header":
        name = source.text

        def header(record: SourceRecord, value: Any) -> Any:
            return _text(record.header(name), f"header {name!r}")

        return header
    if source.text == ".":
        return lambda record, value: value
    if _PATH.fullmatch(source.text):
        return _path(source.text[1:].split("."), source.text)
    return _jq(source.text)


def instance_id_of(found: Any, source: Source) -> str:
    """The instance id a source gave, checked; Unmappable when there is none or it is
    not a usable id."""
    where = (
        "the record key"
        if source.kind == "key"
        else (f"header {source.text!r}" if source.kind == "header" else repr(source.text))
    )
    if found is None:
        raise Unmappable(f"no instance id: {where} gave nothing", "NoInstanceId")
    if isinstance(found, int) and not isinstance(found, bool):
        found = str(found)
    try:
        return check_instance_id(found)
    except ValidationError as exc:
        raise Unmappable(f"{where} gave {exc}", "InvalidInstanceId") from None


class TriggerMapper:
    """The mapper of one KafkaTrigger (see the module docstring)."""

    def __init__(self, trigger: KafkaTrigger, decode: Decoder) -> None:
        if trigger.starts and trigger.workflow is None:
            raise ValidationError(
                f"the trigger on {trigger.topic!r} starts no workflow: give workflow= or event="
            )
        self.trigger = trigger
        self._decode = decode
        self._id_source = trigger.id_source
        self._id = extractor(self._id_source)
        self._input = extractor(trigger.input_source)

    def __call__(self, record: SourceRecord) -> list[Command]:
        trigger = self.trigger
        value = self._decode(record)
        instance_id = instance_id_of(self._id(record, value), self._id_source)
        payload = self._input(record, value)
        try:
            text = dump(payload, "the workflow input" if trigger.starts else "the event payload")
        except PayloadError as exc:
            raise Unmappable(str(exc), "PayloadError") from None
        if trigger.event is None:
            assert trigger.workflow is not None  # checked in __init__
            return [
                StartWorkflow(
                    instance_id=instance_id,
                    workflow=trigger.workflow,
                    input=text,
                    version=trigger.version,
                )
            ]
        return [SendEvent(instance_id=instance_id, name=trigger.event, payload=text)]


def describe(trigger: KafkaTrigger) -> str:
    action = (
        f"start {trigger.workflow}" + (f" v{trigger.version}" if trigger.version else "")
        if trigger.starts
        else f"event {trigger.event!r}"
    )
    return f"{trigger.topic} ({trigger.format}) -> {action}, id {trigger.id}, input {trigger.input}"


def compile_trigger(trigger: KafkaTrigger, base_dir: Path | None = None) -> TriggerSpec:
    """A declared trigger ready to run. The schema file of the Avro formats is read now,
    relative to `base_dir` (default: the working directory). ValueError or
    ValidationError when it cannot run."""
    schema = None
    if trigger.schema is not None:
        path = Path(trigger.schema)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        schema = AvroSchema.from_file(path)
    mapper = TriggerMapper(trigger, decoder_for(trigger.format, schema, trigger.schema_id))
    declared = json.dumps(
        {**vars(trigger), "schema_fingerprint": schema.fingerprint.hex() if schema else None},
        sort_keys=True,
    )
    return TriggerSpec(
        name=trigger.trigger_name,
        topic=trigger.topic,
        mapper=mapper,
        description=describe(trigger),
        digest=hashlib.sha256(declared.encode()).hexdigest(),
    )


def registry_triggers(registry: Registry) -> list[KafkaTrigger]:
    """The triggers declared on the registry's code workflows (`@rf.workflow(trigger=)`),
    each once: versions of one workflow may repeat a trigger, but not change it."""
    found: dict[str, KafkaTrigger] = {}
    for versions in registry.workflows.values():
        for definition in versions.values():
            for trigger in definition.triggers:
                name = trigger.trigger_name
                known = found.get(name)
                if known is not None and known != trigger:
                    raise ValidationError(
                        f"two different triggers are named {name!r}: give one of them name="
                    )
                found[name] = trigger
    return list(found.values())
