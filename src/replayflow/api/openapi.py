"""The OpenAPI 3.1 document of the HTTP API (served at /openapi.json), written by hand
next to the routes in api/http.py; tests/integration/test_api_schemathesis.py checks
the server against it."""

from __future__ import annotations

from typing import Any

from replayflow.api.projection import STATUSES

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}$"
NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$"


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    code: {"$ref": f"#/components/responses/{name}"}
    for code, name in (
        ("400", "BadRequest"),
        ("401", "Unauthorized"),
        ("413", "TooLarge"),
        ("503", "Unavailable"),
    )
}

_error_info = {
    "type": "object",
    "required": ["type", "message"],
    "properties": {
        "type": {"type": "string"},
        "message": {"type": "string"},
        "retryable": {"type": "boolean"},
        "details": {"type": ["string", "null"]},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["status", "message"],
                "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "ErrorInfo": _error_info,
    "Status": {"type": "string", "enum": list(STATUSES)},
    "InstanceSummary": {
        "type": "object",
        "required": ["id", "workflow", "status"],
        "properties": {
            "id": {"type": "string"},
            "workflow": {"type": "string"},
            "version": {"type": "string"},
            "status": _ref("Status"),
            "started_at": {"type": "integer"},
            "updated_at": {"type": "integer"},
            "ended_at": {"type": ["integer", "null"]},
            "seq": {"type": "integer"},
            "run": {"type": "integer"},
            "parent_id": {"type": ["string", "null"]},
            "reason": {"type": ["string", "null"]},
            "cancel_requested": {"type": "boolean"},
            "steps": {"type": "integer"},
            "events": {"type": "integer"},
            "error": _nullable(_ref("ErrorInfo")),
        },
    },
    "Instance": {
        "allOf": [
            _ref("InstanceSummary"),
            {
                "type": "object",
                "properties": {
                    "input": {"type": ["string", "null"], "description": "JSON text"},
                    "output": {"type": ["string", "null"], "description": "JSON text"},
                    "parent_step": {"type": ["string", "null"]},
                    "recent": {"type": "array", "items": _ref("HistoryEvent")},
                },
            },
        ]
    },
    "HistoryEvent": {
        "type": "object",
        "required": ["type", "seq", "at", "instance_id"],
        "additionalProperties": True,
        "properties": {
            "type": {"type": "string"},
            "seq": {"type": "integer"},
            "at": {"type": "integer"},
            "instance_id": {"type": "string"},
        },
    },
    "TimelineEntry": {
        "type": "object",
        "required": ["n", "kind", "key", "status"],
        "additionalProperties": True,
        "properties": {
            "n": {"type": "integer"},
            "kind": {"type": "string", "enum": ["step", "child", "sleep", "wait", "event"]},
            "key": {"type": "string"},
            "status": {"type": "string"},
            "started_at": {"type": ["integer", "null"]},
            "ended_at": {"type": ["integer", "null"]},
            "attempts": {"type": "array", "items": {"type": "object"}},
        },
    },
    "StartRequest": {
        "type": "object",
        "required": ["workflow"],
        "additionalProperties": False,
        "properties": {
            "workflow": {"type": "string", "pattern": NAME_PATTERN},
            "input": {"description": "any JSON value"},
            "id": {
                "type": "string",
                "pattern": ID_PATTERN,
                "description": "idempotent: a second start with this id changes nothing",
            },
            "version": {"type": "string", "pattern": VERSION_PATTERN},
        },
    },
    "Reason": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"reason": {"type": "string", "maxLength": 1000}},
    },
    "Accepted": {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string"},
            "requested": {"type": "string"},
            "workflow": {"type": "string"},
            "sent": {"type": "string"},
        },
    },
    "Deployed": {
        "type": "object",
        "required": ["name", "version", "created"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "namespace": {"type": "string"},
            "digest": {"type": "string"},
            "deployed_at": {"type": "integer"},
            "created": {"type": "boolean"},
        },
    },
    "DeadLetter": {
        "type": "object",
        "required": ["id", "source_topic", "reason"],
        "properties": {
            "id": {"type": "string"},
            "source_topic": {"type": "string"},
            "source_partition": {"type": "integer"},
            "source_offset": {"type": "integer"},
            "key": {"type": ["string", "null"]},
            "value_hex": {"type": ["string", "null"]},
            "value_size": {"type": "integer"},
            "original": {"type": ["object", "null"]},
            "reason": {"type": "string"},
            "error_type": {"type": "string"},
            "at": {"type": "integer"},
            "redriven": {"type": "boolean"},
            "redriven_at": {"type": ["integer", "null"]},
        },
    },
}

