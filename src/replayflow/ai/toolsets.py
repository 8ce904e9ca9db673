"""An agent's toolsets as the workflow sees them: every tool call is a step, and a
toolset whose tool list needs I/O (Pydantic AI's MCPToolset, over stdio or streamable
HTTP, or anything else that is not plain function tools) is listed by a step too, once
per agent run, as Pydantic AI's Temporal integration does with an activity.

What a tool sees in the worker: a RunContext with the run's `deps` (rebuilt from JSON
with the agent's deps_type: see docs/agents.md for the rule), the model, the tool's
name, call id and retry count.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import ModelRetry
from pydantic_ai.tools import RunContext, ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, FunctionToolset, ToolsetTool, WrapperToolset
from pydantic_core import (
    PydanticSerializationError,
    SchemaValidator,
    core_schema,
    to_jsonable_python,
)

from replayflow.ai.bridge import Bridge
from replayflow.ai.model_step import ToolOutcome
from replayflow.core.definitions import StepDef
from replayflow.core.errors import ValidationError

TOOL_DEFINITION = TypeAdapter(ToolDefinition)
# Arguments of a tool listed by a step are checked where the tool runs (the worker, with
# the tool's own validator); in the workflow any JSON object passes.
ANY_ARGUMENTS = SchemaValidator(core_schema.dict_schema(core_schema.str_schema()))


def lists_with_io(toolset: AbstractToolset[Any]) -> bool:
    """Whether listing the toolset's tools may need I/O: anything but function tools."""
    leaves: list[AbstractToolset[Any]] = []
    toolset.apply(leaves.append)
    return not all(isinstance(leaf, FunctionToolset) for leaf in leaves)


def deps_json(deps: Any) -> Any:
    """The run's deps as they travel to the worker: JSON, or a clear error."""
    try:
        return to_jsonable_python(deps)
    except PydanticSerializationError as exc:
        raise ValidationError(
            f"the deps of a durable agent go to its tools as JSON, and {type(deps).__name__} "
            f"is not serializable ({exc}): pass data (a dataclass, a pydantic model, dicts) "
            "and build clients and connections inside the tools"
        ) from None


class RunState:
    """What the toolsets of one DurableAgent.run share: the agent's tool call and tool
    listing steps, and the tool lists already taken."""

    def __init__(self, tool_step: StepDef, list_step: StepDef) -> None:
        self.tool_step = tool_step
        self.list_step = list_step
        self.listed: dict[int, list[dict[str, Any]]] = {}


@dataclasses.dataclass
class StepToolset(WrapperToolset[Any]):
    """A toolset as the workflow sees it: its tools are listed in the workflow (function
    tools: no I/O) or by a step (`listed_by_step`), each call is a step."""

    bridge: Bridge | None = None
    index: int = 0
    run: RunState | None = None
    listed_by_step: bool = False

    def __init__(
        self,
        wrapped: AbstractToolset[Any],
        bridge: Bridge,
        index: int,
        run: RunState,
    ) -> None:
        self.wrapped = wrapped
        self.bridge = bridge
        self.index = index
        self.run = run
        self.listed_by_step = lists_with_io(wrapped)

    async def __aenter__(self) -> StepToolset:
        return self  # connections are opened in the worker, by the steps

    async def __aexit__(self, *args: Any) -> bool | None:
        return None

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        if not self.listed_by_step:
            return await super().get_tools(ctx)
        assert self.bridge is not None and self.run is not None
        if self.index not in self.run.listed:
            request = self.bridge.ctx.step(
                f"tools-{_label(self.wrapped, self.index)}",
                self.run.list_step,
                self.index,
                deps_json(ctx.deps),
            )
            self.run.listed[self.index] = await self.bridge.step(request)
        tools = {}
        for entry in self.run.listed[self.index]:
            definition = TOOL_DEFINITION.validate_python(entry["tool_def"])
            tools[definition.name] = ToolsetTool[Any](
                toolset=self,
                tool_def=definition,
                max_retries=entry["max_retries"],
                args_validator=ANY_ARGUMENTS,
            )
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        assert self.bridge is not None and self.run is not None
        # Deps travel only when there are any: the input of a call without them stays
        # as it always was (recorded histories replay unchanged).
        extra = {} if ctx.deps is None else {"deps": deps_json(ctx.deps)}
        request = self.bridge.ctx.step(
            f"tool-{name}",
            self.run.tool_step,
            self.index,
            name,
            to_jsonable_python(tool_args),
            ctx.tool_call_id,
            ctx.retry,
            **extra,
        )
        outcome = ToolOutcome(**await self.bridge.step(request))
        if outcome.retry is not None:
            raise ModelRetry(outcome.retry)
        return outcome.result


def _label(toolset: AbstractToolset[Any], index: int) -> str:
    """A step name part for the toolset: its id when it has a usable one."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", toolset.id or "")[:60].strip("-")
    return name or f"toolset{index}"
