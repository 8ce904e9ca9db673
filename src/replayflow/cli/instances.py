"""`replayflow start | result | send-event | cancel | terminate | history | dlq`."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

import click

from replayflow import codec
from replayflow.cli.support import one_line_errors, parse_json, settings
from replayflow.client import Client
from replayflow.core import history_files
from replayflow.core.errors import WorkflowError
from replayflow.core.messages import DeadLetter, HistoryEvent
from replayflow.kafka import clients
from replayflow.kafka.admin import topic_partitions
from replayflow.kafka.reading import read_to_end
from replayflow.topics import Topics


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
    """Start WORKFLOW with INPUT (JSON text, or @file)."""
    with Client(settings()) as client:
        handle = client.start(
            workflow, parse_json(input_json, "INPUT"), id=instance_id, version=version
        )
        click.echo(handle.id)
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
    """Send event NAME with PAYLOAD (JSON text, or @file) to an instance."""
    with Client(settings()) as client:
        client.send_event(instance_id, name, parse_json(payload_json, "PAYLOAD"))
    click.echo(f"sent {name!r} to {instance_id}")


def _lifecycle(name: str, help_text: str) -> click.Command:
    """A command that sends one lifecycle request (with a reason) to an instance."""

    @click.command(name, help=help_text)
    @click.argument("instance_id")
    @click.option("--reason", default="", help="Recorded in history.")
    @one_line_errors
    def command(instance_id: str, reason: str) -> None:
        with Client(settings()) as client:
            getattr(client, name)(instance_id, reason)
        click.echo(f"{name} sent to {instance_id}")

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
        client.restart(instance_id, from_step, reason)
    click.echo(f"restart sent to {instance_id}")


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


@click.command()
@click.option("--limit", default=50, show_default=True, help="Newest entries to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@one_line_errors
def dlq(limit: int, as_json: bool) -> None:
    """List dead-letter entries with their reasons, newest last."""
    progress("reading the dead-letter topic ...")
    entries = read_dead_letters()
    for entry in entries[-limit:]:
        if as_json:
            fields = _fields(entry)
            fields["key"] = entry.key.decode("utf-8", "replace") if entry.key else None
            fields["value"] = entry.value.hex() if entry.value else None
            click.echo(json.dumps(fields))
        else:
            when = datetime.fromtimestamp(entry.at / 1000, tz=UTC).isoformat(timespec="seconds")
            key = entry.key.decode("utf-8", "replace") if entry.key else "-"
            click.echo(
                f"{when}  {entry.source_topic}[{entry.partition}]@{entry.offset}  "
                f"key={key}  {entry.error_type}: {entry.reason}"
            )
    click.echo(f"{len(entries)} dead-letter entries", err=True)


def read_dead_letters() -> list[DeadLetter]:
    config = settings()
    topic = Topics(config).dlq
    consumer = clients.consumer(config, None)
    try:
        entries: list[DeadLetter] = []
        for messages in read_to_end(consumer, topic, topic_partitions(consumer, topic)):
            for message in messages:
                try:
                    record = codec.decode(message.value() or b"")
                except codec.CodecError:
                    continue
                if isinstance(record, DeadLetter):
                    entries.append(record)
        entries.sort(key=lambda e: e.at)
        return entries
    finally:
        consumer.close()


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
        text = str(value)
        if len(text) > 60:
            text = text[:57] + "..."
        parts.append(f"{name}={text}")
    return "  ".join(parts)
