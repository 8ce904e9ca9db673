"""Bearer-token auth: when a token is configured (REPLAYFLOW_API_TOKEN or --token),
every API route needs `Authorization: Bearer <token>`; health, the OpenAPI document and
the UI's static files stay open (the UI sends the token it is given)."""

from __future__ import annotations

import hmac

from aiohttp import web

from replayflow.api.errors import ApiError


def is_open(path: str) -> bool:
    return path in ("/", "/health", "/openapi.json") or path.startswith("/ui/")


def check_auth(token: str | None, request: web.Request) -> None:
    if not token or is_open(request.path):
        return
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "this API needs 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "the bearer token is not valid")
