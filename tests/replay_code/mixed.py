"""Workflows that leave instances in every state the rebuild must reproduce: completed,
running (a step out), sleeping, waiting (with an event kept for later), queued (under a
concurrency limit), paused, retrying (a backoff timer), children, and one that a later
deploy suspends (mixed_v4.py drops a ctx.patched call; mixed_v3.py fixes it)."""

import replayflow as rf
from replayflow.execution import current_step


@rf.step(name="mx_work")
def work(x: object) -> object:
    return x


@rf.step(name="mx_slow")
def slow(x: object) -> object:
    return x


@rf.step(name="mx_flaky", retry=rf.Retry(limit=5, delay="10s"))
def flaky(x: object) -> object:
    if x == "fail-once" and current_step().attempt < 2:
        raise RuntimeError("first attempt fails")
    return x


@rf.workflow(name="mx-steps")
async def steps(ctx: rf.Context, n: object) -> object:
    a = await ctx.step("a", work, n)
    return await ctx.step("b", work, a)


@rf.workflow(name="mx-running")
async def running(ctx: rf.Context, n: object) -> object:
    return await ctx.step("slow", slow, n)


@rf.workflow(name="mx-sleep")
async def sleeper(ctx: rf.Context, n: object) -> object:
    await ctx.sleep("nap", n if isinstance(n, int) else "1h")  # seconds, or an hour
    return await ctx.step("after", work, n)


@rf.workflow(name="mx-wait", version="1")
async def waiter(ctx: rf.Context, n: object) -> object:
    got = await ctx.wait_for_event("go", timeout="1d")
    return await ctx.step("after", work, got)


@rf.workflow(name="mx-wait", version="2")
async def waiter_v2(ctx: rf.Context, n: object) -> object:
    got = await ctx.wait_for_event("go", timeout="1d")
    return await ctx.step("after-v2", work, got)


@rf.workflow(name="mx-limited", concurrency=2)
async def limited(ctx: rf.Context, n: object) -> object:
    await ctx.step("w", work, n)
    return await ctx.wait_for_event("done")


@rf.workflow(name="mx-retry")
async def retrying(ctx: rf.Context, n: object) -> object:
    return await ctx.step("flaky", flaky, n)


@rf.workflow(name="mx-parent")
async def parent(ctx: rf.Context, n: object) -> object:
    return await ctx.child("kid", "mx-steps", n)


@rf.workflow(name="mx-patch")
async def patched_flow(ctx: rf.Context, n: object) -> object:
    await ctx.wait_for_event("pay")
    if ctx.patched("fraud-check"):
        await ctx.step("fraud", work, n)
    await ctx.wait_for_event("ship")
    return await ctx.step("charge", work, n)
