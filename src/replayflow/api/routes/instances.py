"""/v1/instances: start instances, send them events and commands (to Kafka, through
replayflow.client.Client), and read one instance (answered by the process that owns
its partition)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from replayflow.api import projection as p
from replayflow.api.commands import Commands, CommandUnavailable
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError, ErrorReply
from replayflow.api.operations import STANDARD_ERRORS, Operation, Reply
from replayflow.api.peers import Peers
from replayflow.api.reply_models import (
    Accepted,
    BatchAccepted,
    HistoryPage,
    Instance,
    TimelinePage,
)
from replayflow.api.request_models import (
    MAX_BATCH,
    HistoryQuery,
    InstancePath,
    Reason,
    Restart,
    SendEvent,
    StartBatch,
    StartRequest,
    StepsQuery,
)

# The commands on one instance: name -> (its body, the document's summary).
ACTIONS: dict[str, tuple[type[Reason], str]] = {
    "cancel": (Reason, "cancel: rf.Cancelled at the current await"),
    "terminate": (Reason, "terminate at once; no code runs"),
    "pause": (Reason, "pause: results are recorded, code waits"),
    "resume": (Reason, "resume a paused instance"),
    "restart": (
        Restart,
        "restart from the start, or from a named step (keeping results before it)",
    ),
}

Spec = tuple[str, Any, str | None, str | None]


def _spec(start: StartRequest) -> Spec:
    return start.workflow, start.input, start.id, start.version


class Instances:
    def __init__(self, api: ApiContext, commands: Commands, peers: Peers) -> None:
        self.api = api
        self.commands = commands
        self.peers = peers

    def operations(self) -> list[Operation]:
        base = "/v1/instances"
        one = base + "/{id}"
        accepted = Reply("the command is on the log", Accepted)
        found = (404, *STANDARD_ERRORS)
        actions = [
            Operation(
                "POST",
                f"{one}/{name}",
                self._action(name),
                summary,
                {202: accepted},
                errors=(501, *STANDARD_ERRORS),
                path_params=InstancePath,
                body=body,
                body_required=False,
            )
            for name, (body, summary) in ACTIONS.items()
        ]
        return [
            Operation(
                "POST",
                base,
                self.create,
                "start an instance (idempotent by id)",
                {202: Reply("the start is on the log", Accepted)},
                body=StartRequest,
            ),
            Operation(
                "POST",
                base + "/batch",
                self.create_batch,
                "start up to 1,000 instances in one call",
                {
                    202: Reply("the starts are on the log", BatchAccepted),
                    413: Reply(
                        f"more than {MAX_BATCH:,} instances in one call, a payload over its "
                        "limit, or a body over the size limit",
                        ErrorReply,
                    ),
                },
                errors=tuple(e for e in STANDARD_ERRORS if e != 413),
                body=StartBatch,
            ),
            Operation(
                "GET",
                one + "/history",
                self.history,
                "the raw history, paged by sequence number",
                {200: Reply("a page", HistoryPage)},
                errors=found,
                path_params=InstancePath,
                query=HistoryQuery,
            ),
            Operation(
                "GET",
                one + "/steps",
                self.steps,
                "the timeline: steps with attempts and timings, sleeps, waits",
                {200: Reply("a page", TimelinePage)},
                errors=found,
                path_params=InstancePath,
                query=StepsQuery,
            ),
            Operation(
                "POST",
                one + "/events",
                self.send_event,
                "send an event to an instance",
                {202: Reply("the event is on the log", Accepted)},
                path_params=InstancePath,
                body=SendEvent,
            ),
            *actions,
            # Last: its {id} matches anything, the paths above included.
            Operation(
                "GET",
                one,
                self.get_instance,
                "one instance: status, input, output, error, recent history",
                {200: Reply("the instance", Instance)},
                errors=found,
                path_params=InstancePath,
            ),
        ]

    # -- commands -----------------------------------------------------------------------

    async def create(self, request: web.Request, body: StartRequest) -> web.Response:
        [instance_id] = await self.commands.start_many([_spec(body)])
        return web.json_response(
            Accepted(id=instance_id, workflow=body.workflow),
            status=202,
            headers={"Location": f"/v1/instances/{instance_id}"},
        )

    async def create_batch(self, request: web.Request, body: StartBatch) -> web.Response:
        ids = [start.id for start in body.instances if start.id is not None]
        if len(ids) != len(set(ids)):
            raise ApiError(400, "instance ids in one batch must be distinct")
        started = await self.commands.start_many([_spec(start) for start in body.instances])
        return web.json_response(BatchAccepted(ids=started, count=len(started)), status=202)

    async def send_event(
        self, request: web.Request, path: InstancePath, body: SendEvent
    ) -> web.Response:
        await self.commands.run("send_event", path.id, body.name, body.payload)
        return web.json_response(Accepted(id=path.id, sent=body.name), status=202)

    def _action(self, name: str) -> Any:
        async def handler(request: web.Request, path: InstancePath, body: Reason) -> web.Response:
            kwargs: dict[str, Any] = {"reason": body.reason or ""}
            if isinstance(body, Restart):
                kwargs["from_step"] = body.from_step
            try:
                await self.commands.run(name, path.id, **kwargs)
            except CommandUnavailable as exc:
                raise ApiError(501, str(exc)) from None
            return web.json_response(Accepted(id=path.id, requested=name), status=202)

        return handler

    # -- reads of one instance (routed to the owner) ---------------------------------------

    def _row(self, instance_id: str) -> dict[str, Any]:
        row = self.api.store.get(p.instance_key(instance_id))
        if row is None or not row.get("workflow"):
            raise ApiError(404, f"no instance {instance_id!r} (or not in the read model yet)")
        return row  # type: ignore[no-any-return]

    async def get_instance(self, request: web.Request, path: InstancePath) -> web.Response:
        def local() -> web.Response:
            return web.json_response(p.public_instance(self._row(path.id)))

        return await self.peers.routed(request, path.id, local)

    async def steps(
        self, request: web.Request, path: InstancePath, query: StepsQuery
    ) -> web.Response:
        instance_id, limit = path.id, query.limit

        def local() -> web.Response:
            self._row(instance_id)
            start = p.call_key(instance_id, query.after + 1)
            rows = self.api.store.scan(p.calls_prefix(instance_id), start, limit + 1)
            items = [v for _, v in rows[:limit]]
            more = len(rows) > limit
            return web.json_response(
                TimelinePage(items=items, next_after=items[-1]["n"] if more else None)
            )

        return await self.peers.routed(request, instance_id, local)

    async def history(
        self, request: web.Request, path: InstancePath, query: HistoryQuery
    ) -> web.Response:
        instance_id, limit = path.id, query.limit

        def local() -> web.Response:
            self._row(instance_id)
            start = p.history_key(instance_id, query.after_seq + 1)
            rows = self.api.store.scan(p.history_prefix(instance_id), start, limit + 1)
            items = [v for _, v in rows[:limit]]
            more = len(rows) > limit
            return web.json_response(
                HistoryPage(items=items, next_after_seq=items[-1]["seq"] if more else None)
            )

        return await self.peers.routed(request, instance_id, local)
