"""mixed.py with "mx-patch" at the deprecation step: it accepts the marker again, so a
suspended instance resumes."""

import replayflow as rf
from tests.replay_code.mixed import *  # noqa: F403
from tests.replay_code.mixed import work


@rf.workflow(name="mx-patch")
async def patched_flow(ctx: rf.Context, n: object) -> object:
    await ctx.wait_for_event("pay")
    ctx.deprecate_patch("fraud-check")
    await ctx.step("fraud", work, n)
    await ctx.wait_for_event("ship")
    return await ctx.step("charge", work, n)
