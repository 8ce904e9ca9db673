"""The process itself: /health (open), /metrics (Prometheus text) and /openapi.json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from replayflow.api import projection as p
from replayflow.api.context import ApiContext
from replayflow.api.operations import Operation, Reply
from replayflow.api.reply_models import Health


class Meta:
    def __init__(self, api: ApiContext, document: Callable[[], dict[str, Any]]) -> None:
        self.api = api
        self.document = document

    def operations(self) -> list[Operation]:
        ready = {200: Reply("ready", Health), 503: Reply("not ready yet (see reason)", Health)}
        return [
            Operation(
                "GET",
                "/health",
                self.health,
                "readiness (as /health/ready) and the partitions this process owns",
                ready,
                errors=(),
            ),
            Operation(
                "GET",
                "/health/ready",
                self.health,
                "readiness: 200 once partitions are assigned and the read model restored",
                ready,
                errors=(),
            ),
            Operation(
                "GET",
                "/health/live",
                self.live,
                "liveness: 200 while the process serves requests",
                {200: Reply("alive", Health)},
                errors=(),
            ),
            Operation(
                "GET",
                "/metrics",
                self.metrics,
                "Prometheus metrics of this process",
                {200: Reply("text exposition format", media=("text/plain",))},
            ),
            Operation(
                "GET",
                "/openapi.json",
                self.openapi,
                "this document",
                {200: Reply("the OpenAPI document", dict[str, Any])},
                errors=(),
            ),
        ]

    async def health(self, request: web.Request) -> web.Response:
        """Ready (200) once this process owns read-model partitions and has restored
        them; 503 with the reason before (a load balancer sends it no reads yet)."""
        reason = self.api.readiness()
        body = Health(
            status="ok" if reason is None else "starting",
            ready=reason is None,
            node=self.api.config.node,
            url=self.api.config.url,
            partitions=self.api.store.active_partitions(),
            partition_count=self.api.partitions,
            events_folded=self.api.folded,
        )
        if reason is not None:
            body["reason"] = reason
        return web.json_response(body, status=200 if reason is None else 503)

    async def live(self, request: web.Request) -> web.Response:
        return web.json_response(Health(status="ok", node=self.api.config.node))

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
        return web.json_response(self.document())
