"""The `replayflow` command line.

This module only builds the top-level group; each command group lives in its own
module (`replayflow.cli_topics`, ...) and is registered in `_register()`.
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
    from replayflow import cli_dsl, cli_instances, cli_run
    from replayflow.cli_topics import topics

    main.add_command(topics)
    for command in (
        cli_run.dev,
        cli_run.orchestrator,
        cli_run.worker,
        cli_instances.start,
        cli_instances.result,
        cli_instances.send_event,
        cli_instances.cancel,
        cli_instances.terminate,
        cli_instances.pause,
        cli_instances.resume,
        cli_instances.restart,
        cli_instances.history,
        cli_instances.replay,
        cli_instances.dlq,
        cli_dsl.validate,
        cli_dsl.deploy,
    ):
        main.add_command(command)
    from replayflow.cli_api import COMMANDS as api_commands  # serve, status, list

    for command in api_commands:
        main.add_command(command)


_register()


if __name__ == "__main__":  # pragma: no cover
    main()
