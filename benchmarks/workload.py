"""The benchmark workload: a three-step workflow of trivial steps."""

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
