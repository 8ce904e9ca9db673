"""One handler per task kind: `async def handler(run, name, task, pointer, input, scope,
args) -> raw output`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from replayflow.dsl.errors import fault
from replayflow.dsl.tasks import calls, events, flow

if TYPE_CHECKING:
    from replayflow.dsl.interpreter import Run, Scope

HANDLERS = {
    "do": flow.run_do,
    "for": flow.run_for,
    "fork": flow.run_fork,
    "switch": flow.run_switch,
    "try": flow.run_try,
    "raise": flow.run_raise,
    "wait": flow.run_wait,
    "set": flow.run_set,
    "call": calls.run_call,
    "run": calls.run_run,
    "emit": events.run_emit,
    "listen": events.run_listen,
}


async def run_kind(
    run: Run,
    kind: str | None,
    name: str,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    args: dict[str, Any],
) -> Any:
    handler = HANDLERS.get(kind or "")
    if handler is None:
        raise fault("configuration", f"task {name!r} has no known kind", pointer)
    return await handler(run, name, task, pointer, data, scope, args)
