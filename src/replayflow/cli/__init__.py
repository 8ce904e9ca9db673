"""The `replayflow` command line.

This module only builds the top-level group; each command group lives in its own
module of this package (`replayflow.cli.topics`, ...) and is registered in `_register()`.
"""

from __future__ import annotations

import click

HELP = """replayflow: durable workflows for Python, event-sourced on Apache Kafka.

Workflows are deterministic folds over a log. Every input is a command on a
partitioned Kafka topic; the orchestrator folds it into per-instance state, decides
the next step, and appends the accepted fact to a history topic, so the log gives
queueing, replay and audit. Write workflows as Python code or as Serverless Workflow
YAML, and start them from Python, this CLI, HTTP, or a schedule.

Kafka is found through KAFKA_BOOTSTRAP (default 127.0.0.1:9092); REPLAYFLOW_NAMESPACE
prefixes every topic name, for isolated topic sets on one cluster.
"""


@click.group(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="replayflow", prog_name="replayflow")
def main() -> None:
    pass


def _register() -> None:
    from replayflow.cli import dsl, instances, run
    from replayflow.cli.topics import topics

    main.add_command(topics)
    for command in (
        run.dev,
        run.orchestrator,
        run.worker,
        instances.start,
        instances.result,
        instances.send_event,
        instances.cancel,
        instances.terminate,
        instances.pause,
        instances.resume,
        instances.restart,
        instances.history,
        instances.replay,
        instances.dlq,
        dsl.validate,
        dsl.deploy,
    ):
        main.add_command(command)
    from replayflow.cli.api import COMMANDS as api_commands  # serve, status, list

    for command in api_commands:
        main.add_command(command)
    from replayflow.cli.schedule import schedule

    main.add_command(schedule)


_register()
