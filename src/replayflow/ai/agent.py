"""A Pydantic AI agent whose run is a workflow (`pip install replayflow[ai]`).

    agent = Agent(model, tools=[...], output_type=str)
    travel = DurableAgent(agent, name="travel", stream="answer")
    model_request, tool_call, list_tools = travel.steps   # module level: workers find them

    @rf.workflow(name="travel-agent")
    async def plan(ctx, goal):
        result = await travel.run(ctx, goal)      # the agent loop, in the workflow
        return result.output

As Pydantic AI's Temporal and DBOS integrations do, through its public interface: the
model is wrapped (WrapperModel) so each model request is a step, and each toolset
(WrapperToolset) so each tool call is a step. Steps are retried by their policy,
recorded in history and answered from it on replay: a replayed or resumed agent never
calls the model or a tool again for what it already did. The model step streams the
text it receives to the instance's durable stream `stream` (live to callers). A tool
declared with `requires_approval=True` makes the run wait for the event
`approval_event` ({"approved": true} or {"approved": false, "reason": ...}) before it
runs, which may take days and survives restarts.

Toolsets whose tool list needs I/O (Pydantic AI's MCPToolset over stdio or streamable
HTTP, and any toolset that is not plain function tools) are listed by a step, once per
run, and their calls are steps like any other (ai/toolsets.py). `deps` reach tools
that run in the worker as JSON, rebuilt with the agent's deps_type (docs/agents.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, ModelRetry
from pydantic_ai.messages import (
    ModelMessage,
    ModelMessagesTypeAdapter,
    ModelRequest,
    ModelResponse,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDenied
from pydantic_ai.toolsets import AbstractToolset
from pydantic_core import to_jsonable_python

from replayflow.ai.bridge import Bridge
from replayflow.ai.model_step import list_tools, request_model, run_tool
from replayflow.ai.toolsets import RunState, StepToolset, deps_json
from replayflow.core.context import Context
from replayflow.core.definitions import StepDef, step
from replayflow.core.names import check_name
from replayflow.core.policy import Retry

_PARAMS = TypeAdapter(ModelRequestParameters)
_RESPONSE = TypeAdapter(ModelResponse)
MODEL_RETRY = Retry(limit=5, delay="1s", backoff="exponential", max_delay="1m")
TOOL_RETRY = Retry(limit=3, delay="1s", backoff="exponential", max_delay="30s")


class DurableAgent:
    def __init__(
        self,
        agent: Agent[Any, Any],
        *,
        name: str,
        stream: str | None = "answer",
        approval_event: str = "approval",
        model_retry: Retry = MODEL_RETRY,
        tool_retry: Retry = TOOL_RETRY,
        model_timeout: str | None = "10m",
        tool_timeout: str | None = "10m",
    ) -> None:
        if agent.model is None or isinstance(agent.model, str):
            from pydantic_ai.models import infer_model

            model: Model = infer_model(agent.model)  # type: ignore[arg-type]
        else:
            model = agent.model
        self.agent = agent
        self.name = check_name(name, "agent name")
        self.model = model
        self.stream = stream
        self.approval_event = check_name(approval_event, "event name")
        # The toolsets as built, the agent's own function tools first: tool call steps
        # name a toolset by its place in this list.
        self.toolsets: list[AbstractToolset[Any]] = list(agent.toolsets)
        self.model_step = step(
            name=f"{name}.model_request", retry=model_retry, timeout=model_timeout
        )(self._model_request)
        self.tool_step = step(name=f"{name}.tool_call", retry=tool_retry, timeout=tool_timeout)(
            self._tool_call
        )
        self.list_step = step(name=f"{name}.list_tools", retry=tool_retry, timeout=tool_timeout)(
            self._list_tools
        )
        self._deps: TypeAdapter[Any] = TypeAdapter(agent.deps_type)

    @property
    def steps(self) -> tuple[StepDef, StepDef, StepDef]:
        """The model request, tool call and tool listing steps: unpack them at module
        level (workers find steps there), or pass the agent to Registry.of."""
        return self.model_step, self.tool_step, self.list_step

    def __iter__(self) -> Any:
        return iter(self.steps)  # Registry.of(durable_agent) adds its steps

    # -- in the workflow -----------------------------------------------------------------

    async def run(self, ctx: Context, prompt: str | None = None, **options: Any) -> Any:
        """Run the agent in this workflow: its AgentRunResult. Options go to Agent.run
        (message_history, deps, model_settings, usage_limits, ...)."""
        output_type = options.pop("output_type", self.agent.output_type)
        outputs = [output_type, DeferredToolRequests]
        if options.get("deps") is not None:
            deps_json(options["deps"])  # tools in the worker get them as JSON: fail early
        stable = _Stable(ctx)
        run = RunState(self.tool_step, self.list_step)
        result = await self._once(ctx, stable, run, prompt, output_type=outputs, **options)
        while isinstance(result.output, DeferredToolRequests):
            answers = DeferredToolResults()
            for call in result.output.approvals:
                decision = await ctx.wait_for_event(self.approval_event)
                approved = (
                    bool(decision.get("approved")) if isinstance(decision, dict) else bool(decision)
                )
                if approved:
                    answers.approvals[call.tool_call_id] = True
                else:
                    reason = decision.get("reason") if isinstance(decision, dict) else None
                    answers.approvals[call.tool_call_id] = ToolDenied(
                        reason or "The user did not approve this tool call."
                    )
            for call in result.output.calls:  # deferred calls have no runner here
                answers.calls[call.tool_call_id] = ModelRetry("this tool cannot run deferred")
            options.pop("message_history", None)
            result = await self._once(
                ctx,
                stable,
                run,
                None,
                output_type=outputs,
                message_history=result.all_messages(),
                deferred_tool_results=answers,
                **options,
            )
        return result

    async def _once(
        self, ctx: Context, stable: _Stable, run: RunState, prompt: str | None, **options: Any
    ) -> Any:
        bridge = Bridge(ctx)
        model = _StepModel(self.model, bridge, self, stable)
        toolsets = [StepToolset(ts, bridge, index, run) for index, ts in enumerate(self.toolsets)]

        async def program() -> Any:
            with self.agent.override(model=model, tools=[], toolsets=toolsets):
                return await self.agent.run(prompt, **options)

        return await bridge.run(program())

    # -- in the worker -------------------------------------------------------------------

    # Plain functions: a worker runs them in its thread pool, each on an event loop of
    # its own, so a model client or a tool that blocks never stalls the worker's loop.
    def _model_request(
        self, messages: list[Any], settings: dict[str, Any] | None, params: dict[str, Any]
    ) -> dict[str, Any]:
        response = asyncio.run(
            request_model(
                self.model,
                ModelMessagesTypeAdapter.validate_python(messages),
                settings,  # type: ignore[arg-type]
                _PARAMS.validate_python(params),
                self.stream,
            )
        )
        return _RESPONSE.dump_python(response, mode="json")  # type: ignore[no-any-return]

    def _tool_call(
        self,
        toolset: int,
        tool: str,
        args: dict[str, Any],
        call_id: str | None,
        retry: int,
        deps: Any = None,
    ) -> dict[str, Any]:
        outcome = asyncio.run(
            run_tool(
                self.model, self.toolsets[toolset], tool, args, call_id, retry, self._rebuilt(deps)
            )
        )
        return dataclasses.asdict(outcome)

    def _list_tools(self, toolset: int, deps: Any = None) -> list[dict[str, Any]]:
        return asyncio.run(list_tools(self.model, self.toolsets[toolset], self._rebuilt(deps)))

    def _rebuilt(self, deps: Any) -> Any:
        """The run's deps from their JSON, as the agent's deps_type."""
        return None if deps is None else self._deps.validate_python(deps)


class _StepModel(WrapperModel):
    """The agent's model as the workflow sees it: every request is a step."""

    def __init__(
        self, model: Model, bridge: Bridge, durable: DurableAgent, stable: _Stable
    ) -> None:
        super().__init__(model)
        self._bridge = bridge
        self._durable = durable
        self._stable = stable

    async def __aenter__(self) -> _StepModel:
        return self  # connections are opened in the worker, by the step

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        ctx = self._bridge.ctx
        request = ctx.step(
            "model-request",
            self._durable.model_step,
            ModelMessagesTypeAdapter.dump_python(self._stable(messages), mode="json"),
            to_jsonable_python(model_settings) if model_settings else None,
            _PARAMS.dump_python(model_request_parameters, mode="json"),
        )
        return _RESPONSE.validate_python(await self._bridge.step(request))


