"""A 'travel-agent' whose code changed after instances ran: replay must report it."""

import replayflow as rf


@rf.step
def think(goal: str) -> str:
    return goal


@rf.workflow(name="travel-agent", version="2", timeout="30d")
async def travel_agent(ctx: rf.Context, request: dict) -> dict:
    await ctx.step("think", think, request["goal"])
    await ctx.wait_for_event("a-different-event")
    return {}
