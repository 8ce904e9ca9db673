"""An agent whose tools come from the MCP server of examples/mcp_server.py, used as a
Pydantic AI toolset (MCPToolset over stdio), and from a function tool that reads the
run's deps. The model is a deterministic FunctionModel; it appends to
$AGENT_MODEL_CALLS_FILE on every call. The server appends each tool call to
MCP_CALLS (the toolset is built at import, so the file is fixed for this process)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent, RunContext
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

import replayflow as rf
from replayflow.ai import DurableAgent

SERVER_SCRIPT = str(Path(__file__).resolve().parents[2] / "examples" / "mcp_server.py")
MCP_CALLS = Path(tempfile.gettempdir()) / f"replayflow-agent-mcp-calls-{os.getpid()}"


@dataclass
class Traveller:
    name: str
    budget: int


def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    path = os.environ.get("AGENT_MODEL_CALLS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write("call\n")
    returns = {
        part.tool_name: part.content
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, ToolReturnPart)
    }
    if "search_flights" not in returns:
        tools = sorted(t.name for t in info.function_tools)
        return ModelResponse(
            parts=[
                TextPart(f"tools: {', '.join(tools)}"),
                ToolCallPart("search_flights", {"destination": "Lisbon", "max_price": 430}),
                ToolCallPart("traveller", {}),
            ]
        )
    found = returns["search_flights"]
    flights = found if isinstance(found, dict) else json.loads(str(found))
    cheapest = flights["flights"][0]
    return ModelResponse(
        parts=[TextPart(f"{returns['traveller']}: take {cheapest['id']} for {cheapest['price']}")]
    )


stdio = StdioTransport(
    command=sys.executable, args=[SERVER_SCRIPT], env={"MCP_CALLS_FILE": str(MCP_CALLS)}
)
agent = Agent(
    FunctionModel(decide),
    name="planner",
    deps_type=Traveller,
    toolsets=[MCPToolset(stdio, id="travel-tools")],
)


@agent.tool
def traveller(ctx: RunContext[Traveller]) -> str:
    """Who travels, and with what budget (from the run's deps)."""
    return f"{ctx.deps.name} (budget {ctx.deps.budget})"


planner = DurableAgent(agent, name="planner", stream=None)
model_request, tool_call, list_tools = planner.steps


@rf.workflow(name="planner-agent")
async def planner_agent(ctx: rf.Context, who: dict[str, Any]) -> str:
    result = await planner.run(ctx, "find me a flight", deps=Traveller(**who))
    return str(result.output)


class Connection:
    """Not data: cannot travel to a worker."""


@rf.workflow(name="planner-agent-bad-deps")
async def planner_bad_deps(ctx: rf.Context) -> str:
    result = await planner.run(ctx, "find me a flight", deps=Connection())
    return str(result.output)
