"""The same order (same name, same version) with a fraud check before the charge,
behind ctx.patched: instances that charged before it was deployed keep their path."""

import replayflow as rf


@rf.step(name="fr_charge")
def charge(order: str) -> str:
    return f"charged {order}"


@rf.step(name="fr_fraud")
def fraud(order: str) -> str:
    return f"checked {order}"


@rf.workflow(name="fr-order")
async def order(ctx: rf.Context, order_id: str) -> list[str]:
    await ctx.wait_for_event("pay")
    done = []
    if ctx.patched("new-fraud-check"):
        done.append(await ctx.step("fraud", fraud, order_id))
    done.append(await ctx.step("charge", charge, order_id))
    await ctx.wait_for_event("ship")
    return done
