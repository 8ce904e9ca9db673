"""Workflows for the Kafka trigger tests. `replayflow trigger -m
tests.integration.trigger_workloads` runs the trigger declared here (the kill test);
the test process registers the same workflows with its orchestrator."""

from __future__ import annotations

from typing import Any

import replayflow as rf

#: The kill test's source topic (the namespace prefix applies).
KILL_SOURCE = "kill-source"


@rf.workflow(
    name="trig-echo",
    trigger=rf.KafkaTrigger(topic=KILL_SOURCE, id=".id", input=".", name="kill-test"),
)
async def echo(ctx: rf.Context, value: Any) -> Any:
    """Returns its input: started by records of `kill-source` and by the format tests."""
    return value


@rf.workflow(name="trig-waiter")
async def waiter(ctx: rf.Context, n: int) -> dict[str, Any]:
    """Waits for the event "paid" and returns it."""
    return {"n": n, "paid": await ctx.wait_for_event("paid", timeout=120)}
