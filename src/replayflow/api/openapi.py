"""The OpenAPI 3.1 document of the HTTP API (served at /openapi.json), written from the
operations the router serves (api/operations.py): pydantic gives the JSON Schema of
every body, parameter and answer. tests/integration/test_api_schemathesis.py checks the
server against it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from replayflow.api.auth import is_open
from replayflow.api.errors import ErrorReply
from replayflow.api.operations import Operation

_SCHEMAS = "#/components/schemas/"

# Error answers, shared by reference: status -> (name, description).
ERROR_REPLIES = {
    400: ("BadRequest", "the request is not valid (the message says why)"),
    401: ("Unauthorized", "a bearer token is needed"),
    404: ("NotFound", "no such instance, entry or file"),
    409: ("Conflict", "already done, or it does not fit the instance's state"),
    413: ("TooLarge", "over a size limit"),
    422: ("Unprocessable", "the engine refused it: an unknown workflow or version, ..."),
    501: ("NotImplemented", "not available in this build"),
    503: (
        "Unavailable",
        "not ready: the read model is restoring or rebalancing, a peer or Kafka is down",
    ),
}


class _Schemas:
    """components/schemas, filled as the operations refer to named shapes."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def inline(self, shape: Any, mode: JsonSchemaMode) -> dict[str, Any]:
        """The schema of a shape; the shapes it refers to go to components/schemas."""
        template = _SCHEMAS + "{model}"
        if isinstance(shape, type) and issubclass(shape, BaseModel):
            schema = shape.model_json_schema(ref_template=template, mode=mode)
        else:
            schema = TypeAdapter(shape).json_schema(ref_template=template, mode=mode)
        self.named.update(schema.pop("$defs", {}))
        return schema

    def of(self, shape: Any, mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        """A $ref for a named shape (a model or a typed dict), else the schema inline."""
        schema = self.inline(shape, mode)
        name = getattr(shape, "__name__", None)
        if name and schema.get("title") == name and schema.get("type") == "object":
            self.named[name] = schema
            return {"$ref": _SCHEMAS + name}
        return schema


def _parameters(operation: Operation, schemas: _Schemas) -> list[dict[str, Any]]:
    out = []
    for where, model in (("path", operation.path_params), ("query", operation.query)):
        if model is None:
            continue
        schema = schemas.inline(model, "validation")
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            prop = {k: v for k, v in prop.items() if k != "title"}
            description = prop.pop("description", None)
            # A query parameter left out is the null of its model: the schema is the
            # non-null one.
            options = [s for s in prop.pop("anyOf", [prop]) if s.get("type") != "null"]
            if "default" in prop and prop["default"] is not None:
                options[0] = {**options[0], "default": prop["default"]}
            parameter = {
                "name": name,
                "in": where,
                "required": where == "path" or name in required,
                "schema": options[0] if len(options) == 1 else {"anyOf": options},
            }
            if description:
                parameter["description"] = description
            out.append(parameter)
    return out


def _content(
    shape: Any, media: Sequence[str], schemas: _Schemas, mode: JsonSchemaMode
) -> dict[str, Any]:
    schema = schemas.of(shape, mode) if shape is not None else None
    out: dict[str, Any] = {}
    for kind in media:
        if kind.startswith("application/json"):
            out[kind] = {"schema": schema}
        else:  # text: the UI's files, the metrics exposition
            out[kind] = {"schema": {"type": "string"}}
    return out


def _operation(operation: Operation, schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": operation.summary}
    parameters = _parameters(operation, schemas)
    if parameters:
        out["parameters"] = parameters
    if operation.body is not None:
        out["requestBody"] = {
            "required": operation.body_required,
            "content": _content(operation.body, ["application/json"], schemas, "validation"),
        }
    elif operation.raw_body:
        out["requestBody"] = {
            "required": True,
            "content": {
                media: {"schema": schemas.of(shape, "validation")}
                for media, shape in operation.raw_body.items()
            },
        }
    responses: dict[str, Any] = {}
    for status, reply in operation.replies.items():
        answer: dict[str, Any] = {"description": reply.description}
        if reply.shape is not None or any(
            not m.startswith("application/json") for m in reply.media
        ):
            answer["content"] = _content(reply.shape, reply.media, schemas, "serialization")
        responses[str(status)] = answer
    for status in operation.errors:
        responses[str(status)] = {"$ref": f"#/components/responses/{ERROR_REPLIES[status][0]}"}
    out["responses"] = responses
    if is_open(operation.path):
        out["security"] = []
    return out


def document(operations: Sequence[Operation]) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(
            operation, schemas
        )
    error = schemas.of(ErrorReply)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "replayflow API",
            "version": "1",
            "description": "Durable workflows on Kafka: start, query and operate "
            "workflow instances. Times are epoch milliseconds; "
            "inputs, outputs and payloads in responses are JSON text.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(schemas.named.items())),
            "responses": {
                name: {
                    "description": description,
                    "content": {"application/json": {"schema": error}},
                }
                for name, description in ERROR_REPLIES.values()
            },
        },
    }
