"""A three-step pipeline: extract, transform, load."""

import replayflow as rf


@rf.step(retry=rf.Retry(limit=3, delay="200ms"))
def extract(source: str) -> list[dict]:
    return [{"id": i, "amount": i * 10, "source": source} for i in range(1, 6)]


@rf.step
def transform(rows: list[dict]) -> list[dict]:
    return [{**row, "amount_eur": round(row["amount"] * 0.92, 2)} for row in rows]


@rf.step
async def load(rows: list[dict]) -> dict:
    return {"loaded": len(rows), "total_eur": round(sum(r["amount_eur"] for r in rows), 2)}


@rf.workflow(name="pipeline", version="1")
async def pipeline(ctx: rf.Context, params: dict) -> dict:
    rows = await ctx.step("extract", extract, params["source"])
    rows = await ctx.step("transform", transform, rows)
    return await ctx.step("load", load, rows)
