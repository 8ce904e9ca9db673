"""`replayflow orchestrator | worker | dev`: the long-running processes."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import click

from replayflow import telemetry
from replayflow.cli.support import (
    CliError,
    load_registry,
    modules_option,
    one_line_errors,
    settings,
)
from replayflow.cli.trigger import TriggerService, declared_specs
from replayflow.core.definitions import Registry
from replayflow.kafka import clients
from replayflow.processors import fatal
from replayflow.processors.orchestrator import Orchestrator
from replayflow.processors.runtime import LocalRuntime
from replayflow.processors.worker import Worker
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics

# -- composition: what the processes get from the DSL, wired to Kafka -----------------


def with_documents(registry: Registry, config: Settings) -> Registry:
    """Deployed DSL documents as a workflow source, followed live from Kafka."""
    from replayflow.dsl.documents import DocumentStore
    from replayflow.processors.documents import KafkaDocumentLog

    registry.add_source(DocumentStore(KafkaDocumentLog(config)).start())
    return registry


def declare_document_schedules(registry: Registry, orchestrator: Orchestrator) -> None:
    """Give deployed documents their schedules (`schedule.cron/every/after`): the ones
    deployed now at once, and each newly deployed version as it arrives."""
    from replayflow.dsl.documents import DocumentStore
    from replayflow.dsl.schedule import declarations

    for source in registry.sources:
        if isinstance(source, DocumentStore):
            orchestrator.declare(declarations(source.documents()))

            def declare(name: str, store: DocumentStore = source) -> None:
                orchestrator.declare(declarations(store.documents(), only=name))

            source.on_change(declare)


def with_dsl_steps(registry: Registry, config: Settings) -> Registry:
    """The DSL's built-in steps (a step of the same name in `registry` wins), emitting
    to Kafka."""
    from replayflow.dsl import builtins as dsl_builtins
    from replayflow.processors.emitter import KafkaEmitter

    dsl_builtins.register(registry, KafkaEmitter(config))
    return registry


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Every request of httpx (the API's health polls) is an INFO line: not worth one.
    logging.getLogger("httpx").setLevel(logging.DEBUG if verbose else logging.WARNING)
    telemetry.configure_logging()  # REPLAYFLOW_LOG_FORMAT=json: JSON lines
    # A fenced client (another process took this one's id) ends the process.
    fatal.exit_on_fatal()


def _wait_for_kafka(config: Settings, who: str) -> None:
    """Long-running processes may start before the broker: they wait, saying so once
    per interval, instead of failing."""
    stop = threading.Event()
    _stop_on_signals(stop)
    if not clients.wait_until_reachable(config, who, logging.getLogger("replayflow"), stop):
        raise click.exceptions.Exit(130)


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def _stop_when_signalled(process: Orchestrator | Worker) -> None:
    """SIGINT/SIGTERM stop the process's loop, which then closes cleanly."""
    stop = threading.Event()
    _stop_on_signals(stop)

    def wait_then_stop() -> None:
        stop.wait()
        process.stop()

    threading.Thread(target=wait_then_stop, daemon=True).start()


@click.command()
@modules_option
@click.option(
    "--id",
    "instance_id",
    default=None,
    help="Stable id of this process: its transactional id and group member id.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the RocksDB partition stores [env REPLAYFLOW_DATA].",
)
@click.option(
    "--limit",
    "limits",
    multiple=True,
    metavar="WORKFLOW=N",
    help="Concurrency limit for a workflow, over the one in its code.",
)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def orchestrator(
    modules: tuple[str, ...],
    instance_id: str | None,
    data_dir: Path | None,
    limits: tuple[str, ...],
    verbose: bool,
) -> None:
    """Fold commands into workflow state, exactly once."""
    _logging(verbose)
    config = settings()
    _wait_for_kafka(config, "orchestrator")
    registry = with_documents(load_registry(modules), config)
    process = Orchestrator(
        config,
        registry,
        instance_id=instance_id,
        data_dir=data_dir,
        concurrency=_limits(limits),
    )
    declare_document_schedules(registry, process)
    _stop_when_signalled(process)
    process.run()


@click.command()
@modules_option
@click.option(
    "--concurrency", default=500, show_default=True, help="Step attempts running at once."
)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def worker(modules: tuple[str, ...], concurrency: int, verbose: bool) -> None:
    """Run step attempts from the tasks topic."""
    _logging(verbose)
    config = settings()
    _wait_for_kafka(config, "worker")
    process = Worker(
        config, with_dsl_steps(load_registry(modules), config), concurrency=concurrency
    )
    _stop_when_signalled(process)
    process.run()


