"""The stack the API and UI tests share: a namespace with its topics, an
orchestrator with a worker (LocalRuntime) and the HTTP API, on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from replayflow.api.process import ApiServer
from replayflow.core.definitions import Registry
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import apply_topics, load_topics
from tests.integration.test_api import Api, _delete_topics, wait


@contextmanager
def api_stack(
    kafka_bootstrap: str, data: Path, registry: Registry, token: str | None = None
) -> Iterator[dict[str, Any]]:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = Settings(bootstrap=kafka_bootstrap, namespace=namespace, partitions=3)
    apply_topics(settings.bootstrap, load_topics(settings))
    runtime = LocalRuntime(settings, registry, data_dir=data / "orchestrator").start()
    server = ApiServer(settings, data_dir=data, token=token).start()
    try:
        server.wait_ready()
        yield {"settings": settings, "server": server, "api": Api(server.url, token=token)}
    finally:
        server.stop()
        runtime.stop()
        _delete_topics(kafka_bootstrap, namespace)


def schedule_when(api: Api, schedule_id: str, check: Any, what: str) -> dict[str, Any]:
    """The schedule as the API shows it once `check` holds (waits up to 60 s)."""

    def found() -> dict[str, Any] | None:
        response = api.get("/v1/schedules/" + quote(schedule_id, safe=""))
        if response.status_code == 200 and check(response.json()):
            return response.json()  # type: ignore[no-any-return]
        return None

    return wait(found, 60, what)  # type: ignore[no-any-return]
