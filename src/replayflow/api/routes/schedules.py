"""/v1/schedules: create, update, delete, pause, unpause, trigger and backfill (commands
to Kafka through the client's schedule operations), describe and list (the read model:
a schedule's row lives on the partition of its key `~schedule:<id>`, so a describe is
answered by that partition's owner and a list fans out to every process)."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

from replayflow.api.commands import Commands
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError
from replayflow.api.operations import STANDARD_ERRORS, Operation, Reply
from replayflow.api.peers import Peers
from replayflow.api.schedule_models import (
    BackfillRequest,
    CreateScheduleRequest,
    NoteRequest,
    ScheduleAccepted,
    ScheduleListQuery,
    SchedulePage,
    SchedulePath,
    ScheduleQuery,
    ScheduleShape,
    TriggerRequest,
    UpdateScheduleRequest,
)
from replayflow.api.schedule_rows import ROWS, row_key
from replayflow.core.schedule_ops import ScheduleOps
from replayflow.core.schedule_state import schedule_key
from replayflow.core.schedule_view import describe


class ScheduleRoutes:
    def __init__(self, api: ApiContext, commands: Commands, peers: Peers) -> None:
        self.api = api
        self.commands = commands
        self.peers = peers

    def operations(self) -> list[Operation]:
        base = "/v1/schedules"
        one = base + "/{id}"
        accepted = {202: Reply("the command is on the log", ScheduleAccepted)}
        found = (404, *STANDARD_ERRORS)
        return [
            Operation(
                "GET",
                base,
                self.list_schedules,
                "schedules by id, each with its next fire time and recent runs",
                {200: Reply("a page", SchedulePage)},
                query=ScheduleListQuery,
            ),
            Operation(
                "POST",
                base,
                self.create,
                "create a schedule (with upsert: or update it)",
                accepted,
                body=CreateScheduleRequest,
            ),
            Operation(
                "POST",
                one + "/pause",
                self.pause,
                "pause: slots that fall in the pause do not run",
                accepted,
                path_params=SchedulePath,
                body=NoteRequest,
                body_required=False,
            ),
            Operation(
                "POST",
                one + "/unpause",
                self.unpause,
                "unpause: fire again from the next slot",
                accepted,
                path_params=SchedulePath,
                body=NoteRequest,
                body_required=False,
            ),
            Operation(
                "POST",
                one + "/trigger",
                self.trigger,
                "start a run now (also while paused)",
                accepted,
                path_params=SchedulePath,
                body=TriggerRequest,
                body_required=False,
            ),
            Operation(
                "POST",
                one + "/backfill",
                self.backfill,
                "run the slots of a time range that have not run",
                accepted,
                path_params=SchedulePath,
                body=BackfillRequest,
            ),
            # Last: their {id} matches anything, the paths above included.
            Operation(
                "GET",
                one,
                self.get_schedule,
                "a schedule: spec, policies, next fire times, recent runs",
                {200: Reply("the schedule", ScheduleShape)},
                errors=found,
                path_params=SchedulePath,
                query=ScheduleQuery,
            ),
            Operation(
                "PUT",
                one,
                self.update,
                "replace the spec and policies (and with workflow, what runs) from the next slot",
                accepted,
                path_params=SchedulePath,
                body=UpdateScheduleRequest,
            ),
            Operation(
                "DELETE",
                one,
                self.delete,
                "delete a schedule; the runs it started go on",
                accepted,
                path_params=SchedulePath,
            ),
        ]

    # -- commands --------------------------------------------------------------------

    async def _send(self, call: Callable[[ScheduleOps], Any]) -> Any:
        return await asyncio.to_thread(lambda: call(self.commands.client().schedules))

    @staticmethod
    def _accepted(schedule_id: str, requested: str, run: str | None = None) -> web.Response:
        answer = ScheduleAccepted(id=schedule_id, requested=requested)
        if run is not None:
            answer["instance_id"] = run
        return web.json_response(answer, status=202)

    async def create(self, request: web.Request, body: CreateScheduleRequest) -> web.Response:
        schedule = body.schedule(paused=body.paused or False, note=body.note or "")
        await self._send(
            lambda s: s.create(body.id, body.workflow, schedule, upsert=bool(body.upsert))
        )
        return web.json_response(
            ScheduleAccepted(id=body.id, requested="create"),
            status=202,
            headers={"Location": f"/v1/schedules/{body.id}"},
        )

    async def update(
        self, request: web.Request, path: SchedulePath, body: UpdateScheduleRequest
    ) -> web.Response:
        schedule = body.schedule()
        await self._send(lambda s: s.update(path.id, schedule, workflow=body.workflow))
        return self._accepted(path.id, "update")

    async def delete(self, request: web.Request, path: SchedulePath) -> web.Response:
        await self._send(lambda s: s.delete(path.id))
        return self._accepted(path.id, "delete")

    async def pause(
        self, request: web.Request, path: SchedulePath, body: NoteRequest
    ) -> web.Response:
        await self._send(lambda s: s.pause(path.id, note=body.note or ""))
        return self._accepted(path.id, "pause")

    async def unpause(
        self, request: web.Request, path: SchedulePath, body: NoteRequest
    ) -> web.Response:
        await self._send(lambda s: s.unpause(path.id, note=body.note or ""))
        return self._accepted(path.id, "unpause")

    async def trigger(
        self, request: web.Request, path: SchedulePath, body: TriggerRequest
    ) -> web.Response:
        run = await self._send(lambda s: s.trigger(path.id, overlap=body.overlap))
        return self._accepted(path.id, "trigger", run)

    async def backfill(
        self, request: web.Request, path: SchedulePath, body: BackfillRequest
    ) -> web.Response:
        if body.end < body.start:
            raise ApiError(400, "the range ends before it starts")
        await self._send(lambda s: s.backfill(path.id, body.start, body.end, body.overlap))
        return self._accepted(path.id, "backfill")

    # -- reads -----------------------------------------------------------------------

    def _row(self, schedule_id: str) -> dict[str, Any]:
        row = self.api.store.get(row_key(schedule_id))
        if row is None or row.get("deleted"):
            raise ApiError(404, f"no schedule {schedule_id!r} (or not in the read model yet)")
        return row  # type: ignore[no-any-return]

    async def get_schedule(
        self, request: web.Request, path: SchedulePath, query: ScheduleQuery
    ) -> web.Response:
        def local() -> web.Response:
            row = self._row(path.id)
            return web.json_response(describe(row, _now_ms(), query.next).to_dict())

        return await self.peers.routed(request, schedule_key(path.id), local)

    async def list_schedules(self, request: web.Request, query: ScheduleListQuery) -> web.Response:
        limit = query.limit

        def local() -> list[ScheduleShape]:
            start = ROWS + (query.after.encode() + b"\x00" if query.after else b"")
            now = _now_ms()
            items: list[ScheduleShape] = []
            # Deleted rows are skipped, so a page may take several reads of `limit`.
            while len(items) < limit:
                rows = self.api.store.scan(ROWS, start, limit)
                for _, row in rows:
                    if not row.get("deleted"):
                        items.append(cast(ScheduleShape, describe(row, now, 1).to_dict()))
                if len(rows) < limit:
                    break
                start = rows[-1][0] + b"\x00"
            return items[:limit]

        parts = await self.peers.fan_out(request, local)
        merged = list(heapq.merge(*parts, key=lambda item: item["id"]))
        items = merged[:limit]
        more = len(merged) > limit
        return web.json_response(
            SchedulePage(items=items, next_after=items[-1]["id"] if more else None)
        )


def _now_ms() -> int:
    return int(time.time() * 1000)
