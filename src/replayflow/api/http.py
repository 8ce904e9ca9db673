"""HTTP API routes (aiohttp, on faust's web server), JSON in and out.

Reads of one instance are answered by the process that owns its partition: another
process forwards the request there (one hop, marked with X-Replayflow-Forwarded).
Lists and counts fan out to every process that owns partitions (X-Replayflow-Local
asks a process for its own partitions only) and merge: each process returns at most
`limit` entries after the cursor, so a page costs O(limit x processes) whatever the
number of instances. Commands go to Kafka through replayflow.client.Client.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from replayflow.api import projection as p
from replayflow.api.auth import check_auth
from replayflow.api.commands import Commands, CommandUnavailable
from replayflow.api.dlq import DeadLetterError, DeadLetters
from replayflow.api.openapi import document as openapi_document
from replayflow.core.errors import ReplayflowError
from replayflow.core.names import check_instance_id, check_name, check_version

if TYPE_CHECKING:
    from replayflow.api.app import ApiApp

log = logging.getLogger("replayflow.api")

FORWARDED = "X-Replayflow-Forwarded"
LOCAL = "X-Replayflow-Local"
MAX_BATCH = 1000
MAX_LIMIT = 500
MAX_JSON = 1024 * 1024  # bytes of one payload (input or event), as the engine's limit
_REASON_MAX = 1000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status)


def middlewares(api: ApiApp) -> list[Any]:
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
                413, f"request body over the limit of {api.config.max_body} bytes ({exc.text})"
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = {
                404: f"no route {request.method} {request.path}",
                405: f"method {request.method} not allowed on {request.path}",
            }.get(exc.status, exc.reason)
            return error_response(exc.status, message)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            return error_response(500, "internal error (logged by the API process)")

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_auth(api.config.token, request)
        return await handler(request)

    return [errors, auth]


# ----------------------------------------------------------------------------- helpers


async def _json_body(request: web.Request, required: bool = True) -> Any:
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


def _object(body: Any, what: str = "the body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    return body


def _only(body: dict[str, Any], allowed: set[str], what: str = "the body") -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise ApiError(
            400,
            f"{what} has unknown field(s) {', '.join(extra)}; "
            f"allowed: {', '.join(sorted(allowed))}",
        )


def _string(
    body: dict[str, Any], name: str, *, required: bool = False, max_length: int = 200
) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(400, f"field {name!r} is required")
        return None
    if not isinstance(value, str):
        raise ApiError(400, f"field {name!r} must be a string")
    if len(value) > max_length:
        raise ApiError(400, f"field {name!r} is longer than {max_length} characters")
    return value


def _payload(value: Any, what: str) -> Any:
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except RecursionError:  # parsed a little under the limit, but too deep to write
        raise ApiError(400, f"{what} is nested too deeply") from None
    if len(text.encode("utf-8")) > MAX_JSON:
        raise ApiError(413, f"{what} is over the payload limit of {MAX_JSON} bytes")
    return value


def _int_param(
    request: web.Request, name: str, default: int | None, low: int, high: int
) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name!r} must be between {low} and {high}")
    return value


def _instance_id(request: web.Request) -> str:
    try:
        return check_instance_id(request.match_info["id"])
    except ReplayflowError as exc:
        raise ApiError(400, str(exc)) from None


def _encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> str:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(400, "query parameter 'cursor' is not a cursor this API returned") from None
    sort, sep, instance_id = text.partition(p.SEP)
    if not sep or not sort.isdigit() or len(sort) != 13 or not instance_id:
        raise ApiError(400, "query parameter 'cursor' is not a cursor this API returned")
    return text


# --------------------------------------------------------------------------- handlers


class Routes:
    def __init__(self, api: ApiApp) -> None:
        self.api = api
        self.commands = Commands(api.config.settings)
        self.dead_letters = DeadLetters(api.config.settings, api.config.node)
        self._session: aiohttp.ClientSession | None = None
        self._document_store: Any = None
        self.started = time.time()
        self.requests = 0

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    async def _call_peer(self, url: str, request: web.Request, local: bool) -> tuple[int, Any]:
        headers = {FORWARDED: "1"}
        if local:
            headers[LOCAL] = "1"
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        session = await self.session()
        target = url + request.rel_url.path_qs
        async with session.request(
            request.method, target, headers=headers, data=await request.read() or None
        ) as response:
            return response.status, await response.json(content_type=None)

    # -- meta -----------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "node": self.api.config.node,
                "url": self.api.config.url,
                "partitions": self.api.store.active_partitions(),
                "partition_count": self.api.partitions,
                "events_folded": self.api.folded,
            }
        )

    async def metrics(self, request: web.Request) -> web.Response:
        counters = self.api.store.counters()
        lines = [
            "# HELP replayflow_api_events_folded_total History events folded by this process.",
            "# TYPE replayflow_api_events_folded_total counter",
            f"replayflow_api_events_folded_total {self.api.folded}",
            "# HELP replayflow_api_partitions Read-model partitions this process owns.",
            "# TYPE replayflow_api_partitions gauge",
            f"replayflow_api_partitions {len(self.api.store.active_partitions())}",
            "# HELP replayflow_api_instances Instances by status on this process's partitions.",
            "# TYPE replayflow_api_instances gauge",
        ]
        for status in p.STATUSES:
            lines.append(
                f'replayflow_api_instances{{status="{status}"}} '
                f"{counters.get(p.group(status=status), 0)}"
            )
        return web.Response(
            text="\n".join(lines) + "\n", content_type="text/plain", charset="utf-8"
        )

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    # -- commands -------------------------------------------------------------------

    def _start_spec(self, item: Any, what: str) -> tuple[str, Any, str | None, str | None]:
        body = _object(item, what)
        _only(body, {"workflow", "input", "id", "version"}, what)
        workflow = _string(body, "workflow", required=True, max_length=128)
        assert workflow is not None
        try:
            check_name(workflow, "workflow name")
            instance_id = body.get("id")
            if instance_id is not None:
                instance_id = check_instance_id(instance_id)
            version = body.get("version")
            if version is not None:
                version = check_version(version)
        except ReplayflowError as exc:
            raise ApiError(400, f"{what}: {exc}") from None
        return workflow, _payload(body.get("input"), f"{what}: input"), instance_id, version

    async def create(self, request: web.Request) -> web.Response:
        spec = self._start_spec(await _json_body(request), "the body")
        [instance_id] = await self.commands.start_many([spec])
        return web.json_response(
            {"id": instance_id, "workflow": spec[0]},
            status=202,
            headers={"Location": f"/v1/instances/{instance_id}"},
        )

    async def create_batch(self, request: web.Request) -> web.Response:
        body = _object(await _json_body(request))
        _only(body, {"instances"})
        items = body.get("instances")
        if not isinstance(items, list) or not items:
            raise ApiError(400, "field 'instances' must be a non-empty list")
        if len(items) > MAX_BATCH:
            raise ApiError(413, f"at most {MAX_BATCH} instances per call, got {len(items)}")
        specs = [self._start_spec(item, f"instances[{i}]") for i, item in enumerate(items)]
        ids = [s[2] for s in specs if s[2] is not None]
        if len(ids) != len(set(ids)):
            raise ApiError(400, "instance ids in one batch must be distinct")
        started = await self.commands.start_many(specs)
        return web.json_response({"ids": started, "count": len(started)}, status=202)

    async def send_event(self, request: web.Request) -> web.Response:
        instance_id = _instance_id(request)
        body = _object(await _json_body(request))
        _only(body, {"name", "payload"})
        name = _string(body, "name", required=True, max_length=128)
        try:
            check_name(name, "event name")
        except ReplayflowError as exc:
            raise ApiError(400, str(exc)) from None
        await self.commands.run(
            "send_event", instance_id, name, _payload(body.get("payload"), "payload")
        )
        return web.json_response({"id": instance_id, "sent": name}, status=202)

    def _action(self, name: str, fields: set[str]) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            instance_id = _instance_id(request)
            body = _object(await _json_body(request, required=False))
            _only(body, fields)
            reason = _string(body, "reason", max_length=_REASON_MAX) or ""
            kwargs: dict[str, Any] = {"reason": reason}
            if name == "restart":
                kwargs["from_step"] = _string(body, "from_step", max_length=300)
            try:
                await self.commands.run(name, instance_id, **kwargs)
            except CommandUnavailable as exc:
                raise ApiError(501, str(exc)) from None
            return web.json_response({"id": instance_id, "requested": name}, status=202)

        return handler

    # -- single instance (routed to the owner) ------------------------------------------

    async def _routed(
        self, request: web.Request, instance_id: str, local: Callable[[], web.Response]
    ) -> web.Response:
        if request.headers.get(FORWARDED):
            return local()
        owner = self.api.owner_of(instance_id)
        if owner is None:
            raise ApiError(503, "the read model is being rebalanced; retry in a moment")
        if owner == self.api.config.url:
            return local()
        try:
            status, body = await self._call_peer(owner, request, local=False)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ApiError(
                503,
                f"the API process that owns {instance_id!r} ({owner}) did "
                f"not answer: {type(exc).__name__}",
            ) from None
        return web.json_response(body, status=status)

    def _row(self, instance_id: str) -> dict[str, Any]:
        row = self.api.store.get(p.instance_key(instance_id))
        if row is None or not row.get("workflow"):
            raise ApiError(404, f"no instance {instance_id!r} (or not in the read model yet)")
        return row  # type: ignore[no-any-return]

    async def get_instance(self, request: web.Request) -> web.Response:
        instance_id = _instance_id(request)

        def local() -> web.Response:
            return web.json_response(p.public_instance(self._row(instance_id)))

        return await self._routed(request, instance_id, local)

    async def steps(self, request: web.Request) -> web.Response:
        instance_id = _instance_id(request)
        after = _int_param(request, "after", -1, -1, 10**9)
        limit = _int_param(request, "limit", 200, 1, 1000)
        assert after is not None and limit is not None

        def local() -> web.Response:
            self._row(instance_id)
            prefix = p.calls_prefix(instance_id)
            rows = self.api.store.scan(prefix, p.call_key(instance_id, after + 1), limit + 1)
            items = [v for _, v in rows[:limit]]
            more = len(rows) > limit
            return web.json_response(
                {"items": items, "next_after": items[-1]["n"] if more else None}
            )

        return await self._routed(request, instance_id, local)

    async def history(self, request: web.Request) -> web.Response:
        instance_id = _instance_id(request)
        after = _int_param(request, "after_seq", 0, 0, 10**11)
        limit = _int_param(request, "limit", 100, 1, 1000)
        assert after is not None and limit is not None

        def local() -> web.Response:
            self._row(instance_id)
            rows = self.api.store.scan(
                p.history_prefix(instance_id), p.history_key(instance_id, after + 1), limit + 1
            )
            items = [v for _, v in rows[:limit]]
            more = len(rows) > limit
            return web.json_response(
                {"items": items, "next_after_seq": items[-1]["seq"] if more else None}
            )

        return await self._routed(request, instance_id, local)

    # -- lists and counts (fan out) ------------------------------------------------------

    def _list_filter(
        self, request: web.Request
    ) -> tuple[str, int, int | None, int | None, str | None]:
        q = request.query
        workflow, status, version = (
            q.get("workflow") or None,
            q.get("status") or None,
            q.get("version") or None,
        )
        if status is not None and status not in p.STATUSES:
            raise ApiError(400, f"query parameter 'status' must be one of {', '.join(p.STATUSES)}")
        try:
            if workflow is not None:
                check_name(workflow, "workflow name")
            if version is not None:
                check_version(version)
        except ReplayflowError as exc:
            raise ApiError(400, str(exc)) from None
        if version is not None and (workflow is None or status is not None):
            raise ApiError(400, "'version' filters need 'workflow' and no 'status'")
        limit = _int_param(request, "limit", 50, 1, MAX_LIMIT)
        after = _int_param(request, "started_after", None, 0, p.SORT_BASE - 1)
        before = _int_param(request, "started_before", None, 0, p.SORT_BASE - 1)
        cursor = q.get("cursor")
        assert limit is not None
        return (
            p.group(workflow, status, version),
            limit,
            after,
            before,
            _decode_cursor(cursor) if cursor else None,
        )

    def _local_list(
        self, group: str, limit: int, after: int | None, before: int | None, cursor: str | None
    ) -> list[tuple[str, dict[str, Any]]]:
        prefix = p.index_prefix(group)
        start = prefix
        if before is not None:
            start = max(start, prefix + p.sort_part(before).encode())
        if cursor is not None:
            start = max(start, prefix + cursor.encode() + b"\x00")
        out = []
        for k, _ in self.api.store.scan(prefix, start, limit):
            _, started_at, instance_id = p.split_index_key(k)
            if after is not None and started_at < after:
                break
            row = self.api.store.get(p.instance_key(instance_id))
            if row is None:
                continue
            sort = k[len(prefix) :].decode()
            out.append((sort, p.public_instance(row, full=False)))
        return out

    async def _fan_out(self, request: web.Request, local: Callable[[], Any]) -> list[Any]:
        if request.headers.get(LOCAL):
            return [local()]
        results = []
        for url in self.api.peers():
            if url == self.api.config.url:
                results.append(local())
                continue
            try:
                status, body = await self._call_peer(url, request, local=True)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise ApiError(
                    503, f"API process {url} did not answer: {type(exc).__name__}"
                ) from None
            if status != 200:
                raise ApiError(503, f"API process {url} answered {status}")
            results.append(body)
        return results

    async def list_instances(self, request: web.Request) -> web.Response:
        group, limit, after, before, cursor = self._list_filter(request)

        def local() -> dict[str, Any]:
            rows = self._local_list(group, limit + 1, after, before, cursor)
            return {"items": [{"sort": s, **row} for s, row in rows]}

        if request.headers.get(LOCAL):
            return web.json_response(local())
        parts = await self._fan_out(request, local)
        merged = list(
            heapq.merge(
                *(part["items"] for part in parts), key=lambda item: (item["sort"], item["id"])
            )
        )[: limit + 1]
        page = merged[:limit]
        next_cursor = None
        if len(merged) > limit:
            last = page[-1]
            next_cursor = _encode_cursor(f"{last['sort']}{p.SEP}{last['id']}")
        items = [{k: v for k, v in item.items() if k != "sort"} for item in page]
        return web.json_response({"items": items, "next_cursor": next_cursor})

    async def counts(self, request: web.Request) -> web.Response:
        workflow = request.query.get("workflow") or None
        if workflow is not None:
            try:
                check_name(workflow, "workflow name")
            except ReplayflowError as exc:
                raise ApiError(400, str(exc)) from None

        def local() -> dict[str, Any]:
            counters = self.api.store.counters()
            return {"counts": {s: counters.get(p.group(workflow, s), 0) for s in p.STATUSES}}

        if request.headers.get(LOCAL):
            return web.json_response(local())
        parts = await self._fan_out(request, local)
        counts = {s: sum(part["counts"].get(s, 0) for part in parts) for s in p.STATUSES}
        return web.json_response(
            {"counts": counts, "total": sum(counts.values()), "workflow": workflow}
        )

    async def workflows(self, request: web.Request) -> web.Response:
        def local() -> dict[str, Any]:
            counters = self.api.store.counters()
            versions = {}
            for g, n in counters.items():
                parts = g.split(p.SEP)
                if parts[0] == "v" and n > 0:
                    versions[f"{parts[1]}{p.SEP}{parts[2]}"] = n
            return {"versions": versions}

        if request.headers.get(LOCAL):
            return web.json_response(local())
        parts = await self._fan_out(request, local)
        total: dict[str, int] = {}
        for part in parts:
            for k, n in part["versions"].items():
                total[k] = total.get(k, 0) + n
        versions: dict[tuple[str, str], dict[str, Any]] = {}
        for k, n in total.items():
            workflow, version = k.split(p.SEP)
            versions[(workflow, version)] = {"version": version, "instances": n, "deployed": False}
        store = await self._documents()
        for record in store.documents() if store is not None else ():
            entry = versions.setdefault(
                (record.name, record.version),
                {"version": record.version, "instances": 0, "deployed": True},
            )
            entry["deployed"] = True
        by_workflow: dict[str, list[dict[str, Any]]] = {}
        for (workflow, _), entry in sorted(versions.items()):
            by_workflow.setdefault(workflow, []).append(entry)
        items = [
            {"workflow": w, "versions": v, "instances": sum(x["instances"] for x in v)}
            for w, v in sorted(by_workflow.items())
        ]
        return web.json_response({"items": items})

    async def deploy(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not raw.strip():
            raise ApiError(400, "the body must be a Serverless Workflow document (YAML or JSON)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "the document is not UTF-8 text") from None
        try:
            from replayflow.dsl import documents
        except ImportError:
            raise ApiError(
                501,
                "deploying DSL documents is not available in this build: "
                "replayflow.dsl.documents is missing",
            ) from None
        store = await self._documents()
        try:
            deployed = await asyncio.to_thread(documents.deploy, store, text, "<http>")
        except (ReplayflowError, ValueError) as exc:
            raise ApiError(400, f"the document was not deployed: {exc}") from None
        record = deployed.record
        if store is not None:
            await asyncio.to_thread(store.wait_for, record.name, record.version, 10.0)
        return web.json_response(
            {
                "name": record.name,
                "version": record.version,
                "namespace": record.namespace,
                "digest": record.digest,
                "deployed_at": record.deployed_at,
                "created": deployed.created,
            },
            status=201 if deployed.created else 200,
        )

    async def _documents(self) -> Any:
        """The deployed DSL documents, followed from replayflow.workflows (None when
        this build has no DSL support)."""
        if self._document_store is None:
            try:
                from replayflow.dsl.documents import DocumentStore
            except ImportError:
                return None
            from replayflow.processors.documents import KafkaDocumentLog

            store = DocumentStore(KafkaDocumentLog(self.api.config.settings))
            await asyncio.to_thread(store.start)
            self._document_store = store
        return self._document_store

    # -- dead letters ---------------------------------------------------------------------

    async def dlq(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 100, 1, 1000)
        assert limit is not None
        entries = await asyncio.to_thread(self.dead_letters.list, limit)
        return web.json_response({"items": entries})

    async def redrive(self, request: web.Request) -> web.Response:
        entry_id = request.match_info["entry"]
        if not re.fullmatch(r"\d{1,6}-\d{1,18}", entry_id):
            raise ApiError(400, "a dead-letter id is <partition>-<offset>, as listed")
        try:
            result = await asyncio.to_thread(self.dead_letters.redrive, entry_id)
        except DeadLetterError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return web.json_response(result, status=202)

    # -- UI ------------------------------------------------------------------------------

    async def ui(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("file") or "index.html"
        types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
        suffix = name[name.rfind(".") :] if "." in name else ""
        if suffix not in types or "/" in name or name.startswith("."):
            raise ApiError(404, f"no UI file {name!r}")
        resource = resources.files("replayflow.api") / "ui" / name
        if not resource.is_file():
            raise ApiError(404, f"no UI file {name!r}")
        return web.Response(
            body=resource.read_bytes(),
            content_type=types[suffix],
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def root(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")


def register_routes(api: ApiApp) -> Routes:
    routes = Routes(api)
    router = api.faust.web.web_app.router  # type: ignore[attr-defined]  # aiohttp driver
    ident = r"{id:.+}"
    add = router.add_route
    add("GET", "/", routes.root)
    add("GET", "/health", routes.health)
    add("GET", "/metrics", routes.metrics)
    add("GET", "/openapi.json", routes.openapi)
    add("GET", "/ui/", routes.ui)
    add("GET", "/ui/{file}", routes.ui)
    add("POST", "/v1/instances", routes.create)
    add("GET", "/v1/instances", routes.list_instances)
    add("POST", "/v1/instances/batch", routes.create_batch)
    add("GET", f"/v1/instances/{ident}/history", routes.history)
    add("GET", f"/v1/instances/{ident}/steps", routes.steps)
    add("POST", f"/v1/instances/{ident}/events", routes.send_event)
    add("POST", f"/v1/instances/{ident}/cancel", routes._action("cancel", {"reason"}))
    add("POST", f"/v1/instances/{ident}/terminate", routes._action("terminate", {"reason"}))
    add("POST", f"/v1/instances/{ident}/pause", routes._action("pause", {"reason"}))
    add("POST", f"/v1/instances/{ident}/resume", routes._action("resume", {"reason"}))
    add(
        "POST", f"/v1/instances/{ident}/restart", routes._action("restart", {"reason", "from_step"})
    )
    add("GET", f"/v1/instances/{ident}", routes.get_instance)
    add("GET", "/v1/counts", routes.counts)
    add("GET", "/v1/workflows", routes.workflows)
    add("POST", "/v1/workflows", routes.deploy)
    add("GET", "/v1/dlq", routes.dlq)
    add("POST", "/v1/dlq/{entry}/redrive", routes.redrive)
    api.routes = routes  # type: ignore[attr-defined]
    return routes
