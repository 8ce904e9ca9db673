"""Running an asyncio program (an agent framework's loop) inside a workflow.

A workflow's coroutine may await only ctx operations; an agent loop awaits whatever
asyncio offers. The bridge runs the loop on a private event loop of its own, one
turn at a time: whenever every task of that loop waits, the requests its wrappers
made (model requests, tool calls: steps) are awaited from the workflow, all at once
when several came together (parallel tool calls), and their results wake the waiting
tasks. Nothing else in the loop may wait on the outside world: that is what makes the
order of requests, and so the replay, the same every time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from replayflow.core.context import Context, StepRequest
from replayflow.core.errors import ReplayflowError


class BridgeError(ReplayflowError):
    """The program inside the workflow waits for something that is not a step."""


class Bridge:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.loop = asyncio.new_event_loop()
        self._pending: list[tuple[StepRequest, asyncio.Future[Any]]] = []

    async def step(self, request: StepRequest) -> Any:
        """Called inside the private loop: the step's result, once the workflow has it."""
        future: asyncio.Future[Any] = self.loop.create_future()
        self._pending.append((request, future))
        return await future

    async def run(self, program: Coroutine[Any, Any, Any]) -> Any:
        """Called by the workflow: drive `program` to its end, its steps awaited here."""
        task = self.loop.create_task(program)
        try:
            while True:
                self._turn(task)
                if task.done():
                    return task.result()
                batch, self._pending = self._pending, []
                if not batch:
                    raise BridgeError(
                        "the agent waits for something other than a model request or a "
                        "tool call (only those may wait inside a workflow)"
                    )
                requests = [request for request, _ in batch]
                if len(requests) == 1:
                    try:
                        outcomes: list[Any] = [await requests[0]]
                    except Exception as exc:  # a step failure goes back into the program
                        outcomes = [exc]
                else:
                    outcomes = await self.ctx.all(requests, return_exceptions=True)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            if not task.done():
                task.cancel()
                self._turn(task)
            self.loop.close()

    def _turn(self, task: asyncio.Task[Any]) -> None:
        """Run the private loop until its tasks all wait (or `task` is done)."""

        async def settle() -> None:
            while not task.done():
                await asyncio.sleep(0)
                if not self.loop._ready:  # type: ignore[attr-defined]  # nothing else can run
                    return

        # The orchestrator's thread runs no event loop; a test's may: step aside.
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(None)
        try:
            self.loop.run_until_complete(settle())
        finally:
            asyncio.events._set_running_loop(outer)
