"""What the agent's steps do in the worker: one model request (its text streamed to the
instance's durable stream as it arrives), one tool call."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_ai import ModelRetry
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    PartDeltaEvent,
    PartStartEvent,
    TextPart,
    TextPartDelta,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext
from pydantic_ai.toolsets import AbstractToolset
from pydantic_ai.usage import RunUsage
from pydantic_core import to_jsonable_python

from replayflow.execution import current_step


@dataclass(frozen=True)
class ToolOutcome:
    """A tool call's result as recorded: its value, or a retry the model is asked for."""

    result: Any = None
    retry: str | None = None


async def request_model(
    model: Model,
    messages: list[ModelMessage],
    settings: ModelSettings | None,
    params: ModelRequestParameters,
    stream: str | None,
) -> ModelResponse:
    writer = None
    if stream is not None:
        with contextlib.suppress(RuntimeError):  # outside a step: nowhere to stream to
            writer = current_step().stream(stream)
    if writer is None:
        return await model.request(messages, settings, params)
    try:
        async with model.request_stream(messages, settings, params) as streamed:
            async for event in streamed:
                text = ""
                if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                    text = event.part.content
                elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                    text = event.delta.content_delta
                if text:
                    writer.write(text)
            return streamed.get()
    except NotImplementedError:  # a model that cannot stream: its text in one piece
        response = await model.request(messages, settings, params)
        for part in response.parts:
            if isinstance(part, TextPart) and part.content:
                writer.write(part.content)
        return response


def tool_context(
    model: Model, deps: Any, name: str | None = None, call_id: str | None = None, retry: int = 0
) -> RunContext[Any]:
    """What a tool (or a toolset listing its tools) sees in the worker."""
    return RunContext[Any](
        deps=deps, model=model, usage=RunUsage(), tool_call_id=call_id, tool_name=name, retry=retry
    )


async def list_tools(
    model: Model, toolset: AbstractToolset[Any], deps: Any
) -> list[dict[str, Any]]:
    """The toolset's tools as the workflow rebuilds them: definition and retry budget."""
    async with toolset:
        tools = await toolset.get_tools(tool_context(model, deps))
    return [
        {"tool_def": to_jsonable_python(tool.tool_def), "max_retries": tool.max_retries}
        for tool in tools.values()
    ]


async def run_tool(
    model: Model,
    toolset: AbstractToolset[Any],
    name: str,
    args: dict[str, Any],
    call_id: str | None,
    retry: int,
    deps: Any = None,
) -> ToolOutcome:
    ctx = tool_context(model, deps, name, call_id, retry)
    async with toolset:
        tools = await toolset.get_tools(ctx)
        tool = tools[name]
        try:
            validated = tool.args_validator.validate_python(args)
        except PydanticValidationError as exc:  # the model is asked again, as Pydantic AI does
            return ToolOutcome(retry=f"invalid arguments for {name}: {exc}")
        try:
            value = await toolset.call_tool(name, validated, ctx, tool)
        except ModelRetry as exc:
            return ToolOutcome(retry=exc.message)
    return ToolOutcome(result=to_jsonable_python(value))
