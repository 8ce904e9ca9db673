"""Requests between API processes. A read of one instance is answered by the process
that owns its partition: another process forwards it there (one hop, marked with
X-Replayflow-Forwarded). Lists and counts fan out to every process that owns
partitions (X-Replayflow-Local asks a process for its own partitions only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError

FORWARDED = "X-Replayflow-Forwarded"
LOCAL = "X-Replayflow-Local"

T = TypeVar("T")


class Peers:
    def __init__(self, api: ApiContext) -> None:
        self.api = api
        self._session: aiohttp.ClientSession | None = None

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    async def call(
        self, url: str, request: web.Request, local: bool, path_qs: str | None = None
    ) -> tuple[int, Any]:
        """The same request (or a GET of `path_qs` with its credentials), to the API
        process at `url`: (status, JSON body)."""
        headers = {FORWARDED: "1"}
        if local:
            headers[LOCAL] = "1"
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        session = await self.session()
        if path_qs is not None:
            async with session.get(url + path_qs, headers=headers) as response:
                return response.status, await response.json(content_type=None)
        target = url + request.rel_url.path_qs
        async with session.request(
            request.method, target, headers=headers, data=await request.read() or None
        ) as response:
            return response.status, await response.json(content_type=None)

    async def routed(
        self, request: web.Request, instance_id: str, local: Callable[[], web.Response]
    ) -> web.Response:
        """`local()` where this process owns the instance, else the owner's answer."""
        if request.headers.get(FORWARDED):
            return local()
        owner = self.api.owner_of(instance_id)
        if owner is None:
            raise ApiError(503, "the read model is being rebalanced; retry in a moment")
        if owner == self.api.config.url:
            return local()
        try:
            status, body = await self.call(owner, request, local=False)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ApiError(
                503,
                f"the API process that owns {instance_id!r} ({owner}) did "
                f"not answer: {type(exc).__name__}",
            ) from None
        return web.json_response(body, status=status)

    def asked_locally(self, request: web.Request) -> bool:
        """A peer fanning out asks for this process's own partitions only."""
        return bool(request.headers.get(LOCAL))

    async def fan_out(
        self, request: web.Request, local: Callable[[], T], path_qs: str | None = None
    ) -> list[T]:
        """`local()` here and the same request's answer from every other process (or
        their answer to a GET of `path_qs`, another route whose local part is `local`)."""
        if self.asked_locally(request) and path_qs is None:
            return [local()]
        results = []
        for url in self.api.peers():
            if url == self.api.config.url:
                results.append(local())
                continue
            try:
                status, body = await self.call(url, request, local=True, path_qs=path_qs)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise ApiError(
                    503, f"API process {url} did not answer: {type(exc).__name__}"
                ) from None
            if status != 200:
                raise ApiError(503, f"API process {url} answered {status}")
            results.append(body)
        return results