_id_param = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "instance id (a '/' in it may be sent as is or as %2F)",
    "schema": {"type": "string", "pattern": ID_PATTERN},
}


def _action(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [_id_param],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": body or _ref("Reason")}},
            },
            "responses": {
                "202": _json(_ref("Accepted"), "the command is on the log"),
                "501": {"$ref": "#/components/responses/NotImplemented"},
                **ERRORS,
            },
        }
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def document() -> dict[str, Any]:
    status_counts = {"type": "object", "properties": {s: {"type": "integer"} for s in STATUSES}}
    paths: dict[str, Any] = {
        "/health": {
            "get": {
                "summary": "liveness and the partitions this process owns",
                "security": [],
                "responses": {"200": _json({"type": "object", "required": ["status"]}, "ok")},
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics of this process",
                "responses": {
                    "200": {
                        "description": "text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **ERRORS,
                },
            }
        },
        "/v1/instances": {
            "post": {
                "summary": "start an instance (idempotent by id)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("StartRequest")}},
                },
                "responses": {"202": _json(_ref("Accepted"), "the start is on the log"), **ERRORS},
            },
            "get": {
                "summary": "list instances, newest first, across all partitions",
                "parameters": [
                    _query(
                        "workflow",
                        {"type": "string", "pattern": NAME_PATTERN},
                        "only this workflow",
                    ),
                    _query("status", _ref("Status"), "only this status"),
                    _query(
                        "version",
                        {"type": "string", "pattern": VERSION_PATTERN},
                        "only this version (with workflow, without status)",
                    ),
                    _query(
                        "started_after",
                        {"type": "integer", "minimum": 0, "maximum": 10**13 - 1},
                        "epoch ms, inclusive",
                    ),
                    _query(
                        "started_before",
                        {"type": "integer", "minimum": 0, "maximum": 10**13 - 1},
                        "epoch ms, inclusive",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 500},
                        "page size (default 50)",
                    ),
                    _query("cursor", {"type": "string"}, "next_cursor of the last page"),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items", "next_cursor"],
                            "properties": {
                                "items": {"type": "array", "items": _ref("InstanceSummary")},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        },
                        "a page",
                    ),
                    **ERRORS,
                },
            },
        },
        "/v1/instances/batch": {
            "post": {
                "summary": "start up to 1,000 instances in one call",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["instances"],
                                "additionalProperties": False,
                                "properties": {
                                    "instances": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 1000,
                                        "items": _ref("StartRequest"),
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "202": _json(
                        {
                            "type": "object",
                            "required": ["ids", "count"],
                            "properties": {
                                "ids": {"type": "array", "items": {"type": "string"}},
                                "count": {"type": "integer"},
                            },
                        },
                        "the starts are on the log",
                    ),
                    **ERRORS,
                },
            }
        },
        "/v1/instances/{id}": {
            "get": {
                "summary": "one instance: status, input, output, error, recent history",
                "parameters": [_id_param],
                "responses": {
                    "200": _json(_ref("Instance"), "the instance"),
                    "404": {"$ref": "#/components/responses/NotFound"},
                    **ERRORS,
                },
            }
        },
        "/v1/instances/{id}/steps": {
            "get": {
                "summary": "the timeline: steps with attempts and timings, sleeps, waits",
                "parameters": [
                    _id_param,
                    _query(
                        "after",
                        {"type": "integer", "minimum": -1, "maximum": 10**9},
                        "entries after this n",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "page size (default 200)",
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": _ref("TimelineEntry")},
                                "next_after": {"type": ["integer", "null"]},
                            },
                        },
                        "a page",
                    ),
                    "404": {"$ref": "#/components/responses/NotFound"},
                    **ERRORS,
                },
            }
        },
        "/v1/instances/{id}/history": {
            "get": {
                "summary": "the raw history, paged by sequence number",
                "parameters": [
                    _id_param,
                    _query(
                        "after_seq",
                        {"type": "integer", "minimum": 0, "maximum": 10**11},
                        "events after this seq",
                    ),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "page size (default 100)",
                    ),
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {"type": "array", "items": _ref("HistoryEvent")},
                                "next_after_seq": {"type": ["integer", "null"]},
                            },
                        },
                        "a page",
                    ),
                    "404": {"$ref": "#/components/responses/NotFound"},
                    **ERRORS,
                },
            }
        },
        "/v1/instances/{id}/events": {
            "post": {
                "summary": "send an event to an instance",
                "parameters": [_id_param],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string", "pattern": NAME_PATTERN},
                                    "payload": {"description": "any JSON value"},
                                },
                            }
                        }
                    },
                },
                "responses": {"202": _json(_ref("Accepted"), "the event is on the log"), **ERRORS},
            }
        },
        "/v1/instances/{id}/cancel": _action("cancel: rf.Cancelled at the current await"),
        "/v1/instances/{id}/terminate": _action("terminate at once; no code runs"),
        "/v1/instances/{id}/pause": _action("pause: results are recorded, code waits"),
        "/v1/instances/{id}/resume": _action("resume a paused instance"),
        "/v1/instances/{id}/restart": _action(
            "restart from the start, or from a named step (keeping results before it)",
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "from_step": {"type": "string", "maxLength": 300},
                    "reason": {"type": "string", "maxLength": 1000},
                },
            },
        ),
        "/v1/counts": {
            "get": {
                "summary": "instances by status (optionally of one workflow), all partitions",
                "parameters": [
                    _query(
                        "workflow",
                        {"type": "string", "pattern": NAME_PATTERN},
                        "only this workflow",
                    )
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["counts", "total"],
                            "properties": {
                                "counts": status_counts,
                                "total": {"type": "integer"},
                                "workflow": {"type": ["string", "null"]},
                            },
                        },
                        "counts",
                    ),
                    **ERRORS,
                },
            }
        },
        "/v1/workflows": {
            "get": {
                "summary": "workflows and versions: with instances, or deployed",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {
                                "items": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "workflow": {"type": "string"},
                                            "instances": {"type": "integer"},
                                            "versions": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "version": {"type": "string"},
                                                        "instances": {"type": "integer"},
                                                        "deployed": {
                                                            "type": "boolean",
                                                            "description": "deployed DSL",
                                                        },
                                                    },
                                                },
                                            },
                                        },
                                    },
                                }
                            },
                        },
                        "workflows",
                    ),
                    **ERRORS,
                },
            },
            "post": {
                "summary": "deploy a Serverless Workflow DSL document (YAML or JSON)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/yaml": {"schema": {"type": "string"}},
                        "application/json": {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "201": _json(_ref("Deployed"), "deployed"),
                    "200": _json(_ref("Deployed"), "this exact document was deployed already"),
                    "501": {"$ref": "#/components/responses/NotImplemented"},
                    **ERRORS,
                },
            },
        },
        "/v1/dlq": {
            "get": {
                "summary": "dead-letter entries, newest last",
                "parameters": [
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 1000},
                        "newest entries (default 100)",
                    )
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["items"],
                            "properties": {"items": {"type": "array", "items": _ref("DeadLetter")}},
                        },
                        "entries",
                    ),
                    **ERRORS,
                },
            }
        },
        "/v1/dlq/{entry}/redrive": {
            "post": {
                "summary": "produce the entry's original record to its source topic, once",
                "parameters": [
                    {
                        "name": "entry",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": r"^\d{1,6}-\d{1,18}$"},
                    }
                ],
                "responses": {
                    "202": _json({"type": "object", "required": ["id", "redriven"]}, "redriven"),
                    "404": {"$ref": "#/components/responses/NotFound"},
                    "409": {"$ref": "#/components/responses/Conflict"},
                    **ERRORS,
                },
            }
        },
    }

    def error(description: str) -> dict[str, Any]:
        return _json(_ref("Error"), description)

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
            "schemas": SCHEMAS,
            "responses": {
                "BadRequest": error("the request is not valid (the message says why)"),
                "Unauthorized": error("a bearer token is needed"),
                "NotFound": error("no such instance or entry"),
                "Conflict": error("already done"),
                "TooLarge": error("over a size limit"),
                "Unavailable": error("the read model is rebalancing or a peer is down"),
                "NotImplemented": error("not available in this build"),
            },
        },
    }
