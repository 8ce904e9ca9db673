"""The Kafka topics replayflow uses: declared in topics/topics.yaml, created by apply.

    specs = load_topics(settings)              # logical name -> TopicSpec
    report = apply_topics(settings.bootstrap, specs)
    Topics(settings).commands                  # -> "replayflow.commands" (namespace applied)

`apply_topics` creates what is missing and compares what exists (partition count,
replication factor, every declared config key); it never changes an existing topic
and never ignores a difference: each one is reported with a reason.

Replication fits the cluster: topics.yaml declares the most (`replication: 3`,
`min.insync.replicas: 2`); `apply_topics` refits every spec to the broker count it
sees (`TopicSpec.for_brokers`): one broker gets 1 and 1, three get 3 and 2.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from replayflow.core.errors import ReplayflowError
from replayflow.settings import Settings

COMMANDS = "commands"
HISTORY = "history"
TASKS = "tasks"
COMPLETIONS = "completions"
STATE = "state"
DLQ = "dlq"
WORKFLOWS = "workflows"
EVENTS = "events"
STREAMS = "streams"
REPLIES = "replies"
ORCHESTRATORS = "orchestrators"
#: Every logical topic name, in the order of DESIGN.md.
LOGICAL_NAMES = (
    COMMANDS,
    HISTORY,
    TASKS,
    COMPLETIONS,
    STATE,
    DLQ,
    WORKFLOWS,
    EVENTS,
    STREAMS,
    REPLIES,
    ORCHESTRATORS,
)
#: The topics keyed by workflow instance id: they must share one partition count.
INSTANCE_KEYED = (COMMANDS, HISTORY, TASKS, COMPLETIONS, STATE, DLQ, EVENTS, STREAMS, REPLIES)

_kafka_log = logging.getLogger("replayflow.kafka")

# Config keys whose value is a comma-separated set (order does not matter).
_SET_VALUED = frozenset({"cleanup.policy"})
MIN_INSYNC = "min.insync.replicas"


def fitted_min_insync(declared: int, replication: int) -> int:
    """At most `declared`, and below the replication so that one replica may be down
    while acks=all writes go on; never below 1."""
    return max(1, min(declared, replication - 1))


class TopicsError(ReplayflowError):
    """topics.yaml is invalid, Kafka cannot be reached, or a topic could not be created."""


@dataclass(frozen=True)
class TopicSpec:
    """One declared topic, with namespace and overrides already applied."""

    name: str
    key: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict, hash=False)
    description: str = ""
    #: The most replication topics.yaml allows (fitted to the broker count), or None
    #: when the replication was set exactly (REPLAYFLOW_REPLICATION).
    max_replication: int | None = None
    #: The most min.insync.replicas topics.yaml allows (None: not declared).
    max_min_insync: int | None = None

    def for_brokers(self, brokers: int) -> TopicSpec:
        """This spec on a cluster of `brokers` brokers: replication capped at the
        broker count, min.insync.replicas at the replication - 1 (see topics.yaml)."""
        replication = self.replication
        if self.max_replication is not None:
            replication = max(1, min(self.max_replication, brokers))
        config = dict(self.config)
        if self.max_min_insync is not None:
            config[MIN_INSYNC] = str(fitted_min_insync(self.max_min_insync, replication))
        return replace(self, replication=replication, config=config)


# ---------------------------------------------------------------- loading


def _packaged_yaml() -> str:
    resource = resources.files("replayflow") / "_topics" / "topics.yaml"
    return resource.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=8)
def _parse(text: str) -> dict[str, Any]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe").load(text)
    except YAMLError as exc:
        raise TopicsError(f"topics.yaml is not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("topics"), dict):
        raise TopicsError("topics.yaml must be a mapping with a 'topics' mapping")
    return doc


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TopicsError(f"topics.yaml: {where} must be a positive integer, not {value!r}")
    return value


def load_topics(
    settings: Settings | None = None, *, source: str | Path | None = None, brokers: int = 1
) -> dict[str, TopicSpec]:
    """The declared topics by logical name ("commands", ...), for these settings.

    `source` reads another YAML file instead of the packaged topics.yaml. Replication
    and min.insync.replicas are fitted to a cluster of `brokers` brokers (one unless
    said; `apply_topics` refits them to the cluster it talks to).
    """
    settings = settings if settings is not None else Settings.from_env()
    text = Path(source).read_text(encoding="utf-8") if source is not None else _packaged_yaml()
    doc = _parse(text)
    defaults = doc.get("defaults") or {}
    default_partitions = _positive_int(defaults.get("partitions", 1), "defaults.partitions")
    default_replication = _positive_int(defaults.get("replication", 1), "defaults.replication")
    default_min_insync = defaults.get(MIN_INSYNC)
    if default_min_insync is not None:
        default_min_insync = _positive_int(default_min_insync, f"defaults.{MIN_INSYNC}")
    if settings.partitions is not None:
        default_partitions = settings.partitions

    specs: dict[str, TopicSpec] = {}
    for logical, raw in doc["topics"].items():
        where = f"topic {logical!r}"
        if not isinstance(raw, dict):
            raise TopicsError(f"topics.yaml: {where} must be a mapping")
        name, key = raw.get("name"), raw.get("key")
        if not isinstance(name, str) or not name:
            raise TopicsError(f"topics.yaml: {where} needs a 'name'")
        if not isinstance(key, str) or not key:
            raise TopicsError(f"topics.yaml: {where} needs a 'key'")
        if "partitions" in raw:
            partitions = _positive_int(raw["partitions"], f"{where} partitions")
        else:
            partitions = default_partitions
        replication = _positive_int(raw.get("replication", default_replication), where)
        max_replication: int | None = replication
        if settings.replication is not None:
            replication, max_replication = settings.replication, None
        raw_config = raw.get("config") or {}
        if not isinstance(raw_config, dict):
            raise TopicsError(f"topics.yaml: {where} config must be a mapping")
        config = {str(k): _config_value(v) for k, v in raw_config.items()}
        max_min_insync = default_min_insync
        if MIN_INSYNC in config:
            max_min_insync = _positive_int(
                int(config[MIN_INSYNC]) if config[MIN_INSYNC].isdigit() else config[MIN_INSYNC],
                f"{where} {MIN_INSYNC}",
            )
        if logical == HISTORY and settings.history_retention_ms is not None:
            config["retention.ms"] = str(settings.history_retention_ms)
        specs[str(logical)] = TopicSpec(
            name=settings.topic_name(name),
            key=key,
            partitions=partitions,
            replication=replication,
            config=config,
            description=" ".join(str(raw.get("description", "")).split()),
            max_replication=max_replication,
            max_min_insync=max_min_insync,
        ).for_brokers(brokers)
    return specs


class Topics:
    """Real topic names, from one place: `Topics(settings).commands`."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else Settings.from_env()
        self.specs = load_topics(self.settings)

    def __getitem__(self, logical: str) -> str:
        try:
            return self.specs[logical].name
        except KeyError:
            raise KeyError(f"no topic {logical!r} in topics.yaml") from None

    def __repr__(self) -> str:
        return f"Topics(namespace={self.settings.namespace!r})"

    @property
    def commands(self) -> str:
        return self[COMMANDS]

    @property
    def history(self) -> str:
        return self[HISTORY]

    @property
    def tasks(self) -> str:
        return self[TASKS]

    @property
    def completions(self) -> str:
        return self[COMPLETIONS]

    @property
    def state(self) -> str:
        return self[STATE]

    @property
    def dlq(self) -> str:
        return self[DLQ]

    @property
    def workflows(self) -> str:
        return self[WORKFLOWS]

    @property
    def events(self) -> str:
        return self[EVENTS]

    @property
    def streams(self) -> str:
        return self[STREAMS]

    @property
    def replies(self) -> str:
        return self[REPLIES]

    @property
    def orchestrators(self) -> str:
        return self[ORCHESTRATORS]


