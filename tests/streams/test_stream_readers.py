"""The other ways to read a durable stream, on the real broker: the HTTP route
(server-sent events), `replayflow stream ID NAME`, and asyncio iteration. Each reads
while the stream is written, goes on from a cursor, and stops at the end."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from replayflow.api.process import ApiServer
from replayflow.client import AsyncClient
from replayflow.core.streams import StreamItem
from tests.streams import definitions as d
from tests.streams.conftest import KafkaEngine
from tests.streams.test_streams import WORDS, shown

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def api(
    kafka_stream_engine: KafkaEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    server = ApiServer(
        kafka_stream_engine.settings, data_dir=tmp_path_factory.mktemp("stream-api")
    ).start()
    try:
        server.wait_ready()
        yield server.url
    finally:
        server.stop()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_file(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def known_to_api(url: str, instance_id: str) -> None:
    deadline = time.monotonic() + 30
    while httpx.get(f"{url}/v1/instances/{quote(instance_id)}").status_code != 200:
        assert time.monotonic() < deadline, "the read model never saw the instance"
        time.sleep(0.1)


# -- server-sent events --------------------------------------------------------------


def events(
    url: str,
    instance_id: str,
    name: str,
    *,
    on_event: Any = None,
    headers: Any = None,
    **params: Any,
) -> list[tuple[str, str, dict[str, Any]]]:
    """(event, id, data) of each event, until the server ends the response."""
    out = []
    path = f"{url}/v1/instances/{quote(instance_id)}/streams/{name}"
    with httpx.stream("GET", path, params=params, headers=headers, timeout=60) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line:
                key, _, text = line.partition(": ")
                fields[key] = fields.get(key, "") + text
                continue
            if "data" in fields:
                event = (fields["event"], fields["id"], json.loads(fields["data"]))
                out.append(event)
                if on_event is not None:
                    on_event(event)
            fields = {}
    return out


def values(found: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, Any]]:
    return [(kind, data["value"] if kind == "value" else data["reason"]) for kind, _, data in found]


def test_sse_reads_a_stream_while_it_is_written_and_closes_at_the_end(
    kafka_stream_engine: KafkaEngine, api: str, tmp_path: Path
) -> None:
    engine, gate = kafka_stream_engine, tmp_path / "gate"
    instance_id = new_id("sse-live")
    handle = engine.start(d.talker, {"words": WORDS, "gate": str(gate)}, id=instance_id)
    known_to_api(api, instance_id)
    first_seen_before_gate: list[bool] = []

    def on_event(event: tuple[str, str, dict[str, Any]]) -> None:
        if event[0] == "value" and not first_seen_before_gate:
            first_seen_before_gate.append(not gate.exists())
            gate.touch()  # the step writes the next word only after this

    found = events(api, instance_id, "tokens", on_event=on_event)
    assert first_seen_before_gate == [True]
    assert values(found) == [*(("value", w) for w in WORDS), ("ended", "COMPLETED")]
    assert [data["cursor"] for _, _, data in found] == [event_id for _, event_id, _ in found]
    assert engine.result(handle) == len(WORDS)


def test_sse_goes_on_from_a_cursor_or_the_last_event_id(
    kafka_stream_engine: KafkaEngine, api: str
) -> None:
    engine = kafka_stream_engine
    handle = engine.start(d.talker, {"words": WORDS, "fail_after": 2}, id=new_id("sse-resume"))
    engine.result(handle)
    known_to_api(api, handle.id)
    whole = events(api, handle.id, "tokens")
    assert values(whole)[:3] == [
        ("value", "durable "),
        ("value", "streams "),
        ("retracted", "FAILED"),
    ]
    for stop in range(len(whole) - 1):
        cursor = whole[stop][1]
        assert events(api, handle.id, "tokens", start=cursor) == whole[stop + 1 :]
        # What a browser's EventSource sends when it reconnects.
        resumed = events(api, handle.id, "tokens", headers={"Last-Event-ID": cursor})
        assert resumed == whole[stop + 1 :]
    settled = events(api, handle.id, "tokens", settled="true")
    assert values(settled) == [*(("value", w) for w in WORDS), ("ended", "COMPLETED")]


def test_sse_refuses_a_bad_start_and_an_unknown_instance(api: str) -> None:
    bad = httpx.get(f"{api}/v1/instances/x/streams/tokens", params={"start": "soon"})
    assert bad.status_code == 400
    assert "start" in bad.text
    missing = httpx.get(f"{api}/v1/instances/{new_id('nobody')}/streams/tokens")
    assert missing.status_code == 404


def test_sse_without_follow_stops_at_what_is_written(
    kafka_stream_engine: KafkaEngine, api: str
) -> None:
    engine = kafka_stream_engine
    handle = engine.start(d.talker, {"words": ["x"], "wait": True}, id=new_id("sse-now"))
    engine.read(handle.id, "status", limit=2)  # the step ran; the wait began
    known_to_api(api, handle.id)
    started = time.monotonic()
    found = events(api, handle.id, "tokens", follow="false")
    assert values(found) == [("value", "x")]  # the instance still waits: no end yet
    assert time.monotonic() - started < 20
    engine.terminate(handle.id)


# -- the command line ----------------------------------------------------------------


def cli(engine: KafkaEngine, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": engine.settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": engine.settings.namespace,
        "PYTHONUNBUFFERED": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "replayflow.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_cli_prints_a_stream_as_it_is_written_and_goes_on_from_a_cursor(
    kafka_stream_engine: KafkaEngine, tmp_path: Path
) -> None:
    engine, gate = kafka_stream_engine, tmp_path / "gate"
    instance_id = new_id("cli-live")
    process = cli(engine, "stream", instance_id, "tokens", "--json")
    try:
        handle = engine.start(d.talker, {"words": WORDS, "gate": str(gate)}, id=instance_id)
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert (first["kind"], first["value"]) == ("value", "durable ")
        assert not gate.exists()  # printed while the step waits to write the rest
        gate.touch()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    items = [first, *(json.loads(line) for line in out.splitlines())]
    assert [(i["kind"], i["value"] or i["reason"]) for i in items] == [
        *(("value", w) for w in WORDS),
        ("ended", "COMPLETED"),
    ]
    assert engine.result(handle) == len(WORDS)

    # Plain text: the words joined, markers on stderr, and where to go on.
    text = cli(engine, "stream", instance_id, "tokens")
    out, err = text.communicate(timeout=60)
    assert text.returncode == 0, err
    assert out == "".join(WORDS)
    assert "[instance ended: COMPLETED]" in err
    assert f"resume with --start {items[-1]['cursor']}" in err
    # From the second item's cursor: the rest, nothing twice.
    rest = cli(engine, "stream", instance_id, "tokens", "--start", items[1]["cursor"], "--json")
    out, err = rest.communicate(timeout=60)
    assert rest.returncode == 0, err
    assert [json.loads(line) for line in out.splitlines()] == items[2:]


def test_the_cli_says_what_is_wrong_with_a_bad_cursor(kafka_stream_engine: KafkaEngine) -> None:
    process = cli(kafka_stream_engine, "stream", "someone", "tokens", "--start", "later")
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "not a stream cursor" in err and "Traceback" not in err


# -- asyncio -------------------------------------------------------------------------


def test_async_iteration_reads_live_and_goes_on_from_a_cursor(
    kafka_stream_engine: KafkaEngine, tmp_path: Path
) -> None:
    engine, gate = kafka_stream_engine, tmp_path / "gate"
    instance_id = new_id("async")

    async def main() -> tuple[list[StreamItem], list[StreamItem], list[StreamItem]]:
        client = AsyncClient(engine.settings)
        live: list[StreamItem] = []
        stream = await client.stream(instance_id, "tokens", idle_timeout=60)
        handle = engine.start(d.talker, {"words": WORDS, "gate": str(gate)}, id=instance_id)
        async for item in stream:
            live.append(item)
            if len(live) == 1:
                assert not gate.exists()
                gate.touch()
        assert stream.done
        assert await client.result(handle.id) == len(WORDS)
        # A reader that stops after two items, and one that goes on from its cursor.
        first: list[StreamItem] = []
        partial = await client.stream(instance_id, "tokens")
        async for item in partial:
            first.append(item)
            if len(first) == 2:
                break
        rest = [
            item async for item in engine.client.stream(instance_id, "tokens", start=partial.cursor)
        ]
        return live, first, rest

    live, first, rest = asyncio.run(main())
    assert shown(live) == [*(("value", w) for w in WORDS), ("ended", "COMPLETED")]
    assert first + rest == live


def test_async_iteration_does_not_block_the_event_loop(kafka_stream_engine: KafkaEngine) -> None:
    engine = kafka_stream_engine
    handle = engine.start(d.talker, {"words": ["x"], "wait": True}, id=new_id("async-idle"))
    engine.read(handle.id, "status", limit=2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def main() -> list[StreamItem]:
        ticker = asyncio.create_task(tick())
        seen = []
        try:
            stream = await AsyncClient(engine.settings).stream(handle.id, "tokens")
            async for item in stream:
                seen.append(item)
                if item.kind == "value":
                    # Nothing more until the end: the loop must go on meanwhile.
                    threading.Timer(1.0, engine.terminate, (handle.id,)).start()
        finally:
            ticker.cancel()
        return seen

    started = time.monotonic()
    seen = asyncio.run(main())
    took = time.monotonic() - started
    assert shown(seen) == [("value", "x"), ("ended", "TERMINATED")]
    assert ticks > took / 0.01 * 0.3  # ticked while the reads waited in threads
