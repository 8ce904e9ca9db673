"""The benchmark workloads (`make bench`, benchmarks/run.py).

bench-three-steps  three trivial steps in a row: throughput, latency, scale-out
bench-long         n sequential steps of one trivial function: the cost of a step late
                   in a long instance against one early in it
bench-limited      one trivial step under a concurrency limit (the orchestrator gets
                   `--limit bench-limited=N`): how fast the admission queue drains
"""

import replayflow as rf


@rf.step
def bench_a(n: int) -> int:
    return n + 1


@rf.step
async def bench_b(n: int) -> int:
    return n * 2


@rf.step
def bench_c(n: int) -> int:
    return n - 1


@rf.workflow(name="bench-three-steps", version="1")
async def three_steps(ctx: rf.Context, n: int) -> int:
    a = await ctx.step("a", bench_a, n)
    b = await ctx.step("b", bench_b, a)
    return await ctx.step("c", bench_c, b)


def three_steps_result(n: int) -> int:
    """What bench-three-steps returns for input n: every result is checked with it."""
    return (n + 1) * 2 - 1


@rf.step
async def bench_next(n: int) -> int:
    return n + 1


@rf.workflow(name="bench-long", version="1")
async def long_steps(ctx: rf.Context, steps: int) -> int:
    n = 0
    for _ in range(steps):
        n = await ctx.step("s", bench_next, n)
    return n


@rf.workflow(name="bench-limited", version="1", concurrency=100)
async def limited(ctx: rf.Context, n: int) -> int:
    return await ctx.step("a", bench_a, n)


@rf.workflow(name="bench-noop", version="1")
async def noop(ctx: rf.Context, n: int) -> int:
    return n
