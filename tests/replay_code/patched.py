"""A safe change of original.py (a new step behind ctx.patched), and a version "2" for
upgrades: it adds a step after the wait for "go" (safe for instances still waiting) and
renames the sleep of every twentieth input (unsafe once that sleep began)."""

import replayflow as rf


@rf.step(name="rc_add")
def add(n: int, k: int) -> int:
    return n + k


@rf.workflow(name="rc-order", version="1")
async def order(ctx: rf.Context, n: int) -> int:
    a = await ctx.step("first", add, n, 1)
    if ctx.patched("audit"):
        await ctx.step("audit", add, a, 0)
    await ctx.sleep("cool", "1m")
    b = await ctx.step("second", add, a, 2)
    if n % 10 == 0:
        await ctx.wait_for_event("go")
    return b


@rf.workflow(name="rc-order", version="2")
async def order_v2(ctx: rf.Context, n: int) -> int:
    a = await ctx.step("first", add, n, 1)
    await ctx.sleep("cool-down" if n % 20 == 0 else "cool", "1m")  # renamed for some
    b = await ctx.step("second", add, a, 2)
    if n % 10 == 0:
        await ctx.wait_for_event("go")
        b = await ctx.step("after-go", add, b, 100)  # new in version 2
    return b
