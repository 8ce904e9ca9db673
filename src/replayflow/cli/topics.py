"""`replayflow topics ...`: list the declared topics, create missing ones."""

from __future__ import annotations

from typing import Any

import click

from replayflow.cli.support import EXIT_UNREACHABLE, CliError
from replayflow.kafka import clients
from replayflow.kafka.outage import KafkaUnreachable
from replayflow.settings import Settings, SettingsError
from replayflow.topics import TopicsError, apply_topics, load_topics


def _settings(bootstrap: str | None, namespace: str | None, partitions: int | None) -> Settings:
    overrides: dict[str, Any] = {}
    if bootstrap is not None:
        overrides["bootstrap"] = bootstrap
    if namespace is not None:
        overrides["namespace"] = namespace
    if partitions is not None:
        overrides["partitions"] = partitions
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _common(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--partitions",
        type=click.IntRange(min=1),
        default=None,
        help="Partition count of the instance-keyed topics [env REPLAYFLOW_PARTITIONS; "
        "default: as declared].",
    )(func)
    func = click.option(
        "--namespace",
        default=None,
        help="Prefix of every topic name [env REPLAYFLOW_NAMESPACE; default: none].",
    )(func)
    return func


@click.group()
def topics() -> None:
    """The Kafka topics replayflow uses (declared in topics/topics.yaml)."""


@topics.command("list")
@_common
def list_(namespace: str | None, partitions: int | None) -> None:
    """Print the declared topics (no Kafka needed)."""
    settings = _settings(None, namespace, partitions)
    try:
        specs = load_topics(settings)
    except TopicsError as exc:
        raise click.ClickException(str(exc)) from None
    width = max(len(s.name) for s in specs.values())
    for logical, spec in specs.items():
        config = " ".join(f"{k}={v}" for k, v in spec.config.items())
        click.echo(
            f"{spec.name:<{width}}  {spec.partitions:>3}p x{spec.replication}  "
            f"key={spec.key}  {config}"
        )
        click.echo(f"{'':<{width}}  {logical}: {spec.description}")


@topics.command("apply")
@click.option(
    "--bootstrap",
    default=None,
    help="Kafka bootstrap servers [env KAFKA_BOOTSTRAP; default 127.0.0.1:9092].",
)
@_common
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for Kafka.")
def apply(
    bootstrap: str | None, namespace: str | None, partitions: int | None, timeout: float
) -> None:
    """Create the missing topics; report existing ones that differ.

    Existing topics are never changed. Exit status 1 when any topic differs from its
    declaration (partitions, replication, or a declared config key); fix it by hand
    (kafka-topics / kafka-configs) or delete the topic, then apply again.
    """
    settings = _settings(bootstrap, namespace, partitions)
    try:
        clients.check_reachable(settings)
    except KafkaUnreachable as exc:
        raise CliError(str(exc), EXIT_UNREACHABLE) from None
    try:
        report = apply_topics(settings.bootstrap, load_topics(settings), timeout=timeout)
    except TopicsError as exc:
        raise click.ClickException(str(exc)) from None
    for line in report.lines():
        click.echo(line)
    click.echo(report.summary())
    if not report.ok:
        raise click.ClickException(
            f"{len(report.mismatched)} topic(s) on {settings.bootstrap} differ from topics.yaml "
            "(see 'mismatched' above); replayflow does not alter existing topics"
        )
