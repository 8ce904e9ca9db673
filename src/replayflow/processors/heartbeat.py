"""A heartbeat file for health checks of processes that serve no HTTP (orchestrator,
worker): the process loop rewrites it every few seconds with what it knows, and
`replayflow health --file F` says whether it is fresh. A loop that hangs stops writing,
so the check fails and a supervisor (Docker, Kubernetes) can restart the process.

Off unless REPLAYFLOW_HEALTH_FILE names the file (compose/docker-compose.yml sets it).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEALTH_FILE_ENV = "REPLAYFLOW_HEALTH_FILE"


class Heartbeat:
    def __init__(
        self,
        role: str,
        path: str | Path | None = None,
        interval: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        chosen = path if path is not None else os.environ.get(HEALTH_FILE_ENV, "").strip()
        self.path = Path(chosen) if chosen else None
        self.role = role
        self.interval = interval
        self._clock = clock
        self._last = 0.0

    def beat(self, **state: Any) -> None:
        """Rewrite the file (atomically) unless it was written less than `interval` ago."""
        if self.path is None:
            return
        now = self._clock()
        if now - self._last < self.interval:
            return
        self._last = now
        body = {"role": self.role, "pid": os.getpid(), "at": now, **state}
        temporary = self.path.with_name(self.path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(body))
            temporary.replace(self.path)
        except OSError:  # a health file must never stop the process
            pass


def check(path: str | Path, max_age: float, now: float | None = None) -> tuple[bool, str]:
    """(healthy, what the file says): fresh means written within `max_age` seconds."""
    try:
        body = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        return False, f"no heartbeat in {path}: {exc}"
    age = (time.time() if now is None else now) - float(body.get("at", 0))
    details = ", ".join(f"{k}={v}" for k, v in body.items() if k not in ("at",))
    if age > max_age:
        return False, f"stale heartbeat ({age:.0f} s old, over {max_age:g} s): {details}"
    return True, f"alive ({age:.0f} s ago): {details}"
