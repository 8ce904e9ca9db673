"""An order before the fraud check existed."""

import replayflow as rf


@rf.step(name="fr_charge")
def charge(order: str) -> str:
    return f"charged {order}"


@rf.workflow(name="fr-order")
async def order(ctx: rf.Context, order_id: str) -> list[str]:
    await ctx.wait_for_event("pay")
    done = [await ctx.step("charge", charge, order_id)]
    await ctx.wait_for_event("ship")
    return done
