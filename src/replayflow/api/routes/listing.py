"""GET /v1/instances and /v1/counts: lists and counts over every partition. Each process
returns at most `limit` entries after the cursor and the asked process merges them, so
a page costs O(limit x processes) whatever the number of instances."""

from __future__ import annotations

import bisect
import heapq
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from replayflow.api import projection as p
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError
from replayflow.api.operations import Operation, Reply
from replayflow.api.peers import Peers
from replayflow.api.reply_models import Counts, InstancePage, QueueCounts
from replayflow.api.request_models import CountsQuery, ListQuery, QueueQuery, encode_cursor

#: Rows a search by id prefix reads per process for one page (filters may skip rows).
SEARCH_SCAN = 5000
#: Queue entries read per process to place queued instances (a longer queue: the
#: positions count only this many older entries).
QUEUE_SCAN = 100_000
#: The sort part of search results: they are merged in id order.
ID_ORDER = "0" * 13


def _matches(row: dict[str, Any], query: ListQuery) -> bool:
    started = row.get("started_at") or 0
    return (
        (query.workflow is None or row.get("workflow") == query.workflow)
        and (query.status is None or row.get("status") == query.status)
        and (query.version is None or row.get("version") == query.version)
        and (query.started_after is None or started >= query.started_after)
        and (query.started_before is None or started <= query.started_before)
    )


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
            Operation(
                "GET",
                "/v1/queue",
                self.queue,
                "how many QUEUED instances of a workflow started before each given time",
                {200: Reply("one count per time", QueueCounts)},
                query=QueueQuery,
            ),
        ]

    def _local_search(self, query: ListQuery, limit: int) -> list[tuple[str, dict[str, Any]]]:
        """Instances whose id starts with query.prefix, in id order, with the filters."""
        keys = p.instance_key(query.prefix or "")
        start = keys
        if query.cursor is not None:
            start = max(start, p.instance_key(query.cursor.split(p.SEP, 1)[1]) + b"\x00")
        out = []
        seen = 0
        for _, row in self.api.store.scan(keys, start, SEARCH_SCAN):
            seen += 1
            if not row.get("workflow") or not _matches(row, query):
                continue
            out.append((ID_ORDER, p.public_instance(row, full=False)))
            if len(out) >= limit:
                break
        return out

    def _local_list(self, query: ListQuery, limit: int) -> list[tuple[str, dict[str, Any]]]:
        if query.prefix is not None:
            return self._local_search(query, limit)
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
        await self.add_queue_positions(request, items)
        return web.json_response(InstancePage(items=items, next_cursor=next_cursor))

    # -- queue positions ------------------------------------------------------------

    def _local_queued_before(self, workflow: str, times: list[int]) -> list[int]:
        """Per time: this process's QUEUED instances of `workflow` started before it.
        One scan of the queue's index, from the latest time asked to the oldest entry
        (the index is newest first)."""
        if not times:
            return []
        prefix = p.index_prefix(p.group(workflow, "QUEUED"))
        start = prefix + p.sort_part(max(times) - 1).encode()
        started = sorted(
            p.split_index_key(k)[1] for k, _ in self.api.store.scan(prefix, start, QUEUE_SCAN)
        )
        return [bisect.bisect_left(started, t) for t in times]

    async def queue(self, request: web.Request, query: QueueQuery) -> web.Response:
        def local() -> dict[str, Any]:
            return {"counts": self._local_queued_before(query.workflow, query.before)}

        parts = await self.peers.fan_out(request, local)
        counts = [sum(part["counts"][i] for part in parts) for i in range(len(query.before))]
        return web.json_response(QueueCounts(workflow=query.workflow, counts=counts))

    async def add_queue_positions(self, request: web.Request, items: list[Any]) -> None:
        """Give each QUEUED item its place in its workflow's queue (1: admitted next),
        by start time: one fan-out per workflow in the page."""
        queued: dict[str, list[dict[str, Any]]] = {}
        for item in items:
            if item.get("status") == "QUEUED":
                queued.setdefault(item["workflow"], []).append(item)
        for workflow, rows in queued.items():
            times = [int(r["started_at"]) for r in rows]

            def local(workflow: str = workflow, times: list[int] = times) -> dict[str, Any]:
                return {"counts": self._local_queued_before(workflow, times)}

            path = "/v1/queue?" + urlencode(
                {"workflow": workflow, "before": ",".join(map(str, times))}
            )
            parts = await self.peers.fan_out(request, local, path_qs=path)
            for i, row in enumerate(rows):
                row["queue_position"] = sum(part["counts"][i] for part in parts) + 1

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
