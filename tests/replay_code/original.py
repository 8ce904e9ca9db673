"""The code the recorded instances ran: a few steps, a sleep and an event wait."""

import replayflow as rf


@rf.step(name="rc_add")
def add(n: int, k: int) -> int:
    return n + k


@rf.workflow(name="rc-order", version="1")
async def order(ctx: rf.Context, n: int) -> int:
    a = await ctx.step("first", add, n, 1)
    await ctx.sleep("cool", "1m")
    b = await ctx.step("second", add, a, 2)
    if n % 10 == 0:
        await ctx.wait_for_event("go")
    return b