# ---------------------------------------------------------------- apply

Status = Literal["created", "unchanged", "mismatched"]


@dataclass(frozen=True)
class TopicResult:
    name: str
    status: Status
    reasons: tuple[str, ...] = ()

    def line(self) -> str:
        text = f"{self.status:<10} {self.name}"
        return f"{text}: {'; '.join(self.reasons)}" if self.reasons else text


@dataclass(frozen=True)
class ApplyReport:
    results: tuple[TopicResult, ...]

    def _names(self, status: Status) -> list[str]:
        return [r.name for r in self.results if r.status == status]

    @property
    def created(self) -> list[str]:
        return self._names("created")

    @property
    def unchanged(self) -> list[str]:
        return self._names("unchanged")

    @property
    def mismatched(self) -> dict[str, tuple[str, ...]]:
        """Topic name -> human-readable reasons, one per difference."""
        return {r.name: r.reasons for r in self.results if r.status == "mismatched"}

    @property
    def ok(self) -> bool:
        return not self.mismatched

    def lines(self) -> list[str]:
        return [r.line() for r in self.results]

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.unchanged)} unchanged, "
            f"{len(self.mismatched)} mismatched"
        )


def _admin(admin_or_bootstrap: Any) -> tuple[Any, str]:
    # librdkafka's own log lines (connection refused, ...) go to Python logging; failures
    # reach the caller as TopicsError.
    from replayflow.kafka import clients

    if isinstance(admin_or_bootstrap, Settings):
        admin_or_bootstrap = admin_or_bootstrap.bootstrap
    if isinstance(admin_or_bootstrap, str):
        return clients.admin(admin_or_bootstrap), admin_or_bootstrap
    return admin_or_bootstrap, "the cluster"


def _same(key: str, actual: str | None, declared: str) -> bool:
    if actual is None:
        return False
    if key in _SET_VALUED:
        return {v.strip() for v in actual.split(",")} == {v.strip() for v in declared.split(",")}
    return actual.strip() == declared.strip()


