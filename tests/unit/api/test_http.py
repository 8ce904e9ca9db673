"""Requests into the HTTP API's models: bad bodies, queries and ids are a clear 4xx with
the message the API has always given, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from replayflow.api import validation
from replayflow.api.errors import ApiError
from replayflow.api.request_models import (
    CountsQuery,
    DeadLetterPath,
    InstancePath,
    ListQuery,
    Reason,
    Restart,
    SendEvent,
    StartBatch,
    StartRequest,
    StepsQuery,
    encode_cursor,
)
from replayflow.core.errors import ReplayflowError


class _Request:
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def read(self) -> bytes:
        return self.body


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def _refused(model: Any, data: Any) -> tuple[int, str]:
    with pytest.raises(ApiError) as raised:
        validation.validate(model, data)
    return raised.value.status, raised.value.message


def test_api_error_is_a_replayflow_error() -> None:
    assert issubclass(ApiError, ReplayflowError)


def test_deeply_nested_body_is_a_400() -> None:
    body = b'{"workflow":"w","input":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(ApiError) as raised:
        asyncio.run(validation.read_json(_Request(body)))  # type: ignore[arg-type]
    assert raised.value.status == 400 and "nested too deeply" in raised.value.message


def test_payload_too_deep_to_write_is_a_400() -> None:
    status, message = _refused(StartRequest, {"workflow": "w", "input": _nested(200_000)})
    assert (status, message) == (400, "the body: input is nested too deeply")


def test_bad_json_is_still_a_400() -> None:
    with pytest.raises(ApiError) as raised:
        asyncio.run(validation.read_json(_Request(b"{nope")))  # type: ignore[arg-type]
    assert raised.value.status == 400 and "not valid JSON" in raised.value.message


def test_an_empty_body_is_required_or_an_empty_object() -> None:
    with pytest.raises(ApiError) as raised:
        asyncio.run(validation.read_json(_Request(b"")))  # type: ignore[arg-type]
    assert raised.value.message == "a JSON body is required"
    assert asyncio.run(validation.read_json(_Request(b""), required=False)) == {}  # type: ignore[arg-type]


NAME_RULE = "1 to 128 characters of letters, digits and _.- starting with a letter or _"
ID_RULE = "1 to 200 characters of letters, digits and ._:@/+=- starting with a letter or digit"


@pytest.mark.parametrize(
    ("model", "data", "status", "message"),
    [
        (StartRequest, [1, 2], 400, "the body must be a JSON object"),
        (StartRequest, {"input": 1}, 400, "field 'workflow' is required"),
        (StartRequest, {"workflow": None}, 400, "field 'workflow' is required"),
        (StartRequest, {"workflow": 5}, 400, "field 'workflow' must be a string"),
        (
            StartRequest,
            {"workflow": "w" * 129},
            400,
            "field 'workflow' is longer than 128 characters",
        ),
        (
            StartRequest,
            {"workflow": "a b"},
            400,
            f"the body: invalid workflow name 'a b': {NAME_RULE}",
        ),
        (
            StartRequest,
            {"workflow": "g", "colour": 1, "age": 2},
            400,
            "the body has unknown field(s) age, colour; allowed: id, input, version, workflow",
        ),
        (
            StartRequest,
            {"workflow": "g", "id": " bad"},
            400,
            f"the body: invalid instance id ' bad': {ID_RULE}",
        ),
        (
            StartRequest,
            {"workflow": "g", "id": 5},
            400,
            f"the body: invalid instance id 5: {ID_RULE}",
        ),
        (
            StartRequest,
            {"workflow": "g", "input": "y" * (1024 * 1024)},
            413,
            "the body: input is over the payload limit of 1048576 bytes",
        ),
        (StartBatch, {"instances": []}, 400, "field 'instances' must be a non-empty list"),
        (StartBatch, {"instances": {}}, 400, "field 'instances' must be a non-empty list"),
        (StartBatch, {}, 400, "field 'instances' must be a non-empty list"),
        (StartBatch, {"instances": None}, 400, "field 'instances' must be a non-empty list"),
        (
            StartBatch,
            {"instances": [{"workflow": "bad name"}] * 1001},
            413,
            "at most 1000 instances per call, got 1001",
        ),
        (
            StartBatch,
            {"instances": [{"workflow": "g"}, {"workflow": "g", "id": "."}]},
            400,
            f"instances[1]: invalid instance id '.': {ID_RULE}",
        ),
        (
            StartBatch,
            {"instances": [{"workflow": "g"}, 7]},
            400,
            "instances[1] must be a JSON object",
        ),
        (
            StartBatch,
            {"instances": [{"workflow": "g", "x": 1}], "y": 2},
            400,
            "the body has unknown field(s) y; allowed: instances",
        ),
        (SendEvent, {"payload": 1}, 400, "field 'name' is required"),
        (SendEvent, {"name": "a b"}, 400, f"invalid event name 'a b': {NAME_RULE}"),
        (
            SendEvent,
            {"name": "go", "payload": "z" * (1024 * 1024)},
            413,
            "payload is over the payload limit of 1048576 bytes",
        ),
        (Reason, {"reason": 1}, 400, "field 'reason' must be a string"),
        # A string where the document says string: null is not "left out" here.
        (Reason, {"reason": None}, 400, "field 'reason' must be a string"),
        (Restart, {"from_step": None}, 400, "field 'from_step' must be a string"),
        (Reason, {"reason": "r" * 1001}, 400, "field 'reason' is longer than 1000 characters"),
        (
            Reason,
            {"from_step": "s"},
            400,
            "the body has unknown field(s) from_step; allowed: reason",
        ),
        (Restart, {"from_step": "s" * 301}, 400, "field 'from_step' is longer than 300 characters"),
        (Reason, None, 400, "the body must be a JSON object"),
        (
            ListQuery,
            {"status": "NOPE"},
            400,
            "query parameter 'status' must be one of QUEUED, RUNNING, PAUSED, SUSPENDED, "
            "COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT",
        ),
        (ListQuery, {"limit": "0"}, 400, "query parameter 'limit' must be between 1 and 500"),
        (ListQuery, {"limit": "ten"}, 400, "query parameter 'limit' must be an integer, not 'ten'"),
        (
            ListQuery,
            {"started_before": "-5"},
            400,
            "query parameter 'started_before' must be between 0 and 9999999999999",
        ),
        (
            ListQuery,
            {"cursor": "zzz"},
            400,
            "query parameter 'cursor' is not a cursor this API returned",
        ),
        (ListQuery, {"workflow": "a b"}, 400, f"invalid workflow name 'a b': {NAME_RULE}"),
        (
            StepsQuery,
            {"after": "-2"},
            400,
            "query parameter 'after' must be between -1 and 1000000000",
        ),
        (InstancePath, {"id": " x"}, 400, f"invalid instance id ' x': {ID_RULE}"),
        (
            DeadLetterPath,
            {"entry": "abc"},
            400,
            "a dead-letter id is <partition>-<offset>, as listed",
        ),
    ],
)
def test_refused_requests_say_why(model: Any, data: Any, status: int, message: str) -> None:
    assert _refused(model, data) == (status, message)


def test_accepted_requests_read_as_before() -> None:
    start = validation.validate(
        StartRequest, {"workflow": "greeter", "id": "a/b:1", "version": None, "input": [1]}
    )
    assert (start.workflow, start.id, start.version, start.input) == ("greeter", "a/b:1", None, [1])
    restart = validation.validate(Restart, {"from_step": "charge"})
    assert (restart.reason, restart.from_step) == ("", "charge")
    assert validation.validate(Restart, {}).from_step is None
    query = validation.validate(ListQuery, {"limit": " 7", "started_after": "1_000"})
    assert (query.limit, query.started_after, query.status) == (7, 1000, None)
    cursor = encode_cursor("0000000001000\x1forder-1")
    assert validation.validate(ListQuery, {"cursor": cursor}).cursor == "0000000001000\x1forder-1"
    assert validation.validate(StepsQuery, {}).after == -1


class _QueryRequest:
    def __init__(self, query: str) -> None:
        from multidict import MultiDict
        from yarl import URL

        self.query = MultiDict(URL("/x?" + query).query)


@pytest.mark.parametrize(
    ("model", "query", "message"),
    [
        (CountsQuery, "workflow=", f"invalid workflow name '': {NAME_RULE}"),
        (CountsQuery, "workflow=a%20b", f"invalid workflow name 'a b': {NAME_RULE}"),
        (ListQuery, "workflow=", f"invalid workflow name '': {NAME_RULE}"),
        (ListQuery, "limit=", "query parameter 'limit' must be an integer, not ''"),
        (ListQuery, "cursor=", "query parameter 'cursor' must not be empty"),
    ],
)
def test_an_empty_or_invalid_query_value_is_a_400_not_a_missing_filter(
    model: Any, query: str, message: str
) -> None:
    with pytest.raises(ApiError) as raised:
        validation.read_query(_QueryRequest(query), model)  # type: ignore[arg-type]
    assert (raised.value.status, raised.value.message) == (400, message)


def test_a_left_out_query_parameter_is_no_filter() -> None:
    query = validation.read_query(_QueryRequest("other=1"), CountsQuery)  # type: ignore[arg-type]
    assert query.workflow is None
