"""How one API process is configured: where it listens, its token, its data folder."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replayflow.settings import Settings

DEFAULT_PORT = 8080


@dataclass
class ApiConfig:
    settings: Settings
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None  # bearer token; None = no auth
    data_dir: Path | None = None  # default <REPLAYFLOW_DATA>/api/<host>-<port>
    node: str = field(default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}")
    max_body: int = 4 * 1024 * 1024

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def from_env(cls, settings: Settings | None = None, **overrides: Any) -> ApiConfig:
        values: dict[str, Any] = {"settings": settings or Settings.from_env()}
        if os.environ.get("REPLAYFLOW_API_TOKEN", "").strip():
            values["token"] = os.environ["REPLAYFLOW_API_TOKEN"].strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
