"""Commands from the API go to Kafka through replayflow.client.Client (blocking calls,
run in a thread so the event loop keeps serving)."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from replayflow.client import Client, Handle
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

    async def start_many(
        self, specs: list[tuple[str, Any, str | None, str | None]]
    ) -> list[Handle]:
        """Start instances (workflow, input, id, version); a refused one raises with its
        index in `specs` (CommandRejected.index)."""
        return await asyncio.to_thread(self.client().start_many, specs)

    async def run(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Call a Client method; keyword arguments it does not take are left out (a
        reason for resume, say), empty ones too. Returns what it returns (a Reply)."""
        client = self.client()
        method = getattr(client, operation, None)
        if method is None:
            raise CommandUnavailable(
                f"{operation} is not available: this build's Client has no {operation}()"
            )
        accepted = inspect.signature(method).parameters
        call = {k: v for k, v in kwargs.items() if k in accepted and v not in (None, "")}
        return await asyncio.to_thread(method, *args, **call)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
