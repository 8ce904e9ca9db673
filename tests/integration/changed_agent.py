"""A 'travel-agent' whose code changed after instances ran: replay must report it."""

from examples.agent import think

import replayflow as rf


@rf.workflow(name="travel-agent", version="1", timeout="30d")
async def travel_agent(ctx: rf.Context, request: dict) -> dict:
    await ctx.step("think", think, request["goal"], [])
    await ctx.wait_for_event("a-different-event")
    return {}
