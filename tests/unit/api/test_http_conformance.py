"""What schemathesis found in the HTTP API, checked on the router and middlewares
themselves (aiohttp's test server, no broker): a 405 names the allowed methods, an empty
or invalid query filter is a 400, `reason: null` is not a string, an over-long batch is
the documented 413, and the rule of the `version` filter is in the document."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from replayflow.api.config import ApiConfig
from replayflow.api.http import middlewares, register_routes
from replayflow.api.routes import operations
from replayflow.settings import Settings

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _context() -> Any:
    return SimpleNamespace(
        config=ApiConfig(settings=Settings(), token=TOKEN), store=None, partitions=3, folded=0
    )


def _with_client(test: Callable[[TestClient], Awaitable[None]]) -> None:
    async def run() -> None:
        context = _context()
        app = web.Application(middlewares=middlewares(context.config))
        register_routes(context, app.router)
        async with TestClient(TestServer(app)) as client:
            await test(client)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/v1/counts", {"GET"}),
        ("DELETE", "/v1/instances", {"GET", "POST"}),
        # An id may hold a "/": GET reads the instance "abc/cancel".
        ("PUT", "/v1/instances/abc/cancel", {"GET", "POST"}),
        ("PATCH", "/health", {"GET"}),
    ],
)
def test_a_405_names_the_allowed_methods(method: str, path: str, allowed: set[str]) -> None:
    async def test(client: TestClient) -> None:
        response = await client.request(method, path, headers=AUTH)
        assert response.status == 405
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
        body = await response.json()
        assert body["error"]["message"] == f"method {method} not allowed on {path}"

    _with_client(test)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("GET", "/v1/counts?workflow=", None, 400, "invalid workflow name ''"),
        ("GET", "/v1/counts?workflow=no%20spaces", None, 400, "invalid workflow name"),
        ("GET", "/v1/instances?workflow=", None, 400, "invalid workflow name ''"),
        ("GET", "/v1/instances?version=2", None, 400, "'version' filters need 'workflow'"),
        (
            "POST",
            "/v1/instances/abc/cancel",
            {"reason": None},
            400,
            "field 'reason' must be a string",
        ),
        (
            "POST",
            "/v1/instances/abc/restart",
            {"from_step": None},
            400,
            "field 'from_step' must be a string",
        ),
        (
            "POST",
            "/v1/instances/batch",
            {"instances": [{"workflow": "w"}] * 1001},
            413,
            "at most 1000 instances per call, got 1001",
        ),
    ],
)
def test_refused_before_any_engine_call(
    method: str, path: str, body: Any, status: int, words: str
) -> None:
    async def test(client: TestClient) -> None:
        data = None if body is None else json.dumps(body)
        response = await client.request(method, path, headers=AUTH, data=data)
        assert response.status == status, await response.text()
        assert words in (await response.json())["error"]["message"]

    _with_client(test)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    served = operations(_context())
    [openapi] = [o for o in served if o.path == "/openapi.json"]
    response = asyncio.run(openapi.handler(None))
    return json.loads(response.body)  # type: ignore[no-any-return]


def test_the_batch_413_is_documented_with_its_limit(document: dict[str, Any]) -> None:
    responses = document["paths"]["/v1/instances/batch"]["post"]["responses"]
    assert "more than 1,000 instances" in responses["413"]["description"]
    assert responses["413"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorReply"
    }
    batch = document["components"]["schemas"]["StartBatch"]["properties"]["instances"]
    assert batch["maxItems"] == 1000 and "413" in batch["description"]


def test_reason_and_from_step_are_documented_as_strings_only(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for model, field in (("Reason", "reason"), ("Restart", "reason"), ("Restart", "from_step")):
        prop = schemas[model]["properties"][field]
        assert prop["type"] == "string" and "anyOf" not in prop, (model, field, prop)
        assert prop.get("default", "") is not None


def test_the_version_rule_and_non_empty_filters_are_documented(document: dict[str, Any]) -> None:
    parameters = {p["name"]: p for p in document["paths"]["/v1/instances"]["get"]["parameters"]}
    assert "needs `workflow` and no `status`" in parameters["version"]["description"]
    assert parameters["cursor"]["schema"]["minLength"] == 1
    counts = {p["name"]: p for p in document["paths"]["/v1/counts"]["get"]["parameters"]}
    assert counts["workflow"]["schema"]["pattern"].startswith("^(?:[A-Za-z_]")  # "" fails it
