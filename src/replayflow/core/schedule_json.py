"""A schedule's parts as plain JSON-able dicts and back: for the store's state records,
the HTTP API, the CLI and the client. The wire form is Avro (schemas/); these dicts
use the same field names, so one spelling serves everywhere."""

from __future__ import annotations

from typing import Any

from replayflow.core.errors import ValidationError
from replayflow.core.schedule_spec import Interval, ScheduleSpec
from replayflow.core.schedule_state import (
    FireKind,
    Overlap,
    RunRecord,
    ScheduleAction,
    SchedulePolicies,
)


def spec_dict(spec: ScheduleSpec) -> dict[str, Any]:
    return {
        "cron": list(spec.cron),
        "intervals": [{"every_ms": i.every_ms, "offset_ms": i.offset_ms} for i in spec.intervals],
        "timezone": spec.timezone,
        "start_ms": spec.start_ms,
        "end_ms": spec.end_ms,
        "jitter_ms": spec.jitter_ms,
        "rerun_after_ms": spec.rerun_after_ms,
    }


def spec_from(data: dict[str, Any]) -> ScheduleSpec:
    """A spec from its dict; ValidationError (with the reason) when it is not one."""
    try:
        return ScheduleSpec(
            cron=tuple(data.get("cron") or ()),
            intervals=tuple(
                Interval(every_ms=i["every_ms"], offset_ms=i.get("offset_ms", 0))
                for i in data.get("intervals") or ()
            ),
            timezone=data.get("timezone") or "UTC",
            start_ms=data.get("start_ms"),
            end_ms=data.get("end_ms"),
            jitter_ms=data.get("jitter_ms") or 0,
            rerun_after_ms=data.get("rerun_after_ms"),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValidationError(f"not a schedule spec: {exc}") from exc


def action_dict(action: ScheduleAction) -> dict[str, Any]:
    return {"workflow": action.workflow, "input": action.input, "version": action.version}


def action_from(data: dict[str, Any]) -> ScheduleAction:
    try:
        return ScheduleAction(
            workflow=data["workflow"],
            input=data.get("input", "null"),
            version=data.get("version"),
        )
    except (KeyError, TypeError) as exc:
        raise ValidationError(f"not a schedule action: {exc}") from exc


def policies_dict(policies: SchedulePolicies) -> dict[str, Any]:
    return {
        "overlap": policies.overlap.value,
        "catchup_window_ms": policies.catchup_window_ms,
        "pause_on_failure": policies.pause_on_failure,
    }


def policies_from(data: dict[str, Any]) -> SchedulePolicies:
    defaults = SchedulePolicies()
    return SchedulePolicies(
        overlap=overlap_from(data.get("overlap") or defaults.overlap.value),
        catchup_window_ms=data.get("catchup_window_ms", defaults.catchup_window_ms),
        pause_on_failure=bool(data.get("pause_on_failure", defaults.pause_on_failure)),
    )


def overlap_from(value: object) -> Overlap:
    try:
        return Overlap(str(value))
    except ValueError:
        known = ", ".join(o.value for o in Overlap)
        raise ValidationError(f"unknown overlap policy {value!r} (known: {known})") from None


def run_dict(run: RunRecord) -> dict[str, Any]:
    return {
        "slot_ms": run.slot_ms,
        "instance_id": run.instance_id,
        "kind": run.kind.value,
        "started_at": run.started_at,
        "status": run.status,
        "ended_at": run.ended_at,
    }


def run_from(data: dict[str, Any]) -> RunRecord:
    return RunRecord(
        slot_ms=data["slot_ms"],
        instance_id=data["instance_id"],
        kind=FireKind(data["kind"]),
        started_at=data["started_at"],
        status=data["status"],
        ended_at=data["ended_at"],
    )
