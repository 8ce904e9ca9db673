"""The workflows and steps of the shared suite, run on every engine.

Module-level so a separate worker process can import them as
`tests.workflows.definitions`. Every name starts with "suite_". Steps that must fail a
few times decide from `rf.current_step().attempt`, which every engine provides, and
durations are short because the Kafka engine runs in real time.
"""

from __future__ import annotations

from typing import Any

import replayflow as rf

# Retries a second apart, no jitter: fast on a real clock, exact on a virtual one.
QUICK_RETRY = rf.Retry(limit=3, delay="1s", backoff="constant", jitter=False)


class CardDeclined(rf.NonRetryableError):
    """A charge that no retry can fix."""


# -- steps ------------------------------------------------------------------------------


@rf.step(name="suite_double")
def double(x: int) -> int:
    return x * 2


@rf.step(name="suite_add_one")
def add_one(x: int) -> int:
    return x + 1


@rf.step(name="suite_square")
def square(x: int) -> int:
    return x * x


@rf.step(name="suite_echo")
def echo(value: Any) -> Any:
    return value


@rf.step(name="suite_flaky", retry=QUICK_RETRY)
def flaky(fail_times: int) -> int:
    """Fails its first `fail_times` attempts, then returns the attempt that succeeded."""
    attempt = rf.current_step().attempt
    if attempt <= fail_times:
        raise RuntimeError(f"attempt {attempt} of {fail_times + 1} fails on purpose")
    return attempt


@rf.step(name="suite_charge", retry=QUICK_RETRY)
def charge(order: dict[str, Any]) -> dict[str, Any]:
    if order["amount"] > order.get("limit", 100):
        raise CardDeclined(f"amount {order['amount']} is over the card limit")
    return {"charged": order["amount"]}


@rf.step(name="suite_reserve")
def reserve(item: str) -> dict[str, str]:
    return {"reservation": f"r-{item}"}


@rf.step(name="suite_release")
def release(reservation: str) -> dict[str, str]:
    return {"released": reservation}


@rf.step(name="suite_fraud_check")
def fraud_check(order: dict[str, Any]) -> bool:
    return bool(order["amount"] < 1000)


@rf.step(name="suite_ship")
def ship(item: str, carrier: str) -> str:
    return f"{item} via {carrier}"


@rf.step(name="suite_cleanup")
def cleanup(what: str) -> str:
    return f"cleaned {what}"


# -- workflows --------------------------------------------------------------------------


@rf.workflow(name="suite_pipeline")
async def pipeline(ctx: rf.Context, n: int) -> int:
    doubled = await ctx.step("double", double, n)
    plus_one = await ctx.step("add_one", add_one, doubled)
    return int(await ctx.step("square", square, plus_one))


@rf.workflow(name="suite_retries")
async def retries(ctx: rf.Context, fail_times: int) -> int:
    return int(await ctx.step("flaky", flaky, fail_times))


@rf.workflow(name="suite_charge_only")
async def charge_only(ctx: rf.Context, order: dict[str, Any]) -> Any:
    return await ctx.step("charge", charge, order)


@rf.workflow(name="suite_compensate")
async def compensate(ctx: rf.Context, order: dict[str, Any]) -> dict[str, Any]:
    reservation = await ctx.step("reserve", reserve, order["item"])
    try:
        charged = await ctx.step("charge", charge, order)
    except rf.StepFailed as exc:
        released = await ctx.step("release", release, reservation["reservation"])
        return {"status": "compensated", "error": exc.error.type, **released}
    return {"status": "charged", **charged}


@rf.workflow(name="suite_sleep")
async def sleeper(ctx: rf.Context, duration: str) -> int:
    before = ctx.now_ms()
    await ctx.sleep("nap", duration)
    return ctx.now_ms() - before


@rf.workflow(name="suite_wait_event")
async def wait_event(ctx: rf.Context, timeout: str | None) -> dict[str, Any]:
    try:
        payload = await ctx.wait_for_event("approval", timeout=timeout)
    except rf.EventTimeout:
        return {"approval": None, "timed_out": True}
    return {"approval": payload, "timed_out": False}


@rf.workflow(name="suite_inbox")
async def inbox(ctx: rf.Context, count: int) -> list[Any]:
    """Events named "item" sent before "go" wait in the inbox and come out in order."""
    await ctx.wait_for_event("go")
    items = []
    for _ in range(count):
        items.append(await ctx.wait_for_event("item"))
    return items


@rf.workflow(name="suite_parallel")
async def parallel(ctx: rf.Context, numbers: list[int]) -> list[int]:
    return list(await ctx.all([ctx.step(f"square_{i}", square, n) for i, n in enumerate(numbers)]))


@rf.workflow(name="suite_cancellable")
async def cancellable(ctx: rf.Context, what: str) -> str:
    try:
        await ctx.wait_for_event("never")
    except rf.Cancelled:
        await ctx.step("cleanup", cleanup, what)
        raise
    return "not cancelled"


@rf.workflow(name="suite_echo_input")
async def echo_input(ctx: rf.Context, value: Any) -> Any:
    return await ctx.step("echo", echo, value)


@rf.workflow(name="suite_deterministic")
async def deterministic(ctx: rf.Context) -> dict[str, Any]:
    """Deterministic values before and after an await; the output shows them all."""
    first = {"random": ctx.random(), "uuid": str(ctx.uuid4()), "now": ctx.now_ms()}
    await ctx.step("tick", double, 1)
    second = {"random": ctx.random(), "uuid": str(ctx.uuid4()), "now": ctx.now_ms()}
    return {"first": first, "second": second}


@rf.workflow(name="suite_checkout")
async def checkout(ctx: rf.Context, order: dict[str, Any]) -> dict[str, Any]:
    """Parallel steps, a retried step, a sleep and an event: the recorded regression."""
    reservation, trusted = await ctx.all(
        [ctx.step("reserve", reserve, order["item"]), ctx.step("fraud_check", fraud_check, order)]
    )
    if not trusted:
        await ctx.step("release", release, reservation["reservation"])
        return {"status": "rejected"}
    attempts = await ctx.step("charge", flaky, 1)  # the first attempt fails
    await ctx.sleep("settle", "1s")
    shipping = await ctx.wait_for_event("shipped", timeout="1h")
    label = await ctx.step("ship", ship, order["item"], shipping["carrier"])
    return {"status": "shipped", "charge_attempts": attempts, "label": label, **reservation}
