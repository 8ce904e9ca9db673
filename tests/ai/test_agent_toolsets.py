"""Pydantic AI's own MCP toolsets (MCPToolset over stdio and streamable HTTP) used as
agent toolsets: their tool list is taken by a step once per run, each tool call is a
step, and a replay reaches neither the model nor the server. The run's deps reach
tools that run in the worker (as JSON, rebuilt with the agent's deps_type)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.function import FunctionModel

import replayflow as rf
from replayflow.ai import DurableAgent
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import StepScheduled
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.testing import Environment
from replayflow.topics import apply_topics, load_topics
from tests.ai import toolset_agent
from tests.mcp.test_mcp_tools import http_server

__all__ = ["http_server"]  # the streamable HTTP server fixture


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    files = {"model": tmp_path / "model-calls", "mcp": toolset_agent.MCP_CALLS}
    monkeypatch.setenv("AGENT_MODEL_CALLS_FILE", str(files["model"]))
    files["mcp"].unlink(missing_ok=True)
    yield files
    files["mcp"].unlink(missing_ok=True)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def scheduled(history: list[Any]) -> list[str]:
    return [e.step for e in history if isinstance(e, StepScheduled)]


ADA = {"name": "Ada", "budget": 500}


def test_an_mcp_toolset_over_stdio_is_listed_and_called_by_steps(
    counted: dict[str, Path],
) -> None:
    env = Environment(toolset_agent)
    handle = env.start(toolset_agent.planner_agent, ADA)
    assert handle.result() == "Ada (budget 500): take FR8821 for 380"
    assert scheduled(env.history(handle.id)) == [
        "tools-travel-tools",  # the MCP server's tool list, once for the run
        "model-request",
        "tool-search_flights",  # an MCP tool
        "tool-traveller",  # a function tool that read the deps
        "model-request#2",
    ]
    assert lines(counted["mcp"]) == ["search_flights"]
    assert len(lines(counted["model"])) == 2
    report = env.replay(handle.id)
    assert report.identical, report.difference
    assert lines(counted["mcp"]) == ["search_flights"]  # the replay reached no server
    assert len(lines(counted["model"])) == 2  # nor the model


def test_an_mcp_toolset_over_streamable_http(http_server: str, tmp_path: Path) -> None:
    agent = Agent(
        FunctionModel(toolset_agent.decide),
        deps_type=toolset_agent.Traveller,
        toolsets=[MCPToolset(http_server, id="remote-tools")],
    )
    agent.tool(toolset_agent.traveller)
    durable = DurableAgent(agent, name="remote-planner", stream=None)

    @rf.workflow(name="remote-planner")
    async def remote(ctx: rf.Context, who: dict[str, Any]) -> str:
        return str((await durable.run(ctx, "go", deps=toolset_agent.Traveller(**who))).output)

    env = Environment(remote, durable)
    handle = env.start(remote, {"name": "Grace", "budget": 900})
    assert handle.result() == "Grace (budget 900): take FR8821 for 380"
    assert scheduled(env.history(handle.id))[:3] == [
        "tools-remote-tools",
        "model-request",
        "tool-search_flights",
    ]
    assert env.replay(handle.id).identical


def test_deps_that_cannot_travel_as_json_fail_with_a_clear_error() -> None:
    env = Environment(toolset_agent)
    handle = env.start(toolset_agent.planner_bad_deps)
    with pytest.raises(rf.WorkflowError, match="deps of a durable agent go to its tools as JSON"):
        handle.result()


@pytest.fixture
def runtime(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    assert apply_topics(settings.bootstrap, load_topics(settings)).ok
    config = settings.replace(data_dir=tmp_path / "data")
    with LocalRuntime(config, Registry.of(toolset_agent)):
        yield config


@pytest.mark.kafka
def test_on_kafka_the_worker_lists_and_calls_mcp_tools_with_the_runs_deps(
    runtime: Settings, counted: dict[str, Path]
) -> None:
    with Client(runtime) as client:
        handle = client.start(
            toolset_agent.planner_agent, ADA, id=f"planner-{uuid.uuid4().hex[:8]}"
        )
        assert handle.result(timeout=120) == "Ada (budget 500): take FR8821 for 380"
        history = client.history(handle.id, wait_final=10)
    assert scheduled(history)[:3] == ["tools-travel-tools", "model-request", "tool-search_flights"]
    assert lines(counted["mcp"]) == ["search_flights"]
