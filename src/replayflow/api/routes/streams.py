"""GET /v1/instances/{id}/streams/{name}: a durable stream as server-sent events.

Any API process can serve any stream: it reads replayflow.streams itself (the read
model only says whether the instance exists and whether it has ended). Each item is
one event: `event:` its kind (value, retracted, closed, ended), `id:` its cursor,
`data:` the item as JSON. A browser's EventSource that reconnects sends Last-Event-ID
and goes on right after that item; `start` does the same for other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, ClassVar
from urllib.parse import quote

import aiohttp
from aiohttp import web
from pydantic import AfterValidator, Field

from replayflow.api import projection as p
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError
from replayflow.api.operations import STANDARD_ERRORS, Operation, Reply
from replayflow.api.peers import FORWARDED, Peers
from replayflow.api.request_models import EventName, InstanceId, PathParams, Query
from replayflow.core.state import FINAL_STATUSES
from replayflow.core.stream_view import CURSOR_PATTERN
from replayflow.core.streams import Cursor, StreamItem
from replayflow.streams import Stream

# Kafka reads block: they run here, not in the event loop's small default pool.
_READS = ThreadPoolExecutor(64, thread_name_prefix="replayflow-stream-read")
HEARTBEAT = 15.0  # seconds between comments that keep proxies from closing the connection
_FINAL = {status.value for status in FINAL_STATUSES}


def _cursor(raw: str) -> str:
    try:
        return str(Cursor.parse(raw))
    except ValueError as exc:
        raise ValueError(f"query parameter 'start': {exc}") from None


class StreamPath(PathParams):
    MATCH: ClassVar[dict[str, str]] = {"id": ".+"}

    id: InstanceId = Field(description="instance id")
    name: EventName = Field(description="stream name")


class StreamQuery(Query):
    start: Annotated[
        str,
        Field(max_length=60, json_schema_extra={"pattern": CURSOR_PATTERN}),
        AfterValidator(_cursor),
    ] = Field(
        "0",
        description="where to start: an offset (0: the first), or an event's id to go on "
        "right after that event",
    )
    settled: bool = Field(False, description="only values of attempts that completed")
    follow: bool = Field(True, description="keep the connection open for new values")


class StreamRoutes:
    def __init__(self, api: ApiContext, peers: Peers) -> None:
        self.api = api
        self.peers = peers

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/v1/instances/{id}/streams/{name}",
                self.stream,
                "a durable stream of an instance, live, as server-sent events (event: "
                "value | retracted | closed | ended; id: the item's cursor; data: the item "
                "as JSON)",
                {200: Reply("the stream's items", media=("text/event-stream",))},
                errors=(404, *STANDARD_ERRORS),
                path_params=StreamPath,
                query=StreamQuery,
            )
        ]

    async def stream(
        self, request: web.Request, path: StreamPath, query: StreamQuery
    ) -> web.StreamResponse:
        status = await self._status(request, path.id)
        start = Cursor.parse(query.start)
        with contextlib.suppress(ValueError):  # not one of our ids: start as asked
            start = Cursor.parse(request.headers.get("Last-Event-ID", "") or str(start))
        # An ended instance's streams are complete on the log (the end marker was
        # committed with the ending): read them to the end and stop.
        follow = query.follow and status not in _FINAL
        loop = asyncio.get_running_loop()
        reader = await loop.run_in_executor(
            _READS,
            lambda: Stream(
                self.api.config.settings,
                path.id,
                path.name,
                start=start,
                settled=query.settled,
                follow=follow,
            ),
        )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 1000\n\n")
            quiet = 0.0
            while True:
                batch = await loop.run_in_executor(_READS, reader.next_batch, 0.25)
                if batch is None:
                    break
                for item in batch:
                    await response.write(_event(item))
                quiet = 0.0 if batch else quiet + 0.25
                if quiet >= HEARTBEAT:
                    await response.write(b": keepalive\n\n")
                    quiet = 0.0
        except (ConnectionResetError, asyncio.CancelledError):
            pass  # the client went away
        finally:
            await loop.run_in_executor(_READS, reader.close)
        return response

    async def _status(self, request: web.Request, instance_id: str) -> str:
        """The instance's status from the read model (404 when it has none)."""
        owner = None if request.headers.get(FORWARDED) else self.api.owner_of(instance_id)
        if request.headers.get(FORWARDED) or owner == self.api.config.url:
            row = self.api.store.get(p.instance_key(instance_id))
        elif owner is None:
            raise ApiError(503, "the read model is being rebalanced; retry in a moment")
        else:
            row = await self._ask(owner, request, instance_id)
        if row is None or not row.get("workflow"):
            raise ApiError(404, f"no instance {instance_id!r} (or not in the read model yet)")
        return str(row.get("status", ""))

    async def _ask(self, owner: str, request: web.Request, instance_id: str) -> Any:
        headers = {FORWARDED: "1"}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        session = await self.peers.session()
        url = f"{owner}/v1/instances/{quote(instance_id, safe='')}"
        try:
            async with session.get(url, headers=headers) as answer:
                if answer.status == 404:
                    return None
                if answer.status != 200:
                    raise ApiError(503, f"API process {owner} answered {answer.status}")
                return await answer.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ApiError(
                503, f"the API process that owns {instance_id!r} did not answer: {exc}"
            ) from None


def _event(item: StreamItem) -> bytes:
    data = json.dumps(item.to_json(), separators=(",", ":"))
    return f"event: {item.kind}\nid: {item.cursor}\ndata: {data}\n\n".encode()
