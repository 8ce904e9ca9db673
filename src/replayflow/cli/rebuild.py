"""`replayflow rebuild`: orchestrator state re-folded from the history topic into a new
data folder (and, on request, a new state changelog), compared with the live state on
request. The operator's procedures are in docs/replay.md."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from replayflow.cli.replay import Code, parse_since
from replayflow.cli.run import _limits
from replayflow.cli.support import modules_option, one_line_errors, settings
from replayflow.processors.rebuild import PartitionReport
from replayflow.processors.rebuild_compare import Difference, compare
from replayflow.processors.rebuild_kafka import (
    KafkaHistory,
    partition_count,
    read_state,
    topic_records,
    write_changelog,
)
from replayflow.processors.rebuild_run import RebuildPlan, RebuildResult, rebuild
from replayflow.settings import Settings
from replayflow.topics import STATE, Topics, apply_topics, load_topics


def _data_dir(config: Settings, data: Path | None, orchestrator_id: str | None) -> Path:
    base = data or config.data_dir / f"rebuild-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    if orchestrator_id is not None:
        # The orchestrator's own layout: `replayflow orchestrator --data DIR --id ID`
        # runs on the rebuilt stores as they are.
        base = base / (config.namespace or "default") / orchestrator_id
    if base.exists() and any(base.iterdir()):
        raise click.ClickException(f"{base} is not empty: a rebuild writes a new data folder")
    return base


def _changelog_topic(config: Settings, name: str | None) -> str:
    """The topic to write the rebuilt state to: the namespace's state topic (created
    again if it was lost) or another one, created like it if missing; either empty."""
    spec = load_topics(config)[STATE]
    target = name or spec.name
    # Created as topics.yaml declares the state topic when missing (compacted).
    report = apply_topics(config.bootstrap, {STATE: replace(spec, name=target)})
    if not report.ok:
        reasons = "; ".join(r for result in report.results for r in result.reasons)
        raise click.ClickException(
            f"{target} differs from the state topic's declaration (topics.yaml, "
            f"REPLAYFLOW_PARTITIONS): {reasons}"
        )
    held = topic_records(config, target)
    if held:
        raise click.ClickException(
            f"{target} holds {held} records: a rebuilt state goes to an empty topic (delete "
            "and create the state topic again first, see docs/replay.md, or give "
            "--changelog-topic NAME)"
        )
    return target


@click.command("rebuild")
@modules_option
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="WORKFLOW=N",
    help="The orchestrators' concurrency limits (as given to `replayflow orchestrator`).",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="New folder for the rebuilt stores [default: <REPLAYFLOW_DATA>/rebuild-<time>].",
)
@click.option(
    "--orchestrator-id",
    default=None,
    help="Lay the stores out for `replayflow orchestrator --data DIR --id ID`.",
)
@click.option("--since", default=None, help="Read history from this time on (ISO or 7d).")
@click.option("--until", default=None, help="State as of this time (ISO or 7d ago).")
@click.option("--history-topic", default=None, help="Read this history topic (a copy).")
@click.option("--compare", "compare_live", is_flag=True, help="Compare with the live state.")
@click.option(
    "--write-changelog",
    "write_changelog_",
    is_flag=True,
    help="Write the rebuilt state to an empty state topic.",
)
@click.option("--changelog-topic", default=None, help="With --write-changelog: this topic.")
@click.option("--workers", type=int, default=None, help="Processes (default: one per core).")
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
@one_line_errors
def rebuild_command(
    modules: tuple[str, ...],
    limits: tuple[str, ...],
    data_dir: Path | None,
    orchestrator_id: str | None,
    since: str | None,
    until: str | None,
    history_topic: str | None,
    compare_live: bool,
    write_changelog_: bool,
    changelog_topic: str | None,
    workers: int | None,
    as_json: bool,
) -> None:
    """Re-fold the history topic into fresh orchestrator state. Give the modules and
    --limit options the orchestrators run with. Exit 1 if an instance could not be
    rebuilt as recorded, or (--compare) differs from the live state."""
    config = settings()
    topic = history_topic or Topics(config).history
    count = partition_count(config, topic)
    folder = _data_dir(config, data_dir, orchestrator_id)
    target = _changelog_topic(config, changelog_topic) if write_changelog_ else None
    code = Code.deployed(modules, config)
    code()  # fail here, once, if the modules do not load
    plan = RebuildPlan(
        partitions=tuple(range(count)),
        partition_count=count,
        data_dir=folder,
        concurrency=_limits(limits),
        until=parse_since(until),
        workers=workers or os.cpu_count() or 1,
    )
    watching = sys.stderr.isatty() and not as_json

    def done(report: PartitionReport) -> None:
        if watching:
            click.echo(
                f"partition {report.partition}: {report.facts} facts in {report.seconds:.1f} s",
                err=True,
            )

    result = rebuild(KafkaHistory(config, parse_since(since), topic), code, plan, on_partition=done)
    differences: list[Difference] = []
    if compare_live:
        differences = _compare(config, plan)
    written = 0
    if target is not None:
        written = _write(config, target, plan)
    _report(result, folder, differences, compare_live, target, written, as_json)
    if result.divergences or differences:
        sys.exit(1)


def _compare(config: Settings, plan: RebuildPlan) -> list[Difference]:
    live_topic = Topics(config).state
    found: list[Difference] = []
    for partition in plan.partitions:
        live = read_state(config, live_topic, partition)
        store = plan.open(partition)
        try:
            found += compare(live, store)
        finally:
            store.close()
    return found


def _write(config: Settings, topic: str, plan: RebuildPlan) -> int:
    written = 0
    for partition in plan.partitions:
        store = plan.open(partition)
        try:
            written += write_changelog(config, topic, store)
        finally:
            store.close()
    return written


def _report(
    result: RebuildResult,
    folder: Path,
    differences: list[Difference],
    compared: bool,
    target: str | None,
    written: int,
    as_json: bool,
) -> None:
    rate = result.facts / result.seconds if result.seconds > 0 else 0.0
    if as_json:
        data: dict[str, Any] = {
            "data_dir": str(folder),
            "facts": result.facts,
            "instances": result.instances,
            "folded": result.folded,
            "admissions": result.admissions,
            "seconds": round(result.seconds, 3),
            "facts_per_second": round(rate),
            "partial": result.partial,
            "divergences": [asdict(d) for d in result.divergences],
            "compared": compared,
            "differences": [asdict(d) for d in differences],
            "changelog": {"topic": target, "records": written} if target else None,
        }
        click.echo(json.dumps(data))
        return
    click.echo(
        f"rebuilt {result.facts} facts of {result.instances} instances "
        f"({len(result.partitions)} partitions) in {result.seconds:.1f} s: "
        f"{rate:,.0f} facts/s, into {folder}"
    )
    if result.partial:
        shown = ", ".join(result.partial[:10]) + (" ..." if len(result.partial) > 10 else "")
        click.echo(f"left out, history incomplete ({len(result.partial)}): {shown}")
    for divergence in result.divergences:
        click.echo(f"NOT AS RECORDED  {divergence.instance_id}: {divergence.reason}")
    if compared:
        for difference in differences:
            click.echo(f"DIFFERS  {difference.describe()}")
        if not differences:
            click.echo("identical to the live state")
        else:
            click.echo(f"{len(differences)} entities differ from the live state")
    if target is not None:
        click.echo(f"wrote {written} state records to {target}")
