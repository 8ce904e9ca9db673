"""mixed.py with the ctx.patched call of "mx-patch" dropped too early: an instance that
recorded the marker is suspended at its next decision."""

import replayflow as rf
from tests.replay_code.mixed import *  # noqa: F403
from tests.replay_code.mixed import work


@rf.workflow(name="mx-patch")
async def patched_flow(ctx: rf.Context, n: object) -> object:
    await ctx.wait_for_event("pay")
    await ctx.step("fraud", work, n)
    await ctx.wait_for_event("ship")
    return await ctx.step("charge", work, n)
