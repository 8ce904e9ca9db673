"""What the HTTP API accepts, declared once as pydantic models: JSON bodies, query
strings and path parameters. The routes validate with these models (api/validation.py)
and api/openapi.py documents them; the id, name and version formats are core/names.py's.

Checked strings run core/names.py's check on the value, so an error says what the
engine says; the pattern beside it is the same regular expression, for the document.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from replayflow.api import projection as p
from replayflow.core import names

MAX_BATCH = 1000
MAX_LIMIT = 500
MAX_JSON = 1024 * 1024  # bytes of one payload (input or event), as the engine's limit
# The longest name core/names.py accepts is checked before the name itself, so that an
# over-long value is refused without being echoed back in the message.
MAX_NAME_LENGTH = names.MAX_NAME_LENGTH
MAX_REASON = 1000
MAX_STEP_NAME = 300
DEAD_LETTER_ID = re.compile(r"\d{1,6}-\d{1,18}")


def _anchored(pattern: re.Pattern[str]) -> str:
    """A Python fullmatch pattern as a JSON Schema pattern (which searches)."""
    return f"^(?:{pattern.pattern})$"


ID_PATTERN = _anchored(names.INSTANCE_ID)
NAME_PATTERN = _anchored(names.NAME)
VERSION_PATTERN = _anchored(names.VERSION)


def _workflow_name(value: str) -> str:
    return names.check_name(value, "workflow name")


def _event_name(value: str) -> str:
    return names.check_name(value, "event name")


def _dead_letter_id(value: str) -> str:
    if not DEAD_LETTER_ID.fullmatch(value):
        raise ValueError("a dead-letter id is <partition>-<offset>, as listed")
    return value


def within_payload_limit(value: Any) -> Any:
    """A JSON payload no larger than the engine takes (and not too deep to write)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:  # parsed a little under the limit, but too deep to write
        raise PydanticCustomError("payload_too_deep", "is nested too deeply") from None
    if len(text.encode("utf-8")) > MAX_JSON:
        raise PydanticCustomError(
            "payload_too_large", "is over the payload limit of {limit} bytes", {"limit": MAX_JSON}
        )
    return value


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> str:
    """The position a cursor from `encode_cursor` holds: <sort>SEP<instance id>."""
    invalid = ValueError("query parameter 'cursor' is not a cursor this API returned")
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid from None
    sort, sep, instance_id = text.partition(p.SEP)
    if not sep or not sort.isdigit() or len(sort) != 13 or not instance_id:
        raise invalid
    return text


def _integer(raw: Any) -> Any:
    """Query values are text; read them as Python's int() does."""
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise PydanticCustomError("int_parsing", "is not an integer") from None
    return raw


def _batch_size(items: Any) -> Any:
    if not isinstance(items, list) or not items:
        raise PydanticCustomError("non_empty_list", "field 'instances' must be a non-empty list")
    if len(items) > MAX_BATCH:
        raise PydanticCustomError(
            "too_large",
            "at most {most} instances per call, got {count}",
            {"most": MAX_BATCH, "count": len(items)},
        )
    return items


# ------------------------------------------------------------------------ field types

InstanceId = Annotated[
    str,
    BeforeValidator(names.check_instance_id),
    Field(json_schema_extra={"pattern": ID_PATTERN, "maxLength": names.MAX_ID_LENGTH}),
]
WorkflowName = Annotated[
    StrictStr,
    Field(max_length=MAX_NAME_LENGTH, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_workflow_name),
]
EventName = Annotated[
    StrictStr,
    Field(max_length=MAX_NAME_LENGTH, json_schema_extra={"pattern": NAME_PATTERN}),
    AfterValidator(_event_name),
]
Version = Annotated[
    str, BeforeValidator(names.check_version), Field(json_schema_extra={"pattern": VERSION_PATTERN})
]
Payload = Annotated[Any, AfterValidator(within_payload_limit), Field(description="any JSON value")]
# A workflow name as a filter: checked, with no length bound before the check.
WorkflowFilter = Annotated[
    str, BeforeValidator(_workflow_name), Field(json_schema_extra={"pattern": NAME_PATTERN})
]
Status = Literal[p.STATUSES]  # type: ignore[valid-type]  # the read model's statuses, as a type
# Integer query parameters with their bounds (the bounds first: the text is read into
# the bounded int).
ListLimit = Annotated[int, Field(ge=1, le=MAX_LIMIT), BeforeValidator(_integer)]
PageLimit = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integer)]
EpochMs = Annotated[int, Field(ge=0, le=p.SORT_BASE - 1), BeforeValidator(_integer)]
TimelineAfter = Annotated[int, Field(ge=-1, le=10**9), BeforeValidator(_integer)]
SeqAfter = Annotated[int, Field(ge=0, le=10**11), BeforeValidator(_integer)]
Cursor = Annotated[str, Field(min_length=1), AfterValidator(decode_cursor)]
DeadLetterId = Annotated[
    str,
    AfterValidator(_dead_letter_id),
    Field(json_schema_extra={"pattern": _anchored(DEAD_LETTER_ID)}),
]


