"""GET /v1/instances and /v1/counts: lists and counts over every partition. Each process
returns at most `limit` entries after the cursor and the asked process merges them, so
a page costs O(limit x processes) whatever the number of instances."""

from __future__ import annotations

import heapq
from typing import Any

from aiohttp import web

from replayflow.api import projection as p
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError
from replayflow.api.operations import Operation, Reply
from replayflow.api.peers import Peers
from replayflow.api.reply_models import Counts, InstancePage
from replayflow.api.request_models import CountsQuery, ListQuery, encode_cursor


class Listing:
    def __init__(self, api: ApiContext, peers: Peers) -> None:
        self.api = api
        self.peers = peers

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/v1/instances",
                self.list_instances,
                "list instances, newest first, across all partitions",
                {200: Reply("a page", InstancePage)},
                query=ListQuery,
            ),
            Operation(
                "GET",
                "/v1/counts",
                self.counts,
                "instances by status (optionally of one workflow), all partitions",
                {200: Reply("counts", Counts)},
                query=CountsQuery,
            ),
        ]

    def _local_list(self, query: ListQuery, limit: int) -> list[tuple[str, dict[str, Any]]]:
        prefix = p.index_prefix(p.group(query.workflow, query.status, query.version))
        start = prefix
        if query.started_before is not None:
            start = max(start, prefix + p.sort_part(query.started_before).encode())
        if query.cursor is not None:
            start = max(start, prefix + query.cursor.encode() + b"\x00")
        out = []
        for k, _ in self.api.store.scan(prefix, start, limit):
            _, started_at, instance_id = p.split_index_key(k)
            if query.started_after is not None and started_at < query.started_after:
                break
            row = self.api.store.get(p.instance_key(instance_id))
            if row is None:
                continue
            sort = k[len(prefix) :].decode()
            out.append((sort, p.public_instance(row, full=False)))
        return out

    async def list_instances(self, request: web.Request, query: ListQuery) -> web.Response:
        if query.version is not None and (query.workflow is None or query.status is not None):
            raise ApiError(400, "'version' filters need 'workflow' and no 'status'")
        limit = query.limit

        def local() -> dict[str, Any]:
            rows = self._local_list(query, limit + 1)
            return {"items": [{"sort": s, **row} for s, row in rows]}

        if self.peers.asked_locally(request):
            return web.json_response(local())
        parts = await self.peers.fan_out(request, local)
        merged = list(
            heapq.merge(
                *(part["items"] for part in parts), key=lambda item: (item["sort"], item["id"])
            )
        )[: limit + 1]
        page = merged[:limit]
        next_cursor = None
        if len(merged) > limit:
            last = page[-1]
            next_cursor = encode_cursor(f"{last['sort']}{p.SEP}{last['id']}")
        items: Any = [{k: v for k, v in item.items() if k != "sort"} for item in page]
        return web.json_response(InstancePage(items=items, next_cursor=next_cursor))

    async def counts(self, request: web.Request, query: CountsQuery) -> web.Response:
        workflow = query.workflow

        def local() -> dict[str, Any]:
            counters = self.api.store.counters()
            return {"counts": {s: counters.get(p.group(workflow, s), 0) for s in p.STATUSES}}

        if self.peers.asked_locally(request):
            return web.json_response(local())
        parts = await self.peers.fan_out(request, local)
        counts = {s: sum(part["counts"].get(s, 0) for part in parts) for s in p.STATUSES}
        return web.json_response(
            Counts(counts=counts, total=sum(counts.values()), workflow=workflow)
        )
