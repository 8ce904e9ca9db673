"""`replayflow replay`: re-fold recorded histories through the code given, one instance
or every matching one (`--all`, in parallel processes): the check a team runs in CI
before it deploys new workflow code."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import click

from replayflow import codec
from replayflow.cli.support import load_registry, modules_option, one_line_errors, settings
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.durations import to_ms
from replayflow.core.errors import ValidationError
from replayflow.core.replay import replay as replay_history
from replayflow.core.state import Status
from replayflow.processors.replay_all import (
    Outcome,
    Selection,
    group,
    read_history_topic,
    replay_many,
)
from replayflow.settings import Settings


@dataclass(frozen=True)
class Code:
    """The workflow code to replay on, as worker processes rebuild it: module names and
    the deployed DSL documents (encoded records), not live objects."""

    modules: tuple[str, ...]
    documents: tuple[bytes, ...] = ()

    def __call__(self) -> Registry:
        registry = load_registry(self.modules)
        if self.documents:
            from replayflow.dsl.documents import DocumentStore

            registry.add_source(DocumentStore(_RecordsLog(self.documents)).start())
        return registry

    @classmethod
    def deployed(cls, modules: tuple[str, ...], config: Settings) -> Code:
        """The modules, and every document deployed on the cluster now."""
        from replayflow.dsl.documents import DocumentStore
        from replayflow.processors.documents import KafkaDocumentLog

        store = DocumentStore(KafkaDocumentLog(config)).start()
        try:
            return cls(modules, tuple(codec.encode(r) for r in store.documents()))
        finally:
            store.stop()


class _RecordsLog:
    """A document log of records read earlier (a DocumentStore's DocumentLog)."""

    def __init__(self, records: tuple[bytes, ...]) -> None:
        self._records = records

    def follow(self, apply: Callable[[str, bytes | None], None], timeout: float) -> None:
        for value in self._records:
            record = codec.decode(value)
            apply(f"{record.name}:{record.version}", value)

    def append(self, key: str, value: bytes) -> None:
        raise ValidationError("documents read for a replay cannot be deployed to")

    def close(self) -> None:
        pass


def parse_since(text: str | None, now_ms: int | None = None) -> int | None:
    """An ISO time (UTC unless it says otherwise) or a duration back from now ("7d")."""
    if text is None:
        return None
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now_ms - to_ms(text)
        except ValidationError:
            raise click.BadParameter(
                f"{text!r} is neither an ISO time nor a duration such as 7d", param_hint="--since"
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return round(when.timestamp() * 1000)


STATUS_CHOICE = click.Choice([s.value for s in Status], case_sensitive=False)


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr, only when a person watches it (a terminal)."""
    if not sys.stderr.isatty() or length == 0:
        yield lambda n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def print_outcome(result: Outcome) -> None:
    if result.identical:
        click.echo(f"{result.instance_id}  identical  ({result.events} events)")
        return
    where = f"event #{(result.position or 0) + 1}"
    after = f", after {result.after}" if result.after else ""
    click.echo(f"{result.instance_id}  DIFFERENT  at {where}{after}")
    click.echo(f"    history:  {result.recorded}")
    click.echo(f"    new code: {result.produced}")


@click.command()
@click.argument("instance_id", required=False)
@click.option("--all", "every", is_flag=True, help="Every instance of the history topic.")
@click.option("--workflow", default=None, help="With --all: only this workflow.")
@click.option("--version", default=None, help="With --all: only instances on this version.")
@click.option(
    "--since", default=None, help="With --all: only instances active since (ISO time or 7d)."
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=STATUS_CHOICE,
    help="With --all: only instances with this status (repeatable).",
)
@click.option("--workers", type=int, default=None, help="Processes (default: one per core).")
@click.option("--only-different", is_flag=True, help="Leave identical instances out.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per instance.")
@modules_option
@one_line_errors
def replay(
    instance_id: str | None,
    every: bool,
    workflow: str | None,
    version: str | None,
    since: str | None,
    statuses: tuple[str, ...],
    workers: int | None,
    only_different: bool,
    as_json: bool,
    modules: tuple[str, ...],
) -> None:
    """Re-fold recorded histories through the code in -m MODULE. One instance: prints
    "identical" or the first difference. --all: each matching instance, then a summary;
    exit 1 if any differs."""
    if every == (instance_id is not None):
        raise click.UsageError("give an INSTANCE_ID or --all")
    if not every:
        _replay_one(instance_id or "", modules)
        return
    config = settings()
    selection = Selection(
        workflow=workflow,
        version=version,
        since=parse_since(since),
        statuses=frozenset(Status(s.upper()) for s in statuses),
    )
    code = Code.deployed(modules, config)
    code()  # fail here, once, if the modules do not load
    if sys.stderr.isatty():
        click.echo("reading the history topic ...", err=True)
    found = group(read_history_topic(config), selection)
    started = time.monotonic()
    with progress_bar(len(found.histories), "replaying") as advance:
        results = replay_many(
            found.histories, code, workers=workers, on_done=lambda done: advance(len(done))
        )
    took = time.monotonic() - started
    different = [r for r in results if not r.identical]
    for result in results:
        if only_different and result.identical:
            continue
        if as_json:
            click.echo(json.dumps(asdict(result)))
        else:
            print_outcome(result)
    partial = f", {len(found.partial)} left out (history incomplete)" if found.partial else ""
    click.echo(
        f"{len(results)} instances replayed in {took:.1f} s: "
        f"{len(results) - len(different)} identical, {len(different)} different{partial}",
        err=as_json,
    )
    if different:
        sys.exit(1)


def _replay_one(instance_id: str, modules: tuple[str, ...]) -> None:
    registry = load_registry(modules)
    with Client(settings()) as client:
        if sys.stderr.isatty():
            click.echo(f"reading the history of {instance_id} ...", err=True)
        events = client.history(instance_id)
    if not events:
        raise click.ClickException(f"no history for {instance_id!r}")
    report = replay_history(events, registry)
    if report.identical:
        click.echo(f"identical: {len(events)} events replayed")
        return
    click.echo(f"different: {report.difference}", err=True)
    sys.exit(1)
