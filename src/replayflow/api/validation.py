"""Requests read into the models of api/request_models.py; what pydantic refuses becomes
an ApiError whose message says, in the API's words, what to change.

Of several errors the answer names one: the first that a reader fixes first (an object
before its fields, an unknown field before a bad value, the fields in order).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar, get_args

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from replayflow.api.errors import ApiError

M = TypeVar("M", bound=BaseModel)

_NOT_AN_OBJECT = frozenset({"model_type", "model_attributes_type", "dict_type"})
_STATUS = {"payload_too_large": 413, "too_large": 413}


async def read_json(request: web.Request, required: bool = True) -> Any:
    """The body as JSON ({} when it is empty and not required)."""
    raw = await request.read()
    if not raw:
        if required:
            raise ApiError(400, "a JSON body is required")
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "the body is nested too deeply") from None


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _api_error(model, exc.errors()) from None


async def read_body(request: web.Request, model: type[M], required: bool = True) -> M:
    return validate(model, await read_json(request, required))


def read_query(request: web.Request, model: type[M]) -> M:
    # The first value of a repeated parameter. An empty value is checked like any
    # other (`?workflow=` is not a workflow name): leave a parameter out for no filter.
    query = request.query
    return validate(model, {k: query[k] for k in query})


def read_path(request: web.Request, model: type[M]) -> M:
    return validate(model, dict(request.match_info))


# ---------------------------------------------------------------------- messages


def _api_error(model: type[BaseModel], errors: list[ErrorDetails]) -> ApiError:
    def order(error: ErrorDetails) -> tuple[tuple[int, ...], int]:
        items = tuple(part for part in error["loc"] if isinstance(part, int))
        rank = (
            0 if error["type"] in _NOT_AN_OBJECT else 1 if error["type"] == "extra_forbidden" else 2
        )
        return items, rank

    first = sorted(errors, key=order)[0]  # stable: pydantic's field order otherwise
    loc = first["loc"]
    kind = first["type"]
    if kind in _NOT_AN_OBJECT:
        return ApiError(400, f"{_what(loc)} must be a JSON object")
    if not loc:  # about the whole body, not a field of it
        return ApiError(_STATUS.get(kind, 400), str(first["msg"]))
    owner_loc = loc[:-1]
    owner = _model_at(model, owner_loc)
    field = str(loc[-1])
    if kind == "extra_forbidden":
        extra = sorted(
            str(e["loc"][-1])
            for e in errors
            if e["type"] == "extra_forbidden" and e["loc"][:-1] == owner_loc
        )
        allowed = sorted(owner.model_fields)
        return ApiError(
            400,
            f"{_what(owner_loc)} has unknown field(s) {', '.join(extra)}; "
            f"allowed: {', '.join(allowed)}",
        )
    # Inside a list (a batch) every message names the item: instances[3]: ...
    in_list = any(isinstance(part, int) for part in owner_loc)
    prefix = f"{_what(owner_loc)}: " if in_list or getattr(owner, "PREFIX_ERRORS", False) else ""
    item = f"{_what(owner_loc)}: " if in_list else ""
    name = f"{item}{getattr(owner, 'FIELD', 'field')} {field!r}"
    ctx = first.get("ctx", {})
    if kind == "value_error":
        return ApiError(400, prefix + str(ctx.get("error", first["msg"])))
    if kind.startswith("payload_"):
        return ApiError(_STATUS.get(kind, 400), f"{prefix}{field} {first['msg']}")
    if kind == "missing":
        return ApiError(400, f"{name} is required")
    if kind == "string_type":
        return ApiError(400, f"{name} must be a string")
    if kind == "string_too_short":
        return ApiError(400, f"{name} must not be empty")
    if kind == "string_too_long":
        return ApiError(400, f"{name} is longer than {ctx['max_length']} characters")
    if kind == "enum":
        return ApiError(400, f"{name} must be {ctx.get('expected', 'one of its values')}")
    if kind == "int_parsing":
        return ApiError(400, f"{name} must be an integer, not {first['input']!r}")
    schema = owner.model_json_schema()["properties"].get(field, {})
    schema = next((s for s in schema.get("anyOf", ()) if s.get("type") != "null"), schema)
    if kind in ("greater_than_equal", "less_than_equal"):
        low, high = schema.get("minimum"), schema.get("maximum")
        return ApiError(400, f"{name} must be between {low} and {high}")
    if kind == "literal_error":
        return ApiError(400, f"{name} must be one of {', '.join(schema.get('enum', ()))}")
    return ApiError(_STATUS.get(kind, 400), f"{prefix}{first['msg']}")


def _what(loc: tuple[int | str, ...]) -> str:
    """The object an error is in, as a person reads it: the body, instances[3]."""
    if not loc:
        return "the body"
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model of the object at `loc` (a list's items: its item type)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            current = get_args(current)[0]
        else:
            current = current.model_fields[part].annotation
    return current  # type: ignore[no-any-return]
