"""The scale benchmark's figures (benchmarks/scale.py): the queue's drain from the
admission and completion times, the sampled timeline made compact, and what the
measured queue says of a larger one."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Any


def drain_figures(
    admitted: dict[str, int], completed: dict[str, int], t_worker: float, limit: int, q: int
) -> dict[str, Any]:
    """Admissions per second after the worker started (orchestrator timestamps), per
    10-second bucket, and how long instances hold their slots."""
    since = int(t_worker * 1000)
    times = sorted(at for at in admitted.values() if at >= since)
    out: dict[str, Any] = {"admitted_after_worker_start": len(times)}
    if len(times) < 2:
        return out
    first, last = times[0], times[-1]
    out["first_admission_after_worker_start_s"] = round((first - since) / 1000, 2)
    # The steady rate: skip the first 5 s after the first admission (the worker's
    # group join and the backlog of the slots held while it was away).
    steady_from = first + 5000
    steady = [t for t in times if t >= steady_from]
    if len(steady) >= 2 and last > steady_from:
        out["admissions_per_s"] = round(len(steady) / ((last - steady_from) / 1000), 1)
    else:
        out["admissions_per_s"] = round(len(times) / max(1e-9, (last - first) / 1000), 1)
    buckets: Counter[int] = Counter((t - first) // 10_000 for t in times)
    # The last bucket may be short: divide by the seconds it covers.
    span = {b: min(10.0, (last - first - b * 10_000) / 1000) or 1.0 for b in buckets}
    out["admissions_per_s_by_10s"] = [
        round(buckets.get(b, 0) / span.get(b, 10.0), 1) for b in range(max(buckets) + 1)
    ]
    # Per bucket: how long the instances admitted then held their slot, and the slot
    # cycle it implies (limit / rate): the rest is the release -> next grant path.
    held: dict[int, list[int]] = {}
    for iid, at in admitted.items():
        if at >= first and iid in completed:
            held.setdefault((at - first) // 10_000, []).append(completed[iid] - at)
    out["slot_hold_ms_mean_by_10s"] = [
        round(statistics.mean(held[b]), 1) if b in held else None for b in range(max(buckets) + 1)
    ]
    out["slot_idle_ms_by_10s"] = [
        round(1000 * limit / (buckets[b] / span[b]) - statistics.mean(held[b]), 1)
        if b in held and buckets.get(b)
        else None
        for b in range(max(buckets) + 1)
    ]
    holds = sorted(
        (completed[i] - a) for i, a in admitted.items() if a >= steady_from and i in completed
    )
    if holds:
        out["slot_hold_ms_p50"] = holds[len(holds) // 2]
        out["slot_hold_ms_p99"] = holds[min(len(holds) - 1, int(0.99 * len(holds)))]
        out["slot_hold_ms_mean"] = round(statistics.mean(holds), 1)
        # Little's law: with every slot busy, one slot turns over in limit / rate
        # seconds; what is not spent admitted->completed is spent between an
        # instance's end and the next admission (ReleaseSlot -> limiter -> GrantSlot).
        cycle_ms = 1000 * limit / out["admissions_per_s"]
        out["slot_cycle_ms"] = round(cycle_ms, 1)
        out["slot_idle_ms_release_to_next_grant"] = round(cycle_ms - out["slot_hold_ms_mean"], 1)
    remaining = q - len(admitted)
    out["still_queued_at_end"] = max(0, remaining)
    return out


def compact(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The timeline without the per-partition offset lists (kept: the sums and lags)."""
    rows = []
    for row in samples:
        row = dict(row)
        committed, end = row.pop("committed", None), row.pop("end", None)
        if committed is not None and end is not None:
            row["lag"] = [e - c for c, e in zip(committed, end, strict=True)]
            row["committed_total"] = sum(committed)
        rows.append(row)
    return rows


def queued_slope(queued: dict[str, Any]) -> tuple[float, float] | None:
    """RSS MB per queued instance over the last 40 % of the enqueue (past the states
    cache's bound when Q is large), and the RSS at its end."""
    q = queued.get("queued_starts", 0)
    rows = [
        (r["counts"].get("WorkflowQueued", 0), r["orchestrator"]["VmRSS"])
        for r in queued.get("timeline", [])
        if "orchestrator" in r and "VmRSS" in r["orchestrator"]
    ]
    before = [r for r in rows if r[0] <= 0.6 * q]
    after = [r for r in rows if r[0] >= q]
    if not q or not before or not after or after[0][0] <= before[-1][0]:
        return None
    (q0, m0), (q1, m1) = before[-1], after[0]
    return (m1 - m0) / (q1 - q0), m1


def extrapolate(queued: dict[str, Any], target: int) -> dict[str, Any]:
    out: dict[str, Any] = {"target_queued": target}
    q = queued.get("queued_starts", 0)
    slope = queued_slope(queued)
    if slope is not None and target > q:
        per, at_q = slope
        out["rss_kb_per_queued_last_40pct"] = round(per * 1024, 2)
        out["rss_mb_at_target_by_last_slope"] = round(at_q + per * (target - q))
    if queued.get("limiter_enqueue_per_s"):
        out["enqueue_minutes"] = round(target / queued["limiter_enqueue_per_s"] / 60, 1)
    if queued.get("client_start_rate_per_s"):
        out["client_send_minutes"] = round(target / queued["client_start_rate_per_s"] / 60, 1)
    rate = queued.get("drain", {}).get("admissions_per_s")
    if rate:
        # A lower bound: the rate falls as the queue drains (admissions_per_s_by_10s).
        out["drain_hours_at_measured_mean_rate"] = round(target / rate / 3600, 2)
    idle = queued.get("rss_idle", {}).get("rss_mb")
    full = queued.get("rss_all_queued", {}).get("rss_mb")
    if idle and full and q:
        per = (full - idle) / q
        out["rss_kb_per_queued_overall"] = round(per * 1024, 2)
        out["rss_mb_at_target_if_linear_overall"] = round(idle + per * target)
    store = queued.get("store_mb_all_queued")
    if store and q:
        out["store_mb_at_target_if_linear"] = round(store / q * target)
    return out