def _differences(spec: TopicSpec, topic_md: Any, entries: Mapping[str, Any]) -> list[str]:
    reasons: list[str] = []
    partitions = len(topic_md.partitions)
    if partitions != spec.partitions:
        reasons.append(f"{partitions} partitions, declared {spec.partitions}")
    replication = {len(p.replicas) for p in topic_md.partitions.values()}
    if replication and replication != {spec.replication}:
        shown = "/".join(str(r) for r in sorted(replication))
        reasons.append(f"replication factor {shown}, declared {spec.replication}")
    for key, declared in spec.config.items():
        entry = entries.get(key)
        if entry is None:
            reasons.append(f"{key} is not a topic config the broker knows (declared {declared})")
            continue
        if not _same(key, entry.value, declared):
            reasons.append(f"{key}={entry.value}, declared {declared}")
    return reasons


def _served(topics: Mapping[str, Any], spec: TopicSpec) -> bool:
    md = topics.get(spec.name)
    return (
        md is not None
        and md.error is None
        and len(md.partitions) == spec.partitions
        and all(p.leader >= 0 for p in md.partitions.values())
    )


def _wait_until_served(metadata: Any, created: list[TopicSpec], deadline: float) -> None:
    """Return once every created topic is listed with all partitions led (so that
    clients started right after apply find it), or at the deadline."""
    while created and time.monotonic() < deadline:
        topics = metadata().topics
        if all(_served(topics, spec) for spec in created):
            return
        time.sleep(0.1)
    if created:
        _kafka_log.warning("topics created but not yet served by every broker")


def apply_topics(
    admin_or_bootstrap: Any,
    specs: Mapping[str, TopicSpec] | Iterable[TopicSpec],
    *,
    timeout: float = 30.0,
) -> ApplyReport:
    """Create the missing topics; report existing ones that differ from their spec.

    `admin_or_bootstrap` is a confluent_kafka AdminClient, a bootstrap string or a
    Settings. Existing topics are never altered. Raises TopicsError when Kafka cannot
    be reached or a topic cannot be created (the message names topic and reason).
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import (  # type: ignore[attr-defined,unused-ignore]
        ConfigResource,
        NewTopic,
    )

    admin, where = _admin(admin_or_bootstrap)
    spec_list = list(specs.values()) if isinstance(specs, Mapping) else list(specs)

    def metadata() -> Any:
        try:
            return admin.list_topics(timeout=min(timeout, 15.0))
        except KafkaException as exc:
            raise TopicsError(
                f"cannot reach Kafka at {where} ({exc.args[0].str()}); "
                "is a broker running there? `make up` starts a local one"
            ) from None

    deadline = time.monotonic() + timeout
    cluster = metadata()
    existing = cluster.topics
    # Fitted to the brokers the cluster lists now: start every broker before applying.
    spec_list = [spec.for_brokers(max(1, len(cluster.brokers))) for spec in spec_list]
    created: list[str] = []
    failures: list[str] = []
    missing = [s for s in spec_list if s.name not in existing]
    if missing:
        futures = admin.create_topics(
            [NewTopic(s.name, s.partitions, s.replication, config=dict(s.config)) for s in missing],
            operation_timeout=timeout,
            request_timeout=timeout,
        )
        raced: list[str] = []
        for name, future in futures.items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    raced.append(name)  # created meanwhile by someone else: compare it
                else:
                    failures.append(f"{name}: {error.str()}")
        if failures:
            raise TopicsError("could not create " + "; ".join(failures))
        while raced:
            existing = metadata().topics
            if all(name in existing for name in raced) or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        _wait_until_served(metadata, [s for s in missing if s.name in created], deadline)

    to_check = [s.name for s in spec_list if s.name not in created]
    entries: dict[str, Mapping[str, Any]] = {}
    # A topic created a moment ago (by us or by someone else) can be listed before
    # every broker serves its config: retry "unknown topic" until the deadline.
    while to_check:
        retry: list[str] = []
        futures_ = admin.describe_configs(
            [ConfigResource(ConfigResource.Type.TOPIC, name) for name in to_check],
            request_timeout=timeout,
        )
        for resource, future in futures_.items():
            try:
                entries[resource.name] = future.result()
            except KafkaException as exc:
                error = exc.args[0]
                if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and time.monotonic() < deadline:
                    retry.append(resource.name)
                else:
                    raise TopicsError(
                        f"cannot read the config of {resource.name}: {error.str()}"
                    ) from None
        to_check = retry
        if to_check:
            time.sleep(0.2)

    results: list[TopicResult] = []
    for spec in spec_list:
        if spec.name in created:
            results.append(TopicResult(spec.name, "created"))
            continue
        topic_md = existing.get(spec.name)
        if topic_md is None:  # pragma: no cover - vanished between create and compare
            raise TopicsError(f"{spec.name} exists but has no metadata")
        reasons = _differences(spec, topic_md, entries[spec.name])
        status: Status = "mismatched" if reasons else "unchanged"
        results.append(TopicResult(spec.name, status, tuple(reasons)))
    return ApplyReport(tuple(results))
