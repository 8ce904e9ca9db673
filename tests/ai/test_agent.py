"""The Pydantic AI travel agent of examples/agent.py as a workflow, in rf.testing: its
answer streams, a booking waits for approval (an event), and a replay of its history
calls neither the model nor a tool. Counts come from files the model and the MCP
server append to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from examples import agent

from replayflow.core.messages import StepScheduled
from replayflow.testing import Environment


@pytest.fixture
def counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    files = {"model": tmp_path / "model-calls", "mcp": tmp_path / "mcp-calls"}
    monkeypatch.setenv("AGENT_MODEL_CALLS_FILE", str(files["model"]))
    monkeypatch.setenv("MCP_CALLS_FILE", str(files["mcp"]))
    return files


def count(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def steps(env: Environment, instance_id: str) -> list[str]:
    return [e.step for e in env.history(instance_id) if isinstance(e, StepScheduled)]


def start(env: Environment) -> Any:
    return env.start(agent.travel_agent, {"goal": "a flight to Lisbon under 500 EUR"})


def test_the_agent_waits_for_approval_then_books_and_streams(counted: dict[str, Path]) -> None:
    env = Environment(agent)
    handle = start(env)
    assert env.status(handle.id).value == "RUNNING"
    assert steps(env, handle.id) == [
        "model-request",
        "tool-search_flights",
        "tool-check_budget",
        "model-request#2",
    ]
    assert count(counted["mcp"]) == 1  # search_flights reached the MCP server once
    env.send_event(handle.id, "approval", {"approved": True})
    output = handle.result()
    assert output["answer"].startswith("Booked FR8821 to Lisbon for 380 EUR")
    assert steps(env, handle.id)[-2:] == ["tool-book_flight", "model-request#3"]
    streamed = [i.value for i in handle.stream("answer") if i.kind == "value"]
    assert "".join(streamed) == output["answer"]
    assert len(streamed) > 5  # word by word, as the model streamed it
    assert count(counted["model"]) == 3


def test_a_replay_calls_neither_the_model_nor_a_tool(counted: dict[str, Path]) -> None:
    env = Environment(agent)
    handle = start(env)
    env.send_event(handle.id, "approval", {"approved": True})
    handle.result()
    model, mcp = count(counted["model"]), count(counted["mcp"])
    report = env.replay(handle.id)
    assert report.identical, report.difference
    assert (count(counted["model"]), count(counted["mcp"])) == (model, mcp)


def test_a_denied_booking_is_not_made(counted: dict[str, Path]) -> None:
    env = Environment(agent)
    handle = start(env)
    env.send_event(handle.id, "approval", {"approved": False, "reason": "too early"})
    output = handle.result()
    assert "tool-book_flight" not in steps(env, handle.id)
    assert output["answer"].startswith("I did not book FR8821")
