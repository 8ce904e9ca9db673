"""`replayflow stream ID NAME`: print a durable stream of an instance as it is written."""

from __future__ import annotations

import json

import click

from replayflow.cli.support import one_line_errors, settings
from replayflow.client import Client
from replayflow.core.streams import StreamItem


@click.command()
@click.argument("instance_id")
@click.argument("name")
@click.option(
    "--start",
    default="0",
    show_default=True,
    help="Offset to read from (0: the first), or the cursor a reader printed to go on.",
)
@click.option(
    "--settled", is_flag=True, help="Only values of attempts that completed (each once it ended)."
)
@click.option("--no-follow", is_flag=True, help="Stop at what is written now.")
@click.option("--timeout", type=float, default=None, help="Give up after this many idle seconds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item, markers included.")
@one_line_errors
def stream(
    instance_id: str,
    name: str,
    start: str,
    settled: bool,
    no_follow: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Print stream NAME of instance INSTANCE_ID live: values as they are written, a
    note when an attempt's values are void (it failed and runs again), and the end.
    Text values print as they are (tokens join into text); others as JSON lines."""
    with (
        Client(settings(), watch_completions=False) as client,
        client.stream(
            instance_id,
            name,
            start=start,
            settled=settled,
            follow=not no_follow,
            idle_timeout=timeout,
        ) as items,
    ):
        for item in items:
            if as_json:
                click.echo(json.dumps(item.to_json()))
            else:
                _show(item)
        click.echo(err=True, message=f"\n(resume with --start {items.cursor})")


def _show(item: StreamItem) -> None:
    if item.kind == "value":
        if isinstance(item.value, str):
            click.echo(item.value, nl=False)
        else:
            click.echo(json.dumps(item.value))
    elif item.kind == "retracted":
        click.echo(
            f"\n[{item.step} attempt {item.attempt}: {item.reason.lower()}, its values are void]",
            err=True,
        )
    elif item.kind == "closed":
        click.echo("\n[closed]", err=True)
    else:
        click.echo(f"\n[instance ended: {item.reason}]", err=True)
