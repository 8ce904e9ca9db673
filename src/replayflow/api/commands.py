"""Commands from the API go to Kafka through replayflow.client.Client (blocking calls,
run in a thread so the event loop keeps serving)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from replayflow.client import Client
from replayflow.core.errors import ReplayflowError
from replayflow.settings import Settings


class CommandUnavailable(ReplayflowError):
    """The client of this build has no such operation."""


class Commands:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None
        self._lock = threading.Lock()

    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = Client(self.settings, watch_completions=False)
            return self._client

    async def start_many(self, specs: list[tuple[str, Any, str | None, str | None]]) -> list[str]:
        def start() -> list[str]:
            client = self.client()
            ids: list[str] = []
            # Client.start_many takes one version for all; group by version.
            by_version: dict[str | None, list[int]] = {}
            for i, (_, _, _, version) in enumerate(specs):
                by_version.setdefault(version, []).append(i)
            out: dict[int, str] = {}
            for version, positions in by_version.items():
                handles = client.start_many(
                    [(specs[i][0], specs[i][1], specs[i][2]) for i in positions], version=version
                )
                for i, handle in zip(positions, handles, strict=True):
                    out[i] = handle.id
            ids = [out[i] for i in range(len(specs))]
            return ids

        return await asyncio.to_thread(start)

    async def run(self, operation: str, *args: Any, **kwargs: Any) -> None:
        """Call a Client method; keyword arguments it does not take are left out (a
        reason for resume, say), empty ones too."""
        client = self.client()
        method = getattr(client, operation, None)
        if method is None:
            raise CommandUnavailable(
                f"{operation} is not available: this build's Client has no {operation}()"
            )
        accepted = inspect.signature(method).parameters
        call = {k: v for k, v in kwargs.items() if k in accepted and v not in (None, "")}
        await asyncio.to_thread(method, *args, **call)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
