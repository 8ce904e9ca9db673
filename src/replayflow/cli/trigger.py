"""`replayflow trigger`: run Kafka topic triggers (docs/triggers.md).

The triggers come from three places, all optional: `@rf.workflow(trigger=...)` in the
modules given with -m, a triggers file (--file), and the deployed DSL documents
(`schedule.on` and `listen` with a topic in their metadata; followed while running,
so a newly deployed version takes effect within seconds).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import click

from replayflow.cli.support import load_registry, modules_option, one_line_errors, settings
from replayflow.core.definitions import Registry
from replayflow.processors.trigger_file import load_triggers
from replayflow.processors.trigger_mapping import compile_trigger, registry_triggers
from replayflow.processors.trigger_runner import TriggerRunner
from replayflow.processors.trigger_source import TriggerSpec
from replayflow.settings import Settings

log = logging.getLogger("replayflow.trigger")

#: Seconds between two looks at the deployed documents for new or changed triggers.
DOCUMENT_POLL = 2.0


def declared_specs(registry: Registry, files: tuple[Path, ...]) -> list[TriggerSpec]:
    """The triggers of code workflows and triggers files, compiled (schemas read)."""
    specs = [compile_trigger(t) for t in registry_triggers(registry)]
    for path in files:
        triggers, base = load_triggers(path)
        specs.extend(compile_trigger(t, base) for t in triggers)
    return specs


def document_specs(config: Settings) -> Callable[[], list[TriggerSpec]]:
    """A function giving the triggers of the DSL documents deployed now (the store
    follows replayflow.workflows from a thread). A document whose triggers cannot run
    is logged and left out; the others run."""
    from replayflow.dsl.documents import DocumentStore
    from replayflow.dsl.triggers import document_triggers
    from replayflow.processors.documents import KafkaDocumentLog

    store = DocumentStore(KafkaDocumentLog(config)).start()
    reported: set[str] = set()

    def current() -> list[TriggerSpec]:
        specs: list[TriggerSpec] = []
        documents = store.documents()
        for name in sorted({record.name for record in documents}):
            try:
                specs.extend(document_triggers([r for r in documents if r.name == name]))
            except ValueError as exc:
                if str(exc) not in reported:
                    reported.add(str(exc))
                    log.error("document %s: its triggers do not run: %s", name, exc)
        return specs

    return current


def default_member_id() -> str:
    return f"trigger-{socket.gethostname()}-{os.getpid()}"


class TriggerService:
    """Declared triggers plus (optionally) the DSL documents', kept running in a
    TriggerRunner; documents are looked at again every DOCUMENT_POLL seconds."""

    def __init__(
        self,
        config: Settings,
        declared: list[TriggerSpec],
        member_id: str,
        documents: bool = True,
        batch_size: int = 2000,
    ) -> None:
        self.runner = TriggerRunner(config, member_id, batch_size=batch_size)
        self.declared = declared
        self._documents = document_specs(config) if documents else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def specs(self) -> list[TriggerSpec]:
        found = list(self.declared)
        if self._documents is not None:
            found.extend(self._documents())
        return found

    def start(self) -> TriggerService:
        for name in self.runner.reconcile(self.specs()):
            click.echo(f"trigger {name} started")
        if self._documents is not None:
            self._thread = threading.Thread(
                target=self._follow, name="replayflow-trigger-documents", daemon=True
            )
            self._thread.start()
        return self

    def _follow(self) -> None:
        while not self._stop.wait(DOCUMENT_POLL):
            try:
                for name in self.runner.reconcile(self.specs()):
                    log.info("trigger %s started (documents changed)", name)
            except Exception:  # keep the running triggers; try again next time
                log.exception("reading the documents' triggers failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.runner.stop()

    def __enter__(self) -> TriggerService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


file_option = click.option(
    "--file",
    "files",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A triggers file (YAML, a 'triggers' list; repeatable).",
)


@click.command()
@modules_option
@file_option
@click.option(
    "--id",
    "member_id",
    default=None,
    help="Stable id of this process: its group member id and transactional ids. Give "
    "each trigger process its own, the same across restarts.",
)
@click.option(
    "--no-documents",
    is_flag=True,
    help="Do not run the triggers of deployed DSL documents.",
)
@click.option("--batch-size", default=2000, show_default=True, help="Most records per transaction.")
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def trigger(
    modules: tuple[str, ...],
    files: tuple[Path, ...],
    member_id: str | None,
    no_documents: bool,
    batch_size: int,
    verbose: bool,
) -> None:
    """Start workflows from (or send events from) records of Kafka topics, exactly once
    per record. Several processes share each trigger's partitions."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    config = settings()
    declared = declared_specs(load_registry(modules), files)
    if not declared and no_documents:
        raise click.ClickException(
            "no triggers: give -m with @rf.workflow(trigger=...), --file, or drop --no-documents"
        )
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service = TriggerService(
        config,
        declared,
        member_id or default_member_id(),
        documents=not no_documents,
        batch_size=batch_size,
    )
    with service:
        click.echo(f"replayflow trigger is running ({len(service.runner.names())} triggers)")
        while not stop.wait(30):
            lag = service.runner.lag()
            if lag:
                log.info("lag: %s", ", ".join(f"{n} {v}" for n, v in sorted(lag.items())))
    click.echo("stopped")
