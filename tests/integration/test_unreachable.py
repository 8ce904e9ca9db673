"""Every command against a Kafka that is not there fails fast with one line and exit 2:
a port nothing listens on (refused: at once), and a port that accepts connections but
never answers (after REPLAYFLOW_CONNECT_TIMEOUT). No broker is needed for these."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

COMMANDS = [
    ["start", "nosuch-wf", "{}"],
    ["result", "x"],
    ["history", "x"],
    ["dlq"],
    ["send-event", "x", "go", "1"],
    ["cancel", "x"],
    ["terminate", "x"],
    ["pause", "x"],
    ["resume", "x"],
    ["restart", "x"],
    ["replay", "x", "-m", "examples.pipeline"],
    ["deploy", "examples/pipeline.yaml"],
    ["topics", "apply"],
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(
    bootstrap: str, args: list[str], **env: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "replayflow.cli", *args],
        cwd=REPO,
        env={**os.environ, "KAFKA_BOOTSTRAP": bootstrap, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, time.monotonic() - began


@pytest.fixture(scope="module")
def startup() -> float:
    """Seconds a CLI process takes to start and import everything, doing nothing: on a
    busy machine this alone can take seconds, and it is not the command's wait."""
    _, took = run("127.0.0.1:1", ["--help"])
    return took


@pytest.mark.parametrize(
    "args", COMMANDS, ids=lambda a: a[0] if a[0] != "topics" else "topics-apply"
)
def test_a_port_nothing_listens_on(args: list[str], startup: float) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    done, took = run(bootstrap, args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        f"Error: cannot reach Kafka at {bootstrap} (connection refused) — is it running? "
        "`make up` starts the local broker; KAFKA_BOOTSTRAP points elsewhere\n"
    )
    assert took - startup < 5.0, (took, startup)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_broker_that_never_answers_within_the_connect_timeout(
    silent_port: int, startup: float
) -> None:
    bootstrap = f"127.0.0.1:{silent_port}"
    done, took = run(bootstrap, ["start", "x", "{}"], REPLAYFLOW_CONNECT_TIMEOUT="2")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(
        f"Error: cannot reach Kafka at {bootstrap} (no answer within 2 s)"
    )
    assert took >= 2.0 and took - startup < 5.0, (took, startup)
