"""A workflow that declares its schedule in code: every orchestrator with this module
creates or updates the schedule `declared` when it starts."""

from __future__ import annotations

import replayflow as rf


@rf.workflow(schedule=rf.Schedule(cron="0 * * * *", tz="Europe/Berlin", input={"from": "code"}))
async def declared(ctx: rf.Context, input: dict[str, str]) -> str:
    return input["from"]
