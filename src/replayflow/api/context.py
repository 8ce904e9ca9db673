"""What the routes need of the API process (api/app.py's ApiApp has it), declared here
so that the routes do not import the app that registers them."""

from __future__ import annotations

from typing import Protocol

from replayflow.api.config import ApiConfig
from replayflow.api.tables import LocalStore


class ApiContext(Protocol):
    config: ApiConfig
    store: LocalStore
    partitions: int  # of the history topic
    folded: int  # history events this process has folded

    def owner_of(self, instance_id: str) -> str | None:
        """Base URL of the process that owns the instance's partition (None: unknown)."""
        ...

    def peers(self) -> list[str]:
        """Base URLs of every API process that owns a partition of the read model."""
        ...

    def readiness(self) -> str | None:
        """None when ready to answer reads; otherwise why not (yet)."""
        ...
