"""The HTTP API on faust's aiohttp web server: the middlewares (errors as JSON, bearer
auth) and the routes of api/routes/, JSON in and out. Commands go to Kafka through
replayflow.client.Client; reads come from the read model (api/tables.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from replayflow.api.auth import check_auth
from replayflow.api.config import ApiConfig
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError, error_response
from replayflow.api.operations import Operation, register
from replayflow.api.routes import operations
from replayflow.core.errors import ReplayflowError

log = logging.getLogger("replayflow.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middlewares(config: ApiConfig) -> list[Any]:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.message)
        except (ReplayflowError, ValueError) as exc:
            return error_response(400, str(exc))
        except web.HTTPRequestEntityTooLarge as exc:
            return error_response(
                413, f"request body over the limit of {config.max_body} bytes ({exc.text})"
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = {
                404: f"no route {request.method} {request.path}",
                405: f"method {request.method} not allowed on {request.path}",
            }.get(exc.status, exc.reason)
            response = error_response(exc.status, message)
            if isinstance(exc, web.HTTPMethodNotAllowed):
                # RFC 9110: a 405 names the methods the resource has.
                response.headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
            return response
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            return error_response(500, "internal error (logged by the API process)")

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_auth(config.token, request)
        return await handler(request)

    return [errors, auth]


def register_routes(api: ApiContext, router: web.UrlDispatcher) -> list[Operation]:
    served = operations(api)
    register(router, served)
    return served
