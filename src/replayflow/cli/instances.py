"""`replayflow start | result | send-event | cancel | terminate | pause | resume | restart |
history`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from replayflow.cli import show
from replayflow.cli.support import one_line_errors, parse_json, settings
from replayflow.client import Client, Handle
from replayflow.core import history_files
from replayflow.core.errors import WorkflowError
from replayflow.core.messages import HistoryEvent
from replayflow.core.replies import Reply


@click.command()
@click.argument("workflow")
@click.argument("input_json", required=False, metavar="[INPUT]")
@click.option("--id", "instance_id", default=None, help="Instance id (idempotent).")
@click.option("--version", default=None, help="Workflow version; default the newest.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
@one_line_errors
def start(
    workflow: str,
    input_json: str | None,
    instance_id: str | None,
    version: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Start WORKFLOW with INPUT (JSON text, or @file). Exits 1 when no orchestrator
    runs WORKFLOW (or the start is refused)."""
    payload = parse_json(input_json, "INPUT")
    with Client(settings()) as client:
        handle = client.start(workflow, payload, id=instance_id, version=version)
        click.echo(handle.id)
        if handle.outcome == "UNCHANGED":
            click.echo(
                f"{handle.id} exists already ({handle.status}): nothing new was started",
                err=True,
            )
        elif handle.outcome is None:
            click.echo(_unanswered(client), err=True)
        if wait:
            _print_result(client, handle.id, timeout)


@click.command()
@click.argument("instance_id")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait.")
@one_line_errors
def result(instance_id: str, timeout: float) -> None:
    """Print an instance's output (waits until it ends)."""
    with Client(settings()) as client:
        _print_result(client, instance_id, timeout)


def _unanswered(client: Client) -> str:
    return (
        f"no orchestrator answered within {client.confirm_timeout:g} s: the command "
        "waits on the log and takes effect when one runs"
    )


def said(client: Client, what: str, instance_id: str, reply: Reply | None) -> str:
    """What became of a command, in one line."""
    if reply is None:
        return f"{what} sent to {instance_id} ({_unanswered(client)})"
    if reply.outcome == "UNCHANGED":
        return f"{what}: nothing to do, {instance_id} is {reply.status}"
    return f"{what} accepted: {instance_id} is {reply.status}"


def progress(message: str) -> None:
    """A line on stderr for a person watching (never in pipes or logs)."""
    if sys.stderr.isatty():
        click.echo(message, err=True)


def _print_result(client: Client, instance_id: str, timeout: float) -> None:
    progress(f"waiting for {instance_id} to end (up to {timeout:g} s) ...")
    try:
        output = client.result(instance_id, timeout)
    except WorkflowError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(output, indent=2))


@click.command("send-event")
@click.argument("instance_id")
@click.argument("name")
@click.argument("payload_json", required=False, metavar="[PAYLOAD]")
@one_line_errors
def send_event(instance_id: str, name: str, payload_json: str | None) -> None:
    """Send event NAME with PAYLOAD (JSON text, or @file) to an instance. Exits 1 when
    there is no such instance."""
    payload = parse_json(payload_json, "PAYLOAD")
    with Client(settings()) as client:
        reply = client.send_event(instance_id, name, payload)
        click.echo(said(client, f"event {name!r}", instance_id, reply))


def _lifecycle(name: str, help_text: str) -> click.Command:
    """A command that sends one lifecycle request (with a reason) to an instance."""

    @click.command(name, help=help_text)
    @click.argument("instance_id")
    @click.option("--reason", default="", help="Recorded in history.")
    @one_line_errors
    def command(instance_id: str, reason: str) -> None:
        with Client(settings()) as client:
            reply = getattr(client, name)(instance_id, reason)
            click.echo(said(client, name, instance_id, reply))

    return command


cancel = _lifecycle("cancel", "Cancel an instance: rf.Cancelled is raised at its current await.")
terminate = _lifecycle("terminate", "Stop an instance at once; no workflow code runs.")
pause = _lifecycle("pause", "Pause an instance: results are recorded, its code waits for resume.")
resume = _lifecycle(
    "resume", "Resume a paused instance, or retry a suspended one after a code fix."
)


@click.command()
@click.argument("instance_id")
@click.option("--from-step", default=None, help="Run again from this step (history name).")
@click.option("--reason", default="", help="Recorded in history.")
@one_line_errors
def restart(instance_id: str, from_step: str | None, reason: str) -> None:
    """Run an instance again from the start or from a step."""
    with Client(settings()) as client:
        handle = client.restart(instance_id, from_step, reason)
        reply = None if handle.outcome is None else _reply_of(handle)
        click.echo(said(client, "restart", instance_id, reply))


def _reply_of(handle: Handle) -> Reply:
    return Reply(
        instance_id=handle.id,
        request_id="",
        command="RestartWorkflow",
        outcome=handle.outcome or "",
        at=0,
        status=handle.status,
    )


@click.command()
@click.argument("instance_id")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="The history as a JSON file (a list, one event a line): replayable by "
    "rf.testing.assert_replays as a regression fixture.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file instead of stdout.",
)
@one_line_errors
def history(instance_id: str, as_json: bool, output: str | None) -> None:
    """Print an instance's history as a table, or export it as JSON."""
    with Client(settings()) as client:
        progress(f"reading the history of {instance_id} ...")
        events = client.history(instance_id)
    if not events:
        raise click.ClickException(f"no history for {instance_id!r}")
    text = history_files.dumps(events) if as_json else "\n".join(history_table(events)) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)
    click.echo(f"wrote {len(events)} events to {output}", err=True)


def history_table(events: list[HistoryEvent]) -> list[str]:
    lines = [f"{'SEQ':>4}  {'TIME (UTC)':<23}  {'EVENT':<18}  DETAIL"]
    for event in events:
        when = datetime.fromtimestamp(event.at / 1000, tz=UTC).isoformat(timespec="milliseconds")[
            :23
        ]
        lines.append(f"{event.seq:>4}  {when:<23}  {type(event).__name__:<18}  {_detail(event)}")
    return lines


def _fields(record: Any) -> dict[str, Any]:
    fields = {}
    for name in record.__dataclass_fields__:
        value = getattr(record, name)
        if hasattr(value, "__dataclass_fields__"):
            value = _fields(value)
        fields[name] = value
    return fields


def _detail(event: HistoryEvent) -> str:
    fields = _fields(event)
    for name in ("instance_id", "seq", "at"):
        fields.pop(name)
    parts = []
    for name, value in fields.items():
        if value is None or value == "":
            continue
        if isinstance(value, dict):
            value = f"{value.get('type')}: {value.get('message')}"
        text = show.field(name, value)
        if len(text) > 60:
            text = text[:57] + "..."
        parts.append(f"{name}={text}")
    return "  ".join(parts)
