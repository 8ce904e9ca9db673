"""`replayflow upgrade W --from V1 --to V2 -m MODULE`: move the in-flight instances of
one version to another, each only once its history replayed identically on the new
version's code (processors/upgrade.py)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import click

from replayflow.cli.replay import Code
from replayflow.cli.support import modules_option, one_line_errors, settings
from replayflow.processors.upgrade import KafkaLink, run


@click.command()
@click.argument("workflow")
@click.option("--from", "from_version", required=True, help="The version instances run now.")
@click.option("--to", "to_version", required=True, help="The version to move them to.")
@modules_option
@click.option("--dry-run", is_flag=True, help="Check and report; move nothing.")
@click.option("--workers", type=int, default=None, help="Processes (default: one per core).")
@click.option(
    "--timeout", default=60.0, show_default=True, help="Seconds to wait for each round's outcome."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per instance.")
@one_line_errors
def upgrade(
    workflow: str,
    from_version: str,
    to_version: str,
    modules: tuple[str, ...],
    dry_run: bool,
    workers: int | None,
    timeout: float,
    as_json: bool,
) -> None:
    """Move running, queued and paused instances of WORKFLOW from one version to
    another. Each instance's history is replayed on the new version's code (from -m
    MODULE, or a deployed DSL document); those that replay identically move (a
    recorded fact, exactly once), the others stay, each with its reason."""
    config = settings()
    code = Code.deployed(modules, config)
    registry = code()
    for version in (from_version, to_version):
        if registry.workflow(workflow, version) is None:
            raise click.ClickException(
                f"version {version!r} of workflow {workflow!r} is neither in the modules "
                "given nor a deployed document"
            )
    if sys.stderr.isatty() and not as_json:
        click.echo(f"reading the histories of {workflow} {from_version} ...", err=True)
    link = KafkaLink(config)
    results = run(
        link,
        code,
        workflow,
        from_version,
        to_version,
        dry_run=dry_run,
        workers=workers,
        timeout=timeout,
    )
    for result in results:
        if as_json:
            click.echo(json.dumps(asdict(result)))
        elif result.moved:
            click.echo(f"{result.instance_id}  moved to {to_version} (checked at seq {result.seq})")
        elif result.would_move:
            click.echo(f"{result.instance_id}  would move to {to_version} (replays identically)")
        else:
            click.echo(f"{result.instance_id}  stays on {from_version}: {result.reason}")
    moved = sum(r.moved for r in results)
    would = sum(r.would_move for r in results)
    verb = f"{would} would move" if dry_run else f"{moved} moved"
    click.echo(
        f"{len(results)} instances of {workflow} {from_version} checked: {verb}, "
        f"{len(results) - moved - would} stay",
        err=as_json,
    )
