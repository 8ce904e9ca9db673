"""A schedule's state record as compact JSON (the store is private to the orchestrator;
see serde.py for why JSON)."""

from __future__ import annotations

import json
from typing import Any

from replayflow.core.schedule_json import (
    action_dict,
    action_from,
    policies_dict,
    policies_from,
    run_dict,
    run_from,
    spec_dict,
    spec_from,
)
from replayflow.core.schedule_state import ScheduleState, StartedSlots


def dump_schedule(state: ScheduleState) -> bytes:
    data: dict[str, Any] = {
        "id": state.schedule_id,
        "spec": spec_dict(state.spec),
        "action": action_dict(state.action),
        "policies": policies_dict(state.policies),
        "t0": state.created_at,
        "seq": state.seq,
        "paused": state.paused,
        "note": state.note,
        "handled": state.handled_through_ms,
        "slot": state.next_slot_ms,
        "fire": state.next_fire_ms,
        "running": list(state.running),
        "stopping": list(state.stopping),
        "buffered": list(state.buffered),
        "recent": [run_dict(r) for r in state.recent],
        "started": [list(r) for r in state.started.ranges],
        "deleted": state.deleted,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def load_schedule(raw: bytes) -> ScheduleState:
    d = json.loads(raw)
    return ScheduleState(
        schedule_id=d["id"],
        spec=spec_from(d["spec"]),
        action=action_from(d["action"]),
        policies=policies_from(d["policies"]),
        created_at=d["t0"],
        seq=d["seq"],
        paused=d["paused"],
        note=d["note"],
        handled_through_ms=d["handled"],
        next_slot_ms=d["slot"],
        next_fire_ms=d["fire"],
        running=tuple(d["running"]),
        stopping=tuple(d["stopping"]),
        buffered=tuple(d["buffered"]),
        recent=tuple(run_from(r) for r in d["recent"]),
        started=StartedSlots(tuple((a, b, bool(dense)) for a, b, dense in d["started"])),
        deleted=d.get("deleted", False),
    )
