"""The scale benchmark's workloads (benchmarks/scale.py).

scale-wait    one trivial step, then waits for the event "go": the concurrent phase
scale-queued  one trivial step, under a concurrency limit: the queued phase (the
              orchestrator gets `--limit scale-queued=N`; 100 is the default here)
scale-noop    no step at all: a warm-up that needs no worker and takes no slot
"""

import replayflow as rf


@rf.step
def scale_touch(n: int) -> int:
    return n + 1


@rf.workflow(name="scale-wait", version="1")
async def wait_for_go(ctx: rf.Context, n: int) -> int:
    touched = await ctx.step("touch", scale_touch, n)
    await ctx.wait_for_event("go")
    return touched


@rf.workflow(name="scale-queued", version="1", concurrency=100)
async def queued(ctx: rf.Context, n: int) -> int:
    return await ctx.step("touch", scale_touch, n)


@rf.workflow(name="scale-noop", version="1")
async def noop(ctx: rf.Context, n: int) -> int:
    return n