class _Stable:
    """Makes what the agent writes in the workflow the same on every replay: Pydantic
    AI stamps requests with the wall clock and runs with random ids. A request gets the
    workflow's recorded time when first seen, a run an id from the instance's."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._stamps: dict[int, Any] = {}
        self._seen: list[Any] = []  # keeps the ids above from being reused
        self._runs: dict[str | None, str | None] = {None: None}

    def _run(self, run_id: str | None) -> str | None:
        if run_id not in self._runs:
            self._runs[run_id] = f"{self._ctx.instance_id}:{len(self._runs)}"
        return self._runs[run_id]

    def __call__(self, messages: list[ModelMessage]) -> list[ModelMessage]:
        out: list[ModelMessage] = []
        for message in messages:
            ids: dict[str, Any] = {
                "run_id": self._run(message.run_id),
                "conversation_id": self._run(message.conversation_id),
            }
            if isinstance(message, ModelRequest):
                if id(message) not in self._stamps:
                    self._stamps[id(message)] = self._ctx.now()
                    self._seen.append(message)
                stamp = self._stamps[id(message)]
                parts = [
                    dataclasses.replace(p, timestamp=stamp) if hasattr(p, "timestamp") else p
                    for p in message.parts
                ]
                out.append(dataclasses.replace(message, parts=parts, timestamp=stamp, **ids))
            else:
                out.append(dataclasses.replace(message, **ids))
        return out
