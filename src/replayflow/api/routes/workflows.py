"""/v1/workflows: the workflows and versions that have instances (counted over every
partition) or a deployed DSL document; and deploying a Serverless Workflow document."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from replayflow.api import projection as p
from replayflow.api.context import ApiContext
from replayflow.api.errors import ApiError
from replayflow.api.operations import STANDARD_ERRORS, Operation, Reply
from replayflow.api.peers import Peers
from replayflow.api.reply_models import Deployed, VersionEntry, WorkflowEntry, Workflows
from replayflow.core.errors import ReplayflowError
from replayflow.processors.served import Served


class WorkflowRoutes:
    def __init__(self, api: ApiContext, peers: Peers) -> None:
        self.api = api
        self.peers = peers
        self._document_store: Any = None
        self._served_cache: tuple[float, Served] | None = None

    def operations(self) -> list[Operation]:
        return [
            Operation(
                "GET",
                "/v1/workflows",
                self.workflows,
                "workflows and versions: with instances, or deployed",
                {200: Reply("workflows", Workflows)},
            ),
            Operation(
                "POST",
                "/v1/workflows",
                self.deploy,
                "deploy a Serverless Workflow DSL document (YAML or JSON)",
                {
                    201: Reply("deployed", Deployed),
                    200: Reply("this exact document was deployed already", Deployed),
                },
                errors=(501, *STANDARD_ERRORS),
                raw_body={"application/yaml": str, "application/json": dict[str, Any]},
            ),
        ]

    async def workflows(self, request: web.Request) -> web.Response:
        def local() -> dict[str, Any]:
            counters = self.api.store.counters()
            versions = {}
            statuses = {}
            for g, n in counters.items():
                parts = g.split(p.SEP)
                if parts[0] == "v" and n > 0:
                    versions[f"{parts[1]}{p.SEP}{parts[2]}"] = n
                elif parts[0] == "ws" and n > 0:
                    statuses[f"{parts[1]}{p.SEP}{parts[2]}"] = n
            return {"versions": versions, "statuses": statuses}

        if self.peers.asked_locally(request):
            return web.json_response(local())
        parts = await self.peers.fan_out(request, local)
        total: dict[str, int] = {}
        by_status: dict[str, dict[str, int]] = {}
        for part in parts:
            for k, n in part["versions"].items():
                total[k] = total.get(k, 0) + n
            for k, n in part.get("statuses", {}).items():
                workflow, status = k.split(p.SEP)
                counts = by_status.setdefault(workflow, {})
                counts[status] = counts.get(status, 0) + n
        versions: dict[tuple[str, str], VersionEntry] = {}
        for k, n in total.items():
            workflow, version = k.split(p.SEP)
            versions[(workflow, version)] = VersionEntry(
                version=version, instances=n, deployed=False
            )
        store = await self._documents()
        for record in store.documents() if store is not None else ():
            entry = versions.setdefault(
                (record.name, record.version),
                VersionEntry(version=record.version, instances=0, deployed=True),
            )
            entry["deployed"] = True
        served = await self._served()
        for orchestrator, served_record in (served.orchestrators if served else {}).items():
            for name_version in served_record.workflows:
                workflow, _, version = name_version.rpartition(":")
                entry = versions.setdefault(
                    (workflow, version),
                    VersionEntry(version=version, instances=0, deployed=False),
                )
                entry.setdefault("run_by", []).append(orchestrator)
        by_workflow: dict[str, list[VersionEntry]] = {}
        for (workflow, _), entry in sorted(versions.items()):
            by_workflow.setdefault(workflow, []).append(entry)
        items = [
            WorkflowEntry(
                workflow=w,
                versions=v,
                instances=sum(x["instances"] for x in v),
                counts=by_status.get(w, {}),
            )
            for w, v in sorted(by_workflow.items())
        ]
        return web.json_response(Workflows(items=items))

    async def _served(self) -> Served | None:
        """What the orchestrators run, read at most every 10 s (None: not readable)."""
        now = time.monotonic()
        if self._served_cache is None or now - self._served_cache[0] > 10:
            try:
                served = await asyncio.to_thread(Served.load, self.api.config.settings)
            except Exception:  # the check is a convenience: the page shows the rest
                return self._served_cache[1] if self._served_cache else None
            self._served_cache = (now, served)
        return self._served_cache[1]

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
        return web.json_response(
            Deployed(
                name=record.name,
                version=record.version,
                namespace=record.namespace,
                digest=record.digest,
                deployed_at=record.deployed_at,
                created=deployed.created,
            ),
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
