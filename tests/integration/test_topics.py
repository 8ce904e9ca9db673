"""`apply_topics` and `replayflow topics apply` against the real broker."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from replayflow.cli import main
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

pytestmark = pytest.mark.kafka


@pytest.fixture
def admin(kafka_bootstrap: str) -> AdminClient:
    log = logging.getLogger("tests.kafka")
    log.addHandler(logging.NullHandler())
    log.propagate = False
    return AdminClient({"bootstrap.servers": kafka_bootstrap, "logger": log})


def _create(admin: AdminClient, topic: NewTopic) -> None:
    for future in admin.create_topics([topic], operation_timeout=30).values():
        future.result()


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
        "REPLAYFLOW_PARTITIONS": str(settings.partitions),
    }


def test_apply_creates_every_declared_topic_as_declared(
    settings: Settings, admin: AdminClient
) -> None:
    specs = load_topics(settings)
    report = apply_topics(admin, specs)

    assert sorted(report.created) == sorted(s.name for s in specs.values())
    assert report.unchanged == [] and report.mismatched == {} and report.ok

    topics = admin.list_topics(timeout=10).topics
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs.values()]
    configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
    for spec in specs.values():
        assert spec.name.startswith(settings.namespace + ".")
        assert len(topics[spec.name].partitions) == spec.partitions
        assert all(
            len(p.replicas) == spec.replication for p in topics[spec.name].partitions.values()
        )
        for key, value in spec.config.items():
            assert configs[spec.name][key].value == value, (spec.name, key)
    assert len(topics[Topics(settings).commands].partitions) == 3
    assert len(topics[Topics(settings).workflows].partitions) == 1


def test_apply_twice_changes_nothing(settings: Settings, kafka_bootstrap: str) -> None:
    specs = load_topics(settings)
    first = apply_topics(kafka_bootstrap, specs)
    second = apply_topics(kafka_bootstrap, specs)

    assert len(first.created) == len(specs)
    assert second.created == []
    assert second.mismatched == {}
    assert sorted(second.unchanged) == sorted(s.name for s in specs.values())

    result = CliRunner().invoke(main, ["topics", "apply"], env=_cli_env(settings))
    assert result.exit_code == 0, result.output
    assert f"0 created, {len(specs)} unchanged, 0 mismatched" in result.output


def test_wrong_partition_count_is_mismatched_and_cli_fails(
    settings: Settings, admin: AdminClient
) -> None:
    topics = Topics(settings)
    declared = load_topics(settings)["tasks"].config  # only the partition count differs
    _create(admin, NewTopic(topics.tasks, 2, 1, config=dict(declared)))

    report = apply_topics(admin, load_topics(settings))

    assert list(report.mismatched) == [topics.tasks]
    (reason,) = report.mismatched[topics.tasks]
    assert reason == "2 partitions, declared 3"
    assert topics.tasks not in report.created
    assert len(report.created) == len(topics.specs) - 1

    result = CliRunner().invoke(main, ["topics", "apply"], env=_cli_env(settings))
    assert result.exit_code == 1
    assert f"mismatched {topics.tasks}: 2 partitions, declared 3" in result.output
    assert "Traceback" not in result.output
    assert "differ from topics.yaml" in result.output


def test_config_difference_is_reported(settings: Settings, admin: AdminClient) -> None:
    topics = Topics(settings)
    _create(
        admin,
        NewTopic(
            topics.history,
            3,
            1,
            config={**load_topics(settings)["history"].config, "cleanup.policy": "compact"},
        ),
    )

    report = apply_topics(admin, load_topics(settings))

    assert report.mismatched == {topics.history: ("cleanup.policy=compact, declared delete",)}
    assert not report.ok


def test_every_difference_is_reported(settings: Settings, admin: AdminClient) -> None:
    """Partitions and several config keys differ: one reason each, none dropped."""
    topics = Topics(settings)
    specs = load_topics(settings)
    declared = {**specs["commands"].config, "retention.ms": "1000"}
    _create(admin, NewTopic(topics.commands, 1, 1, config=declared))
    specs["commands"] = dataclasses.replace(
        specs["commands"], config={**specs["commands"].config, "no.such.config": "1"}
    )

    reasons = apply_topics(admin, specs).mismatched[topics.commands]

    assert reasons == (
        "1 partitions, declared 3",
        "retention.ms=1000, declared 604800000",
        "no.such.config is not a topic config the broker knows (declared 1)",
    )


def test_cli_reports_unreachable_broker_in_one_line() -> None:
    result = CliRunner().invoke(
        main, ["topics", "apply", "--bootstrap", "127.0.0.1:1", "--timeout", "2"]
    )
    assert result.exit_code == 2  # Kafka cannot be reached: exit 2, as every command
    assert result.output.count("\n") == 1
    assert result.output.startswith("Error: cannot reach Kafka at 127.0.0.1:1")
