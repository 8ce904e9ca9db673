"""An agent-style loop: plan, call tools until the plan is done, then wait for a human
to approve before acting. The "model" here is a deterministic stand-in."""

import replayflow as rf

TOOLS = {
    "search_flights": lambda q: {
        "flights": [{"id": "LH123", "price": 420}, {"id": "AF9", "price": 380}]
    },
    "check_budget": lambda q: {"budget": 500},
}


@rf.step(retry=rf.Retry(limit=5, delay="100ms", backoff="exponential"))
def think(goal: str, observations: list[dict]) -> dict:
    """One model turn: the next tool to call, or the final answer."""
    done = {obs["tool"] for obs in observations}
    for tool in ("search_flights", "check_budget"):
        if tool not in done:
            return {"action": "call", "tool": tool, "query": goal}
    flights = next(o["result"]["flights"] for o in observations if o["tool"] == "search_flights")
    cheapest = min(flights, key=lambda f: f["price"])
    return {"action": "answer", "proposal": cheapest}


@rf.step(timeout="30s")
def call_tool(tool: str, query: str) -> dict:
    return TOOLS[tool](query)


@rf.step
def book(flight: dict) -> dict:
    return {"booked": flight["id"], "confirmation": f"CONF-{flight['id']}"}


@rf.workflow(name="travel-agent", version="1", timeout="30d")
async def travel_agent(ctx: rf.Context, request: dict) -> dict:
    observations: list[dict] = []
    turns = 0
    while turns < 10:  # a model that never answers still stops
        turns += 1
        decision = await ctx.step("think", think, request["goal"], observations)
        if decision["action"] == "answer":
            break
        result = await ctx.step(
            f"tool-{decision['tool']}", call_tool, decision["tool"], decision["query"]
        )
        observations.append({"tool": decision["tool"], "result": result})
    proposal = decision["proposal"]
    try:
        approval = await ctx.wait_for_event("approval", timeout="7d")
    except rf.EventTimeout:
        return {"status": "expired", "proposal": proposal}
    if not approval.get("approved"):
        return {"status": "rejected", "proposal": proposal}
    booking = await ctx.step("book", book, proposal)
    return {"status": "booked", "turns": turns, **booking}