@click.command()
@modules_option
@click.option(
    "--no-kafka",
    is_flag=True,
    help="Do not start the local broker (use KAFKA_BOOTSTRAP's cluster).",
)
@click.option(
    "--api-port",
    default=8080,
    show_default=True,
    help="Port of the HTTP API and web UI (0: do not serve them).",
)
@click.option(
    "--triggers",
    "trigger_files",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A triggers file to run as well (repeatable); code and DSL triggers always run.",
)
@click.option("-v", "--verbose", is_flag=True)
@one_line_errors
def dev(
    modules: tuple[str, ...],
    no_kafka: bool,
    api_port: int,
    trigger_files: tuple[Path, ...],
    verbose: bool,
) -> None:
    """Local Kafka, topics, an orchestrator, a worker and the Kafka topic triggers in
    one command; Ctrl-C stops everything it started."""
    _logging(verbose)
    script = Path("compose/kafka/kafka.sh")
    started_kafka = False
    if not no_kafka:
        if not script.exists():
            raise click.ClickException(
                "compose/kafka/kafka.sh not found: run from a "
                "replayflow checkout, or set KAFKA_BOOTSTRAP and "
                "pass --no-kafka"
            )
        status = subprocess.run(["bash", str(script), "status"], capture_output=True)
        click.echo("starting the local Kafka broker ...")
        subprocess.run(["bash", str(script), "up"], check=True)
        started_kafka = status.returncode != 0
    try:
        config: Settings = settings()
        _wait_for_kafka(config, "dev")
        report = apply_topics(config.bootstrap, load_topics(config))
        click.echo(f"topics: {report.summary()}")
        if not report.ok:
            raise click.ClickException(
                "topics differ from topics/topics.yaml: run `replayflow topics apply` for details"
            )
        registry = with_dsl_steps(with_documents(load_registry(modules), config), config)
        stop = threading.Event()
        _stop_on_signals(stop)
        triggers = TriggerService(
            config, declared_specs(registry, trigger_files), f"dev-{socket.gethostname()}"
        )
        runtime = LocalRuntime(config, registry)
        declare_document_schedules(registry, runtime.orchestrator)
        with runtime, triggers, _api_server(config, api_port):
            names = ", ".join(sorted(registry.workflows)) or "none"
            click.echo(f"replayflow is running (workflows: {names}); Ctrl-C stops it")
            while not stop.wait(1.0):
                if runtime.errors:
                    raise CliError(f"stopping: {runtime.errors[0]}")
        click.echo("stopped")
    finally:
        if started_kafka:
            subprocess.run(["bash", str(script), "down"], check=False)


@contextlib.contextmanager
def _api_server(config: Settings, port: int) -> Iterator[None]:
    """The HTTP API and web UI in a child process (`replayflow serve`), when port > 0."""
    if port <= 0:
        yield
        return
    from replayflow.api.process import ApiServer

    server = ApiServer(config, port, data_dir=config.data_dir.resolve() / "api-dev")
    server.start()
    try:
        server.wait_ready(90)
        click.echo(f"API: {server.url}  UI: {server.url}/ui/  (log {server.log_path})")
    except (RuntimeError, TimeoutError) as exc:
        click.echo(f"the API did not start ({exc}); workflows run without it", err=True)
    try:
        yield
    finally:
        server.stop()


@click.command()
@click.option(
    "--file",
    "path",
    envvar="REPLAYFLOW_HEALTH_FILE",
    required=True,
    type=click.Path(),
    help="The heartbeat file the process writes [env REPLAYFLOW_HEALTH_FILE].",
)
@click.option("--max-age", default=30.0, show_default=True, help="Seconds a heartbeat stays fresh.")
def health(path: str, max_age: float) -> None:
    """Exit 0 if the orchestrator or worker writing the heartbeat file is alive (its loop
    wrote within --max-age seconds), 1 if not: a container health check."""
    from replayflow.processors.heartbeat import check

    healthy, said = check(path, max_age)
    click.echo(said)
    if not healthy:
        raise click.exceptions.Exit(1)


def _limits(values: tuple[str, ...]) -> dict[str, int]:
    limits = {}
    for value in values:
        name, _, number = value.partition("=")
        if not number.isdigit() or int(number) < 1:
            raise click.ClickException(f"--limit takes WORKFLOW=N with N >= 1, got {value!r}")
        limits[name] = int(number)
    return limits
