"""Run `replayflow serve` as a child process (for `replayflow dev`, the demo and tests)
and wait until it owns partitions: `with ApiServer(settings, 8080, data_dir=...) as api:`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from replayflow.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child, before exec: on Linux, ask for SIGTERM when the parent dies, so a
    killed `dev` or demo never leaves its API process behind."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class ApiServer:
    def __init__(
        self,
        settings: Settings,
        port: int | None = None,
        *,
        data_dir: Path,
        token: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.token = token
        self.log_path = log_path or data_dir / f"api-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiServer:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP": self.settings.bootstrap,
                "REPLAYFLOW_NAMESPACE": self.settings.namespace,
                "REPLAYFLOW_DATA": str(self.data_dir),
            }
        )
        env.pop("REPLAYFLOW_API_TOKEN", None)
        if self.token:
            env["REPLAYFLOW_API_TOKEN"] = self.token
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "replayflow.cli",
                "serve",
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # only prctl: safe in a threaded parent
        )
        return self

    def health(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(self.url + "/health", timeout=2)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def wait_ready(self, timeout: float = 60.0, partitions: bool = True) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the API process exited: {self.tail()}")
            health = self.health()
            if health is not None and (not partitions or health["partitions"]):
                return
            time.sleep(0.3)
        raise TimeoutError(f"the API at {self.url} was not ready in {timeout} s: {self.tail()}")

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def __enter__(self) -> ApiServer:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
