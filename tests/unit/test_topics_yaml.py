"""topics.yaml declares what DESIGN.md says; namespaces and overrides apply (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from replayflow.settings import Settings, SettingsError
from replayflow.topics import (
    INSTANCE_KEYED,
    LOGICAL_NAMES,
    Topics,
    TopicsError,
    load_topics,
)

DESIGN_TOPICS = {
    "commands": ("replayflow.commands", "delete", "604800000"),
    "history": ("replayflow.history", "delete", "2592000000"),
    "tasks": ("replayflow.tasks", "delete", "604800000"),
    "completions": ("replayflow.completions", "delete", "2592000000"),
    "state": ("replayflow.state", "compact", None),
    "dlq": ("replayflow.dlq", "delete", "2592000000"),
    "events": ("replayflow.events", "delete", "604800000"),  # what DSL emit tasks publish
    "streams": ("replayflow.streams", "delete", "604800000"),  # durable streams of instances
    "replies": ("replayflow.replies", "delete", "86400000"),  # answers to waiting callers
}


def test_declares_every_topic_of_the_design() -> None:
    specs = load_topics(Settings())
    assert set(specs) == set(LOGICAL_NAMES) == set(DESIGN_TOPICS) | {"workflows", "orchestrators"}
    for logical, (name, cleanup, retention) in DESIGN_TOPICS.items():
        spec = specs[logical]
        assert spec.name == name
        assert spec.key == "instance_id"
        assert spec.config["cleanup.policy"] == cleanup
        assert spec.config.get("retention.ms") == retention
        assert spec.replication == 1
        assert spec.description
    workflows = specs["workflows"]
    assert workflows.name == "replayflow.workflows"
    assert workflows.config["cleanup.policy"] == "compact"
    assert workflows.partitions == 1
    orchestrators = specs["orchestrators"]
    assert orchestrators.name == "replayflow.orchestrators"
    assert orchestrators.config["cleanup.policy"] == "compact"
    assert orchestrators.partitions == 1


def test_instance_keyed_topics_share_one_partition_count() -> None:
    specs = load_topics(Settings())
    keyed = [s for s in specs.values() if s.key == "instance_id"]
    assert {s.name for s in keyed} == {specs[n].name for n in INSTANCE_KEYED}
    assert {s.partitions for s in keyed} == {12}


def test_partitions_override_keeps_the_shared_count_shared() -> None:
    specs = load_topics(Settings(partitions=3, replication=2))
    assert {specs[n].partitions for n in INSTANCE_KEYED} == {3}
    assert specs["workflows"].partitions == 1
    assert specs["orchestrators"].partitions == 1
    assert {s.replication for s in specs.values()} == {2}


def test_namespace_prefixes_every_topic() -> None:
    plain = load_topics(Settings())
    spaced = load_topics(Settings(namespace="t0123456789"))
    for logical, spec in spaced.items():
        assert spec.name == f"t0123456789.{plain[logical].name}"
    topics = Topics(Settings(namespace="ns"))
    assert topics.commands == "ns.replayflow.commands"
    assert topics.history == "ns.replayflow.history"
    assert topics.tasks == "ns.replayflow.tasks"
    assert topics.completions == "ns.replayflow.completions"
    assert topics.state == "ns.replayflow.state"
    assert topics.dlq == "ns.replayflow.dlq"
    assert topics.workflows == "ns.replayflow.workflows"
    assert Topics(Settings()).commands == "replayflow.commands"


def test_history_retention_is_configurable() -> None:
    assert load_topics(Settings(history_retention_ms=-1))["history"].config["retention.ms"] == "-1"


def test_config_values_are_kafka_strings(tmp_path: Path) -> None:
    source = tmp_path / "t.yaml"
    source.write_text(
        "topics:\n  a:\n    name: a\n    key: k\n"
        "    config: {retention.ms: 1000, unclean.leader.election.enable: false}\n"
    )
    (spec,) = load_topics(Settings(), source=source).values()
    assert spec.config == {"retention.ms": "1000", "unclean.leader.election.enable": "false"}
    assert spec.partitions == 1


@pytest.mark.parametrize(
    "text",
    ["[]", "topics: {a: {key: k}}", "topics: {a: {name: a, key: k, partitions: 0}}"],
)
def test_invalid_yaml_is_one_clear_error(tmp_path: Path, text: str) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text(text)
    with pytest.raises(TopicsError, match=r"topics\.yaml"):
        load_topics(Settings(), source=source)


# Settings.from_env shapes topic names and counts, so it is checked here too.


def test_settings_from_env() -> None:
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP": "kafka:29092",
            "REPLAYFLOW_NAMESPACE": "ci",
            "REPLAYFLOW_PARTITIONS": "6",
            "REPLAYFLOW_REPLICATION": "3",
            "REPLAYFLOW_DATA": "/tmp/rf",
        }
    )
    assert settings == Settings(
        bootstrap="kafka:29092",
        namespace="ci",
        partitions=6,
        replication=3,
        data_dir=Path("/tmp/rf"),
    )
    assert settings.topic_name("replayflow.tasks") == "ci.replayflow.tasks"


def test_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.bootstrap == "127.0.0.1:9092"
    assert settings.namespace == ""
    assert settings.partitions is None and settings.replication is None
    assert settings.data_dir == Path(".data")
    assert settings.topic_name("replayflow.tasks") == "replayflow.tasks"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REPLAYFLOW_PARTITIONS": "many"}, "REPLAYFLOW_PARTITIONS must be an integer"),
        ({"REPLAYFLOW_PARTITIONS": "0"}, "REPLAYFLOW_PARTITIONS must be a positive"),
        ({"REPLAYFLOW_NAMESPACE": "a b"}, "REPLAYFLOW_NAMESPACE"),
        ({"REPLAYFLOW_NAMESPACE": "a."}, "REPLAYFLOW_NAMESPACE"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_admission_mode_is_read_and_checked() -> None:
    assert Settings.from_env({}).admission == "sharded"
    assert Settings.from_env({"REPLAYFLOW_ADMISSION": " global "}).admission == "global"
    with pytest.raises(SettingsError, match="REPLAYFLOW_ADMISSION must be one of"):
        Settings.from_env({"REPLAYFLOW_ADMISSION": "fifo"})


def test_task_commit_interval_is_read_and_checked() -> None:
    assert Settings.from_env({}).task_commit_ms == 50
    assert Settings.from_env({"REPLAYFLOW_TASK_COMMIT_MS": "0"}).task_commit_ms == 0
    assert Settings.from_env({"REPLAYFLOW_TASK_COMMIT_MS": " 250 "}).task_commit_ms == 250
    for raw, message in (
        ("0.5", "REPLAYFLOW_TASK_COMMIT_MS must be an integer"),
        ("-1", "REPLAYFLOW_TASK_COMMIT_MS must be a whole number of milliseconds from 0"),
        ("60001", "REPLAYFLOW_TASK_COMMIT_MS must be a whole number of milliseconds from 0"),
    ):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env({"REPLAYFLOW_TASK_COMMIT_MS": raw})
    with pytest.raises(SettingsError, match="REPLAYFLOW_TASK_COMMIT_MS"):
        Settings(task_commit_ms=True)
