"""MCP tools as steps, against the local MCP server of examples/mcp_server.py: from code
(stdio and streamable HTTP) and from a DSL document (`call: mcp`), each call recorded
in history and never made again by a replay."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import replayflow as rf
from replayflow import dsl
from replayflow.core.messages import StepCompleted, StepScheduled
from replayflow.testing import Environment
from tests.mcp import flows


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "mcp-calls"
    monkeypatch.setenv("MCP_CALLS_FILE", str(path))
    return path


def made(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, flows.SERVER_SCRIPT, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait(10)


def test_a_code_workflow_calls_mcp_tools_over_stdio(calls: Path) -> None:
    env = Environment(flows)
    handle = env.start(flows.flights, {})
    out = handle.result()
    assert out["tools"] == ["fail", "forecast", "search_flights"]
    assert '"FR8821"' in out["flights"] and '"LH1172"' not in out["flights"]
    assert out["weather"] == "Lisbon: sunny, 24 °C"
    history = env.history(handle.id)
    assert [e.step for e in history if isinstance(e, StepScheduled)] == [
        "mcp-tools-list",
        "mcp-search_flights",
        "mcp-forecast",
    ]
    assert len([e for e in history if isinstance(e, StepCompleted)]) == 3
    assert made(calls) == ["search_flights", "forecast"]
    assert env.replay(handle.id).identical
    assert made(calls) == ["search_flights", "forecast"]  # the replay reached no server


def test_a_code_workflow_calls_mcp_tools_over_streamable_http(http_server: str) -> None:
    env = Environment(flows)
    out = env.start(flows.flights, {"url": http_server}).result()
    assert out["weather"] == "Lisbon: sunny, 24 °C"


def test_a_tool_error_fails_the_step_without_retries(calls: Path) -> None:
    env = Environment(flows)
    handle = env.start(flows.flights, {"tool": "fail"})
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert "McpToolError" in str(caught.value.error)
    attempts = [e for e in env.history(handle.id) if isinstance(e, StepScheduled)]
    assert [e.step for e in attempts][-1] == "mcp-fail" and attempts[-1].attempt == 1


def test_a_dsl_document_calls_an_mcp_tool(calls: Path) -> None:
    text = flows.DSL.format(python=sys.executable, script=flows.SERVER_SCRIPT, calls=calls)
    assert dsl.validate_text(text).ok
    workflow = dsl.workflow_from_text(text)
    env = Environment(workflow)
    handle = env.start(workflow, {"to": "Lisbon"})
    out = handle.result()
    assert [f["id"] for f in out["flights"]] == ["FR8821", "TP1234"]
    history = env.history(handle.id)
    assert [e.function for e in history if isinstance(e, StepScheduled)] == ["rf_mcp_call"]
    assert made(calls) == ["search_flights"]
    assert env.replay(handle.id).identical
    assert made(calls) == ["search_flights"]
