"""The OpenAPI document is written from the operations the router serves: every route
is in it with its inputs and answers, its formats are core/names.py's, and the answers
it describes are the shapes the read model gives."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
from pydantic import TypeAdapter

from replayflow.api import projection as p
from replayflow.api.config import ApiConfig
from replayflow.api.operations import Operation
from replayflow.api.reply_models import Instance, InstanceSummary, TimelineEntry
from replayflow.api.routes import operations
from replayflow.core import names
from replayflow.settings import Settings
from tests.unit.api.test_projection import happy_path


@pytest.fixture(scope="module")
def served() -> list[Operation]:
    context = SimpleNamespace(
        config=ApiConfig(settings=Settings()), store=None, partitions=3, folded=0
    )
    return operations(context)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def document(served: list[Operation]) -> dict[str, Any]:
    [openapi] = [o for o in served if o.path == "/openapi.json"]
    response = asyncio.run(openapi.handler(None))
    return json.loads(response.body)  # type: ignore[no-any-return]


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_served_route_is_documented_and_nothing_else(
    served: list[Operation], document: dict[str, Any]
) -> None:
    assert document["openapi"].startswith("3.1")
    routes = {(o.method.lower(), o.path) for o in served}
    documented = {(m, path) for path, ops in document["paths"].items() for m in ops}
    assert routes == documented
    assert len(routes) == len(served) >= 22


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert "#/components/schemas/StartRequest" in refs
    for ref in refs:
        assert _resolve(document, {"$ref": ref}) is not None, ref


def test_inputs_and_answers_are_described(
    served: list[Operation], document: dict[str, Any]
) -> None:
    for o in served:
        described = document["paths"][o.path][o.method.lower()]
        for status, reply in o.replies.items():
            answer = described["responses"][str(status)]
            if reply.shape is not None:
                schema = _resolve(document, answer["content"]["application/json"]["schema"])
                assert schema.get("type") == "object", (o.path, status)
        if o.body is not None:
            schema = described["requestBody"]["content"]["application/json"]["schema"]
            assert _resolve(document, schema)["additionalProperties"] is False
        wanted = set()
        for model in (o.path_params, o.query):
            wanted |= set(model.model_fields) if model is not None else set()
        assert {q["name"] for q in described.get("parameters", [])} == wanted, o.path
        for status in o.errors:
            error = _resolve(document, described["responses"][str(status)])
            assert (
                "error"
                in _resolve(document, error["content"]["application/json"]["schema"])["properties"]
            )


def test_open_routes_need_no_token(document: dict[str, Any]) -> None:
    for path in ("/", "/health", "/openapi.json", "/ui/", "/ui/{file}"):
        assert document["paths"][path]["get"]["security"] == []
    assert "security" not in document["paths"]["/v1/instances"]["get"]
    assert document["security"] == [{"bearer": []}]


@pytest.mark.parametrize("value", ["order-1", "a/b:c@d+e=f", "x" * 200, " x", "x" * 201, "-a"])
def test_the_id_pattern_is_core_names(document: dict[str, Any], value: str) -> None:
    [param] = document["paths"]["/v1/instances/{id}"]["get"]["parameters"]
    try:
        names.check_instance_id(value)
        valid = True
    except ValueError:
        valid = False
    try:
        jsonschema.validate(value, param["schema"])
        documented = True
    except jsonschema.ValidationError:
        documented = False
    assert documented == valid


@pytest.mark.parametrize("value", ["greeter", "_x.y-z", "w" * 128, "w" * 129, "9lives", "a b"])
def test_the_name_pattern_is_core_names(document: dict[str, Any], value: str) -> None:
    schema = _resolve(document, {"$ref": "#/components/schemas/StartRequest"})
    try:
        names.check_name(value)
        valid = True
    except ValueError:
        valid = False
    try:
        jsonschema.validate({"workflow": value}, schema)
        documented = True
    except jsonschema.ValidationError:
        documented = False
    assert documented == valid


def test_the_read_models_rows_are_the_documented_answers() -> None:
    store = p.fold_all(happy_path())
    instance_id = happy_path()[0].instance_id
    row = json.loads(store[p.instance_key(instance_id)])
    TypeAdapter(Instance).validate_python(p.public_instance(row))
    TypeAdapter(InstanceSummary).validate_python(p.public_instance(row, full=False))
    prefix = p.calls_prefix(instance_id)
    entries = [json.loads(v) for k, v in store.items() if k.startswith(prefix)]
    assert entries
    TypeAdapter(list[TimelineEntry]).validate_python(entries)
