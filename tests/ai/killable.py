"""An agent whose tool waits for a file: a test kills the worker while the tool runs
(after the model's first answer) and checks the model is not called again. The model
and the tool append to the files named by AGENT_MODEL_CALLS_FILE and AGENT_TOOL_FILE;
the tool waits until AGENT_GATE exists."""

from __future__ import annotations

import os
import time
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
from pydantic_ai.models.function import AgentInfo, FunctionModel

import replayflow as rf
from replayflow.ai import DurableAgent


def _append(variable: str, line: str) -> None:
    path = os.environ.get(variable)
    if path:
        with open(path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


def decide(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    _append("AGENT_MODEL_CALLS_FILE", "call")
    for message in messages:
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, ToolReturnPart):
                    return ModelResponse(parts=[TextPart(f"the tool said {part.content}")])
    return ModelResponse(parts=[ToolCallPart("slow_lookup", {"key": "answer"})])


agent = Agent(FunctionModel(decide), name="killable", output_type=str)


@agent.tool_plain
def slow_lookup(key: str) -> str:
    _append("AGENT_TOOL_FILE", "started")
    gate = Path(os.environ.get("AGENT_GATE", "/nonexistent"))
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return f"{key}=42"


durable = DurableAgent(agent, name="killable", stream=None)
model_request, tool_call, list_tools = durable.steps


@rf.workflow(name="killable-agent")
async def killable_agent(ctx: rf.Context, prompt: str) -> Any:
    result = await durable.run(ctx, prompt)
    return result.output
