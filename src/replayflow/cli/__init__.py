"""The `replayflow` command line.

This module only builds the top-level group; each command group lives in its own
module of this package (`replayflow.cli.topics`, ...) and is registered in `_register()`.
"""

from __future__ import annotations

import sys
from typing import Any

import click

HELP = """replayflow: durable workflows for Python, event-sourced on Apache Kafka.

Workflows are deterministic folds over a log. Every input is a command on a
partitioned Kafka topic; the orchestrator folds it into per-instance state, decides
the next step, and appends the accepted fact to a history topic, so the log gives
queueing, replay and audit. Write workflows as Python code or as Serverless Workflow
YAML, and start them from Python, this CLI, HTTP, or a schedule.

Kafka is found through KAFKA_BOOTSTRAP (default 127.0.0.1:9092); REPLAYFLOW_NAMESPACE
prefixes every topic name, for isolated topic sets on one cluster. A command that
cannot reach Kafka within REPLAYFLOW_CONNECT_TIMEOUT seconds (default 5) says so in
one line and exits 2; other failures exit 1.
"""


class _Main(click.Group):
    """The top-level group: errors print as one line, red when stderr is a terminal,
    whichever command raised them (click's own "Error: ..." is never coloured)."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        run: Any = super().main  # typed by overloads on standalone_mode's literal
        if not standalone_mode:
            return run(*args, standalone_mode=False, **kwargs)
        from replayflow.cli.support import show_error

        try:
            result = run(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            show_error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_Main, help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="replayflow", prog_name="replayflow")
def main() -> None:
    pass


def _register() -> None:
    from replayflow.cli import dlq, dsl, instances, run
    from replayflow.cli.topics import topics
    from replayflow.cli.trigger import trigger

    main.add_command(topics)
    for command in (
        run.dev,
        run.orchestrator,
        run.worker,
        trigger,
        run.health,
        instances.start,
        instances.result,
        instances.send_event,
        instances.cancel,
        instances.terminate,
        instances.pause,
        instances.resume,
        instances.restart,
        instances.history,
        dlq.dlq,
        dsl.validate,
        dsl.deploy,
    ):
        main.add_command(command)
    from replayflow.cli.api import COMMANDS as api_commands  # serve, status, list
    from replayflow.cli.stream import stream

    main.add_command(stream)

    for command in api_commands:
        main.add_command(command)
    from replayflow.cli import rebuild, replay, upgrade  # replay, rebuild, upgrade

    main.add_command(replay.replay)
    main.add_command(rebuild.rebuild_command)
    main.add_command(upgrade.upgrade)
    from replayflow.cli.schedule import schedule

    main.add_command(schedule)


_register()
