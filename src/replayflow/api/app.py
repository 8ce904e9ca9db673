"""The API process: a faust-streaming app that projects replayflow.history into the
read model (table `readmodel`, rocksdict) and serves the HTTP API and the web UI from
faust's own aiohttp web server.

    app = build(ApiConfig(settings=Settings.from_env(), port=8080))
    faust.Worker(app.faust, loglevel="info").execute_from_commandline()

Partitioning: history is keyed by instance id (murmur2). The source topic is the
existing history topic (never created or changed by faust: it is not internal); the
table's changelog has the same partition count and every write goes to the partition of
the event being folded, so the process that owns history partition P holds the read
model of every instance on P. faust's assignor co-partitions the two and publishes who
owns what, which routes single-instance reads (api/peers.py).
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

import faust

from replayflow import codec
from replayflow.api import projection
from replayflow.api.config import DEFAULT_PORT, ApiConfig
from replayflow.api.http import middlewares, register_routes
from replayflow.api.tables import LocalStore
from replayflow.api.tablestore import STORE_URL
from replayflow.core.clip import clip
from replayflow.settings import Settings
from replayflow.topics import Topics

__all__ = ["DEFAULT_PORT", "ApiApp", "ApiConfig", "build", "history_partitions", "run"]

log = logging.getLogger("replayflow.api")

TABLE = "readmodel"


def history_partitions(settings: Settings, timeout: float = 30.0) -> int:
    """The history topic's partition count, as the cluster has it."""
    from replayflow.kafka import clients

    topic = Topics(settings).history
    admin = clients.admin(settings)
    metadata = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise RuntimeError(f"topic {topic!r} does not exist: run `replayflow topics apply`")
    return len(metadata.partitions)


class ApiApp:
    """The faust app, its table, the agent, and the HTTP routes on faust's web server."""

    def __init__(self, config: ApiConfig, partitions: int | None = None) -> None:
        self.config = config
        settings = config.settings
        self.topics = Topics(settings)
        self.partitions = partitions or history_partitions(settings)
        data_dir = config.data_dir or (
            Path(settings.data_dir).resolve() / "api" / f"{config.host}-{config.port}"
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        app_id = settings.topic_name("replayflow.api")
        self.faust = faust.App(
            app_id,
            broker=[f"kafka://{b.strip()}" for b in settings.bootstrap.split(",")],
            store="rocksdb://",  # rocksdict: faust-streaming uses it when installed
            datadir=str(data_dir),
            topic_partitions=self.partitions,
            topic_replication_factor=_replication(settings),
            topic_disable_leader=True,
            consumer_auto_offset_reset="earliest",
            table_standby_replicas=0,
            web_enabled=True,
            web_bind=config.host,
            web_host=config.host,
            web_port=config.port,
            canonical_url=config.url,
            web_stats_enabled=False,
            web_graph_enabled=False,
            web_router_enabled=False,
            web_tables_enabled=False,
            web_metrics_enabled=False,
            web_application_options={
                "client_max_size": config.max_body,
                "middlewares": middlewares(config),
            },
            broker_session_timeout=10.0,
            broker_heartbeat_interval=1.0,
            producer_acks=-1,
            logging_config=None,
        )
        self.source = self.faust.topic(
            self.topics.history,
            key_serializer="raw",
            value_serializer="raw",
            partitions=self.partitions,
            internal=False,
        )
        self.table = self.faust.Table(
            TABLE,
            partitions=self.partitions,
            key_type=bytes,
            value_type=bytes,  # faust: bytes -> the "raw" serializer
            store=STORE_URL,  # api/tablestore.py: rocksdict per partition, read by LocalStore
        )
        self.store = LocalStore(self.table, self.faust)
        self.folded = 0
        self.agent = self.faust.agent(self.source, name="replayflow-api-projection")(self._project)
        register_routes(self, self.faust.web.web_app.router)  # type: ignore[attr-defined]

    async def _project(self, stream: Any) -> None:
        async for event in stream.events():
            try:
                history_event = codec.decode(event.value or b"")
            except codec.CodecError as exc:
                log.warning(
                    "history record at %s[%s]@%s not decodable: %s",
                    event.message.topic,
                    event.message.partition,
                    event.message.offset,
                    clip(exc.reason),
                )
                continue
            partition = event.message.partition
            writes = projection.project(history_event, partial(self.store.read, partition))
            self.store.apply(partition, writes)
            self.folded += 1

    # -- ownership (routing) -------------------------------------------------------

    def owner_of(self, instance_id: str) -> str | None:
        """Base URL of the process that owns the instance's partition (None: unknown,
        e.g. during a rebalance)."""
        from replayflow.kafka.partition import murmur2_partition

        partition = murmur2_partition(instance_id.encode(), self.partitions)
        topic = self.table.changelog_topic.get_topic_name()
        if self.store.owns(partition):
            return self.config.url
        try:
            hosts = self.faust.assignor.table_metadata(topic)
        except Exception:
            return None
        for url, topics in hosts.items():
            if partition in topics.get(topic, ()):
                return str(url).rstrip("/")
        return None

    def peers(self) -> list[str]:
        """Base URLs of every API process that owns a partition of the read model."""
        topic = self.table.changelog_topic.get_topic_name()
        try:
            hosts = self.faust.assignor.table_metadata(topic)
        except Exception:
            hosts = {}
        urls = {str(url).rstrip("/") for url, topics in hosts.items() if topics.get(topic)}
        urls.add(self.config.url)
        return sorted(urls)


def _replication(settings: Settings) -> int:
    spec = Topics(settings).specs["history"]
    return spec.replication


def build(config: ApiConfig, partitions: int | None = None) -> ApiApp:
    return ApiApp(config, partitions)


def run(config: ApiConfig, loglevel: str = "warning") -> None:
    """Run the API process until SIGINT/SIGTERM."""
    api = build(config)
    worker = faust.Worker(api.faust, loglevel=loglevel, quiet=True, override_logging=False)
    log.info("replayflow API on %s", config.url)
    worker.execute_from_commandline()
