"""A travel agent on Pydantic AI whose run is a durable workflow.

The agent searches flights with a tool of a local MCP server (examples/mcp_server.py,
started over stdio), checks the budget, asks a human to approve the booking (a wait
for the event "approval", which may take days), books, and streams its answer to the
instance's durable stream "answer". Every model request and tool call is a step:
recorded, retried by policy, and answered from history on replay, so a resumed or
replayed agent never calls the model (or the tools) again.

The model here is deterministic and offline (Pydantic AI's FunctionModel), so the demo
runs anywhere. docs/agents.md shows how to point the same agent at a real provider:
replace MODEL with e.g. "openai:gpt-4o" and keep the rest.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, FunctionModel

import replayflow as rf
from replayflow.ai import DurableAgent
from replayflow.mcp_tools import McpServer, send, text_of

HERE = Path(__file__).resolve().parent


def tools_server() -> McpServer:
    """examples/mcp_server.py over stdio (an MCP server gets a minimal environment:
    pass on the one variable it reads)."""
    env = {k: v for k, v in os.environ.items() if k == "MCP_CALLS_FILE"}
    return McpServer.stdio(sys.executable, str(HERE / "mcp_server.py"), env=env or None)


BUDGET_EUR = 500


# -- the model: deterministic, offline --------------------------------------------------


def _returns(messages: list[ModelMessage]) -> dict[str, Any]:
    """What the tools answered so far, by tool name."""
    out: dict[str, Any] = {}
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, ToolReturnPart):
                    out[part.tool_name] = part.content
    return out


def plan(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """One model turn, decided from what the tools answered."""
    _count_call()
    seen = _returns(messages)
    if "search_flights" not in seen:
        return ModelResponse(
            parts=[
                ToolCallPart("search_flights", {"destination": "Lisbon", "max_price": BUDGET_EUR}),
                ToolCallPart("check_budget", {"traveller": "demo"}),
            ]
        )
    flights = seen["search_flights"]["flights"]
    cheapest = min(flights, key=lambda f: f["price"])
    if "book_flight" not in seen:
        return ModelResponse(parts=[ToolCallPart("book_flight", {"flight_id": cheapest["id"]})])
    booking = seen["book_flight"]
    if isinstance(booking, str) and not booking.startswith("CONF"):
        return ModelResponse(parts=[TextPart(f"I did not book {cheapest['id']}: {booking}")])
    text = (
        f"Booked {cheapest['id']} to Lisbon for {cheapest['price']} EUR, departing "
        f"{cheapest['departs']} (confirmation {booking}). The budget was {BUDGET_EUR} EUR. "
        "Have a good trip!"
    )
    return ModelResponse(parts=[TextPart(text)])


async def plan_streamed(
    messages: list[ModelMessage], info: AgentInfo
) -> AsyncIterator[str | dict[int, DeltaToolCall]]:
    """The same turn, streamed: text word by word, tool calls whole."""
    response = plan(messages, info)
    for index, part in enumerate(response.parts):
        if isinstance(part, TextPart):
            words = part.content.split(" ")
            for n, word in enumerate(words):
                yield word + (" " if n < len(words) - 1 else "")
        elif isinstance(part, ToolCallPart):
            call = DeltaToolCall(name=part.tool_name, json_args=part.args_as_json_str())
            yield {index: call}


MODEL_CALLS = {"count": 0}  # in this process; the demo shows that replay adds none


def _count_call() -> None:
    MODEL_CALLS["count"] += 1
    # Tests count the model's calls across processes (a worker killed and restarted).
    path = os.environ.get("AGENT_MODEL_CALLS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as calls:
            calls.write("call\n")


MODEL = FunctionModel(plan, stream_function=plan_streamed)

# -- the agent ---------------------------------------------------------------------------

agent = Agent(
    MODEL,
    name="travel",
    instructions="Find the cheapest flight within budget and book it once approved.",
    output_type=str,
)


@agent.tool_plain
def search_flights(destination: str, max_price: int) -> dict[str, Any]:
    """Flights to a destination at or under a price, from the MCP server's tool."""
    result = send(
        tools_server(),
        "tools/call",
        {
            "name": "search_flights",
            "arguments": {"destination": destination, "max_price": max_price},
        },
    )
    found: dict[str, Any] = json.loads(text_of(result))
    return found


@agent.tool_plain
def check_budget(traveller: str) -> dict[str, Any]:
    return {"traveller": traveller, "budget_eur": BUDGET_EUR}


@agent.tool_plain(requires_approval=True)
def book_flight(flight_id: str) -> str:
    """Books a flight: runs only after a human approved the call."""
    return f"CONF-{flight_id}"


travel = DurableAgent(agent, name="travel", stream="answer", approval_event="approval")
# Module level, so a worker given this module (`replayflow worker -m examples.agent`)
# registers the agent's steps.
model_request, tool_call, list_tools = travel.steps


@rf.workflow(name="travel-agent", version="2", timeout="30d")
async def travel_agent(ctx: rf.Context, request: dict[str, Any]) -> dict[str, Any]:
    result = await travel.run(ctx, request["goal"])
    return {"answer": result.output, "messages": len(result.all_messages())}
