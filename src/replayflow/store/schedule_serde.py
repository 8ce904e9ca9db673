"""A schedule's state as two compact JSON records (the store is private to the
orchestrator; see serde.py for why JSON): its definition (spec, action, policies),
written when it changes, and the rest, written by every decision. A fire rewrites only
the small one, and a definition shared by many schedules is parsed once (its checks
run once per distinct definition, not once per read)."""

from __future__ import annotations

import json
from functools import lru_cache
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
from replayflow.core.schedule_spec import ScheduleSpec
from replayflow.core.schedule_state import (
    ScheduleAction,
    SchedulePolicies,
    ScheduleState,
    StartedSlots,
)

Definition = tuple[ScheduleSpec, ScheduleAction, SchedulePolicies]


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def dump_definition(state: ScheduleState) -> bytes:
    return _dumps(
        {
            "spec": spec_dict(state.spec),
            "action": action_dict(state.action),
            "policies": policies_dict(state.policies),
        }
    )


@lru_cache(maxsize=4096)
def load_definition(raw: bytes) -> Definition:
    d = json.loads(raw)
    return spec_from(d["spec"]), action_from(d["action"]), policies_from(d["policies"])


def dump_schedule(state: ScheduleState) -> bytes:
    """Everything but the definition."""
    return _dumps(
        {
            "id": state.schedule_id,
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
    )


def load_schedule(definition: bytes, raw: bytes) -> ScheduleState:
    spec, action, policies = load_definition(definition)
    d = json.loads(raw)
    return ScheduleState(
        schedule_id=d["id"],
        spec=spec,
        action=action,
        policies=policies,
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
