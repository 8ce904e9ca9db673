"""`replayflow dlq` (list dead-letter entries) and `replayflow dlq redrive ID`."""

from __future__ import annotations

import json
import socket
import sys

import click

from replayflow.api.dlq import DeadLetterError, DeadLetters
from replayflow.cli import show
from replayflow.cli.support import CliError, kafka_settings, one_line_errors


def _dead_letters() -> DeadLetters:
    return DeadLetters(kafka_settings(), f"cli@{socket.gethostname()}")


@click.group(invoke_without_command=True)
@click.option("--limit", default=50, show_default=True, help="Newest entries to show.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per entry.")
@click.pass_context
@one_line_errors
def dlq(context: click.Context, limit: int, as_json: bool) -> None:
    """Dead-letter entries (input nobody could process) with their reasons, newest last.
    `replayflow dlq redrive ID` sends one back where it came from."""
    if context.invoked_subcommand is not None:
        return
    if sys.stderr.isatty():
        click.echo("reading the dead-letter topic ...", err=True)
    entries = _dead_letters().list(limit)
    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry))
        return
    rows = [
        (
            e["id"],
            show.when(e["at"]),
            e["key"] or "-",
            ("redriven " if e["redriven"] else "") + str(e.get("error_type")),
            e["reason"],
        )
        for e in entries
    ]
    for line in show.table(("ID", "TIME", "KEY", "TYPE", "REASON"), rows, wide=(2, 4)):
        click.echo(line)
    click.echo(f"{len(entries)} dead-letter entries shown", err=True)


@dlq.command()
@click.argument("entry")
@one_line_errors
def redrive(entry: str) -> None:
    """Produce entry ENTRY's original record to its source topic again, once. Refused
    (exit 1, with the reason) when it was redriven already or cannot succeed."""
    try:
        done = _dead_letters().redrive(entry)
    except DeadLetterError as exc:
        raise CliError(str(exc)) from None
    click.echo(f"{entry} redriven to {done['to']} at {show.when(done['at'])}")
