"""Kafka topic triggers as declared: which topic, how its records are read, and what a
record does (start a workflow, or deliver an event to an instance). Plain data, checked
where it is written; replayflow.processors.trigger runs it.

    @rf.workflow(trigger=rf.KafkaTrigger(topic="orders", id=".orderId", input="."))
    async def checkout(ctx, order): ...

Where a value comes from (`id`, `input`) is written as a source:

    "key"            the record key (UTF-8 text)
    "header:NAME"    the value of header NAME (UTF-8 text; the last one when repeated)
    anything else    a jq expression over the decoded value ("." is the whole value)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from replayflow.core.errors import ValidationError
from replayflow.core.names import check_name, check_version

Format = Literal["json", "avro", "confluent", "cloudevents", "text", "raw"]

#: json: a JSON document. avro: Avro single-object encoding (C3 01, 8-byte fingerprint,
#: body). confluent: Confluent wire format (00, 4-byte schema id, body). cloudevents:
#: structured mode (a JSON event) or binary mode (ce_* headers), told apart per record
#: as the Kafka protocol binding says. text: UTF-8 text. raw: any bytes, as base64 text.
FORMATS: tuple[str, ...] = ("json", "avro", "confluent", "cloudevents", "text", "raw")
AVRO_FORMATS = frozenset({"avro", "confluent"})

KEY = "key"
HEADER_PREFIX = "header:"

# Kafka's own rule for topic names.
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class Source:
    """Where a value is taken from: kind "key", "header" (with its name) or "jq"."""

    kind: Literal["key", "header", "jq"]
    text: str  # the header name, or the jq program

    @classmethod
    def parse(cls, spec: str, what: str) -> Source:
        if not isinstance(spec, str) or not spec.strip():
            raise ValidationError(f"{what} must be 'key', 'header:NAME' or a jq expression")
        spec = spec.strip()
        if spec == KEY:
            return cls("key", "")
        if spec.startswith(HEADER_PREFIX):
            name = spec[len(HEADER_PREFIX) :]
            if not name:
                raise ValidationError(f"{what} {spec!r} names no header")
            return cls("header", name)
        return cls("jq", spec)


@dataclass(frozen=True)
class KafkaTrigger:
    """A source topic whose records start workflow instances or feed running ones.

    - `topic`: the topic to read (the namespace prefix applies, as for every topic).
    - `format`: one of FORMATS; `schema` is the Avro schema file (.avsc) of the avro and
      confluent formats, `schema_id` the Confluent schema id to accept (None: any).
    - `id`: where the instance id comes from (a source, see the module docstring).
    - `input`: where the workflow input (or the event payload) comes from.
    - `event`: None starts `workflow` (`version`, None: the newest); a name delivers an
      event of that name to the instance `id` gives instead.
    - `name`: names the trigger's consumer group (default: from workflow, event, topic).
    """

    topic: str
    format: Format = "json"
    id: str = KEY
    input: str = "."
    event: str | None = None
    workflow: str | None = None
    version: str | None = None
    schema: str | None = None
    schema_id: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.topic, str) or not _TOPIC.fullmatch(self.topic):
            raise ValidationError(
                f"invalid trigger topic {self.topic!r}: 1 to 249 letters, digits and ._-"
            )
        if self.format not in FORMATS:
            raise ValidationError(
                f"unknown trigger format {self.format!r}: one of {', '.join(FORMATS)}"
            )
        if self.format in AVRO_FORMATS and not self.schema:
            raise ValidationError(
                f"format {self.format!r} needs schema= (the path of the .avsc file)"
            )
        if self.schema is not None and self.format not in AVRO_FORMATS:
            raise ValidationError(
                f"schema= is for the avro and confluent formats, not {self.format!r}"
            )
        if self.schema_id is not None and (
            self.format != "confluent" or not isinstance(self.schema_id, int) or self.schema_id < 0
        ):
            raise ValidationError("schema_id= is a non-negative integer, for format 'confluent'")
        check_jq(Source.parse(self.id, "id"), "id")
        check_jq(Source.parse(self.input, "input"), "input")
        if self.event is not None:
            check_name(self.event, "event name")
        if self.workflow is not None:
            check_name(self.workflow, "workflow name")
        if self.version is not None:
            check_version(self.version)
        if self.name is not None:
            check_name(self.name, "trigger name")

    @property
    def starts(self) -> bool:
        """True: a record starts an instance. False: it delivers an event."""
        return self.event is None

    @property
    def id_source(self) -> Source:
        return Source.parse(self.id, "id")

    @property
    def input_source(self) -> Source:
        return Source.parse(self.input, "input")

    def for_workflow(self, workflow: str) -> KafkaTrigger:
        """This trigger as declared on `workflow` (kept when it names one itself)."""
        return self if self.workflow is not None else replace(self, workflow=workflow)

    @property
    def trigger_name(self) -> str:
        """The name its consumer group and transactional ids are made from."""
        if self.name is not None:
            return self.name
        if self.workflow is None:
            raise ValidationError(f"the trigger on {self.topic!r} needs name= or workflow=")
        action = "start" if self.event is None else f"event.{self.event}"
        name = f"{self.workflow}.{action}.{self.topic}"
        return check_name(name, "trigger name (derived: give name= to shorten it)")


def check_jq(source: Source, what: str) -> None:
    """Raise ValidationError when a jq source does not compile."""
    if source.kind != "jq":
        return
    import jq  # pure computation; imported only where a trigger is declared

    try:
        jq.compile(source.text)
    except ValueError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "does not compile"
        raise ValidationError(f"{what} {source.text!r} is not a jq expression: {first}") from None