# ------------------------------------------------------------------------ bodies


class Body(BaseModel):
    """A JSON object body: unknown fields are refused, and a null field counts as absent
    (except in bodies that set NULL_IS_ABSENT = False: there a field is a string or
    left out, as the document says)."""

    model_config = ConfigDict(extra="forbid")
    # How an error names the value: "field 'reason'"; and whether a checked value's
    # error starts with the object it is in ("the body: ", "instances[3]: ").
    FIELD: ClassVar[str] = "field"
    PREFIX_ERRORS: ClassVar[bool] = False
    NULL_IS_ABSENT: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _null_is_absent(cls, value: Any) -> Any:
        if isinstance(value, dict) and cls.NULL_IS_ABSENT:
            return {k: v for k, v in value.items() if v is not None}
        return value


class StartRequest(Body):
    PREFIX_ERRORS: ClassVar[bool] = True

    workflow: WorkflowName
    id: InstanceId | None = Field(
        None, description="idempotent: a second start with this id changes nothing"
    )
    version: Version | None = None
    input: Payload = None


class StartBatch(Body):
    # Required, but left out it gets the same answer as an empty list: the default
    # goes through the check (and the document still lists it as required).
    model_config = ConfigDict(extra="forbid", json_schema_extra={"required": ["instances"]})

    instances: Annotated[
        list[StartRequest],
        BeforeValidator(_batch_size),
        Field(min_length=1, max_length=MAX_BATCH),
    ] = Field(
        None,
        validate_default=True,
        description=f"1 to {MAX_BATCH:,} starts; more in one call is refused with 413",
    )


class SendEvent(Body):
    name: EventName
    payload: Payload = None


def _no_default(schema: dict[str, Any]) -> None:
    """Left out of the document: a field that is absent by default, never null."""
    schema.pop("default", None)


class Reason(Body):
    # A string when given: `"reason": null` is refused like any other non-string.
    NULL_IS_ABSENT: ClassVar[bool] = False

    reason: Annotated[StrictStr, Field(max_length=MAX_REASON)] = Field(
        "", description="why, in words (kept with the instance)"
    )


class Restart(Reason):
    from_step: Annotated[StrictStr, Field(max_length=MAX_STEP_NAME)] = Field(
        None,  # type: ignore[assignment]  # absent: from the start
        description="restart from this step, keeping the results before it",
        json_schema_extra=_no_default,
    )


# ------------------------------------------------------------------- query strings


class Query(BaseModel):
    """Query parameters; unknown ones are ignored. An empty value is checked as given
    (`?workflow=` names no workflow: 400); leave a parameter out for its default."""

    FIELD: ClassVar[str] = "query parameter"
    PREFIX_ERRORS: ClassVar[bool] = False


class ListQuery(Query):
    status: Status | None = Field(None, description="only this status")
    workflow: WorkflowFilter | None = Field(None, description="only this workflow")
    version: Version | None = Field(
        None,
        description="only this version of `workflow`: needs `workflow` and no `status` "
        "(400 otherwise)",
    )
    limit: ListLimit = Field(50, description="page size (default 50)")
    started_after: EpochMs | None = Field(None, description="epoch ms, inclusive")
    started_before: EpochMs | None = Field(None, description="epoch ms, inclusive")
    cursor: Cursor | None = Field(None, description="next_cursor of the last page")


class CountsQuery(Query):
    workflow: WorkflowFilter | None = Field(None, description="only this workflow")


class StepsQuery(Query):
    after: TimelineAfter = Field(-1, description="entries after this n")
    limit: PageLimit = Field(200, description="page size (default 200)")


class HistoryQuery(Query):
    after_seq: SeqAfter = Field(0, description="events after this seq")
    limit: PageLimit = Field(100, description="page size (default 100)")


class DeadLettersQuery(Query):
    limit: PageLimit = Field(100, description="newest entries (default 100)")


# ------------------------------------------------------------------ path parameters


class PathParams(BaseModel):
    FIELD: ClassVar[str] = "path parameter"
    PREFIX_ERRORS: ClassVar[bool] = False
    # aiohttp's pattern for a parameter that may hold a '/' (default: one segment)
    MATCH: ClassVar[dict[str, str]] = {}


class InstancePath(PathParams):
    MATCH: ClassVar[dict[str, str]] = {"id": ".+"}

    id: InstanceId = Field(description="instance id (a '/' in it may be sent as is or as %2F)")


class DeadLetterPath(PathParams):
    entry: DeadLetterId = Field(description="a dead-letter id, as listed")


class UiFilePath(PathParams):
    file: str = Field(description="a file of the web UI (index.html, app.js, style.css)")
