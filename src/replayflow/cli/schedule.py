"""`replayflow schedule create | update | describe | list | pause | unpause | trigger |
backfill | delete`.

Commands go to Kafka (the client's schedule operations); describe and list ask the
HTTP API's read model at REPLAYFLOW_API (as `replayflow status` and `list` do).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import click

from replayflow.cli.api import _get
from replayflow.cli.show import when
from replayflow.cli.support import one_line_errors, parse_json, settings
from replayflow.client import Client
from replayflow.core.errors import ValidationError
from replayflow.core.schedule_declaration import Schedule
from replayflow.core.schedule_state import Overlap

F = TypeVar("F", bound=Callable[..., Any])
OVERLAPS = click.Choice([o.value for o in Overlap])


def _moment(text: str) -> int:
    """ISO 8601 (UTC when it names no zone) or epoch milliseconds."""
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither ISO 8601 nor epoch ms") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000)


def _spec_options(func: F) -> F:
    options = [
        click.option("--cron", multiple=True, help="Cron expression (repeatable)."),
        click.option("--every", default=None, help="Interval, e.g. 15m, 1h, PT30S."),
        click.option("--offset", default=None, help="Phase of the interval, e.g. 2m."),
        click.option("--after", default=None, help="Instead: rerun this long after each run."),
        click.option("--tz", default=None, help="IANA time zone of cron (default UTC)."),
        click.option("--start", default=None, help="No slot before (ISO 8601 or epoch ms)."),
        click.option("--end", default=None, help="No slot after (ISO 8601 or epoch ms)."),
        click.option("--jitter", default=None, help="Start runs up to this late, e.g. 30s."),
        click.option("--input", "input_json", default=None, help="Workflow input: JSON or @file."),
        click.option("--version", default=None, help="Workflow version (default: newest)."),
        click.option("--overlap", type=OVERLAPS, default=None, help="Default: skip."),
        click.option("--catchup-window", default=None, help="Default: 5m."),
        click.option("--pause-on-failure", is_flag=True, default=None),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _schedule(options: dict[str, Any], **extra: Any) -> Schedule:
    given = {
        "cron": tuple(options["cron"]),
        "every": options["every"],
        "offset": options["offset"],
        "after": options["after"],
        "tz": options["tz"],
        "start": None if options["start"] is None else _moment(options["start"]),
        "end": None if options["end"] is None else _moment(options["end"]),
        "jitter": options["jitter"],
        "input": parse_json(options["input_json"], "--input"),
        "version": options["version"],
        "overlap": options["overlap"],
        "catchup_window": options["catchup_window"],
        "pause_on_failure": options["pause_on_failure"],
        **extra,
    }
    try:
        return Schedule(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        raise click.ClickException(str(exc)) from None


@click.group("schedule")
def schedule() -> None:
    """Schedules: start a workflow on cron expressions or intervals, exactly once per
    slot (its run is the instance <schedule id>-<slot time>)."""


@schedule.command()
@click.argument("schedule_id")
@click.argument("workflow")
@_spec_options
@click.option("--paused", is_flag=True, help="Create it paused.")
@click.option("--note", default="", help="A note kept with the schedule.")
@click.option("--upsert", is_flag=True, help="Update it when it exists.")
@one_line_errors
def create(
    schedule_id: str, workflow: str, paused: bool, note: str, upsert: bool, **options: Any
) -> None:
    """Create SCHEDULE_ID, starting WORKFLOW."""
    definition = _schedule(options, paused=paused, note=note)
    with Client(settings(), watch_completions=False) as client:
        client.schedules.create(schedule_id, workflow, definition, upsert=upsert)
    click.echo(schedule_id)


@schedule.command()
@click.argument("schedule_id")
@_spec_options
@click.option("--workflow", default=None, help="Also replace what runs (with input, version).")
@one_line_errors
def update(schedule_id: str, workflow: str | None, **options: Any) -> None:
    """Replace the spec and policies of SCHEDULE_ID, from its next slot."""
    definition = _schedule(options)
    with Client(settings(), watch_completions=False) as client:
        client.schedules.update(schedule_id, definition, workflow=workflow)


@schedule.command()
@click.argument("schedule_id")
@click.option("--note", default="", help="Why.")
@one_line_errors
def pause(schedule_id: str, note: str) -> None:
    """Pause SCHEDULE_ID: slots that fall in the pause do not run."""
    with Client(settings(), watch_completions=False) as client:
        client.schedules.pause(schedule_id, note=note)


@schedule.command()
@click.argument("schedule_id")
@click.option("--note", default="", help="A note kept with the schedule.")
@one_line_errors
def unpause(schedule_id: str, note: str) -> None:
    """Unpause SCHEDULE_ID: it fires again from its next slot."""
    with Client(settings(), watch_completions=False) as client:
        client.schedules.unpause(schedule_id, note=note)


@schedule.command()
@click.argument("schedule_id")
@click.option("--overlap", type=OVERLAPS, default=None, help="For this run only.")
@one_line_errors
def trigger(schedule_id: str, overlap: str | None) -> None:
    """Start a run of SCHEDULE_ID now (also while paused); prints its instance id."""
    with Client(settings(), watch_completions=False) as client:
        click.echo(client.schedules.trigger(schedule_id, overlap=overlap))


@schedule.command()
@click.argument("schedule_id")
@click.argument("start")
@click.argument("end")
@click.option("--overlap", type=OVERLAPS, default=None, help="For these runs only.")
@one_line_errors
def backfill(schedule_id: str, start: str, end: str, overlap: str | None) -> None:
    """Run the slots of SCHEDULE_ID in [START, END) that have not run (ISO 8601, UTC
    unless it names a zone, or epoch ms)."""
    with Client(settings(), watch_completions=False) as client:
        client.schedules.backfill(schedule_id, _moment(start), _moment(end), overlap=overlap)


@schedule.command()
@click.argument("schedule_id")
@one_line_errors
def delete(schedule_id: str) -> None:
    """Delete SCHEDULE_ID; the runs it started go on."""
    with Client(settings(), watch_completions=False) as client:
        client.schedules.delete(schedule_id)


@schedule.command()
@click.argument("schedule_id")
@click.option("--next", "count", default=5, show_default=True, help="Next fire times to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")
@one_line_errors
def describe(schedule_id: str, count: int, as_json: bool) -> None:
    """SCHEDULE_ID: spec, policies, next fire times, recent runs (from the API)."""
    found = _get("/v1/schedules/" + quote(schedule_id, safe=""), {"next": count})
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    spec, action, policies = found["spec"], found["action"], found["policies"]
    state = "PAUSED" if found["paused"] else "ACTIVE"
    click.echo(f"{found['id']}  {state}  starts {action['workflow']}")
    if found["note"]:
        click.echo(f"  note     {found['note']}")
    click.echo(f"  spec     {_spec_text(spec)}")
    click.echo(
        f"  policies overlap {policies['overlap']}, catch-up "
        f"{policies['catchup_window_ms'] // 1000}s"
        + (", pause on failure" if policies["pause_on_failure"] else "")
    )
    for at in found["next_fire_times"]:
        click.echo(f"  next     {when(at, relative=True)}")
    for run in found["recent_runs"]:
        click.echo(f"  run      {run['instance_id']:<48} {run['kind']:<9} {run['status']}")


@schedule.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per schedule.")
@one_line_errors
def list_(as_json: bool) -> None:
    """Every schedule, with its next fire time and last run (from the API)."""
    after = None
    rows = []
    while True:
        page = _get("/v1/schedules", {"after": after} if after else None)
        rows += page["items"]
        after = page["next_after"]
        if after is None:
            break
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    click.echo(f"{'ID':<32} {'WORKFLOW':<20} {'STATE':<7} {'NEXT (UTC)':<19}  LAST RUN")
    for row in rows:
        nxt = row["next_fire_times"][0] if row["next_fire_times"] else None
        last = row["recent_runs"][-1] if row["recent_runs"] else None
        state = "paused" if row["paused"] else "active"
        click.echo(
            f"{row['id']:<32} {row['action']['workflow']:<20} {state:<7} {when(nxt):<23}  "
            + (f"{last['status']} {when(last['started_at'])}" if last else "-")
        )


def _spec_text(spec: dict[str, Any]) -> str:
    parts = [f"cron '{c}'" for c in spec["cron"]]
    parts += [
        f"every {i['every_ms'] // 1000}s"
        + (f" +{i['offset_ms'] // 1000}s" if i["offset_ms"] else "")
        for i in spec["intervals"]
    ]
    if spec["rerun_after_ms"] is not None:
        parts.append(f"rerun {spec['rerun_after_ms'] // 1000}s after each run")
    return ", ".join(parts) + f" ({spec['timezone']})"
