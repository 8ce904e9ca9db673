"""The rebuild benchmark's workflows (benchmarks/rebuild.py): an order with steps, a
sleep and an event (most complete, some still wait for the event), and a batch of
parallel steps. Nothing depends on the instance id (no ctx.random, no retry jitter),
so a history copied under another id is that instance's true history too."""

import replayflow as rf


@rf.step(name="rb_bump")
def bump(n: int) -> int:
    return n + 1


@rf.workflow(name="rb-order")
async def order(ctx: rf.Context, n: int) -> int:
    a = await ctx.step("reserve", bump, n)
    b = await ctx.step("charge", bump, a)
    await ctx.sleep("settle", "1m")
    await ctx.wait_for_event("shipped", timeout="1d")
    return await ctx.step("notify", bump, b)


@rf.workflow(name="rb-batch")
async def batch(ctx: rf.Context, n: int) -> int:
    parts = await ctx.all([ctx.step(f"part-{i}", bump, n + i) for i in range(4)])
    return sum(parts)
