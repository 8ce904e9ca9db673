"""One declaration per HTTP operation: its method and path, its handler, what it reads
(path parameters, query, body: models of api/request_models.py) and what it answers
(shapes of api/reply_models.py). The router serves these declarations and
api/openapi.py writes the document from the same ones, so the two cannot drift."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from replayflow.api.request_models import Body, PathParams, Query
from replayflow.api.validation import read_body, read_path, read_query

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The errors any route with a token may answer (bad input, no token, too large, a
# peer or the read model unavailable).
STANDARD_ERRORS = (400, 401, 413, 503)


@dataclass(frozen=True)
class Reply:
    description: str
    shape: Any = None  # a typed dict or model; None: no body
    media: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as the document writes it: /v1/instances/{id}
    handler: Callable[..., Awaitable[web.StreamResponse]]
    summary: str
    replies: dict[int, Reply]
    errors: tuple[int, ...] = STANDARD_ERRORS
    path_params: type[PathParams] | None = None
    query: type[Query] | None = None
    body: type[Body] | None = None
    body_required: bool = True
    # A body that is not read into a model: media type -> its type (a document to deploy).
    raw_body: dict[str, Any] = field(default_factory=dict)

    @property
    def route(self) -> str:
        """The path as aiohttp's router matches it (an id may hold a '/')."""
        route = self.path
        if self.path_params is not None:
            for name, pattern in self.path_params.MATCH.items():
                route = route.replace(f"{{{name}}}", f"{{{name}:{pattern}}}")
        return route

    def bind(self) -> Handler:
        """The aiohttp handler: reads and checks the declared inputs, in the order path,
        query, body, and hands them to the handler as `path`, `query` and `body`."""

        async def handle(request: web.Request) -> web.StreamResponse:
            inputs: dict[str, Any] = {}
            if self.path_params is not None:
                inputs["path"] = read_path(request, self.path_params)
            if self.query is not None:
                inputs["query"] = read_query(request, self.query)
            if self.body is not None:
                inputs["body"] = await read_body(request, self.body, self.body_required)
            return await self.handler(request, **inputs)

        return handle


def register(router: web.UrlDispatcher, operations: list[Operation]) -> None:
    for operation in operations:
        router.add_route(operation.method, operation.route, operation.bind())
