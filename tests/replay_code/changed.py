"""A change of original.py that only some instances notice: three inputs take another
step name after "first" (non-deterministic for those), the rest replay as before."""

import replayflow as rf

CHANGED = (7, 77, 777)


@rf.step(name="rc_add")
def add(n: int, k: int) -> int:
    return n + k


@rf.workflow(name="rc-order", version="1")
async def order(ctx: rf.Context, n: int) -> int:
    a = await ctx.step("first", add, n, 1)
    await ctx.sleep("cool", "1m")
    name = "second-renamed" if n in CHANGED else "second"
    b = await ctx.step(name, add, a, 2)
    if n % 10 == 0:
        await ctx.wait_for_event("go")
    return b
