"""The HTTP API end to end: an orchestrator and a worker in this process, `replayflow
serve` as a child process (token-protected), the real broker; and a second API process
sharing the partitions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

import replayflow as rf
from replayflow import codec
from replayflow.api.process import ApiServer
from replayflow.cli import main as cli_main
from replayflow.core.definitions import Registry
from replayflow.core.messages import SendEvent
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics

pytestmark = pytest.mark.kafka

TOKEN = "s3cret-token"


@rf.step
def greet(name: str) -> str:
    return f"hello {name}"


@rf.step(retry=rf.Retry(limit=3, delay="50ms", backoff="constant", jitter=False))
def wobbly(fail_times: int) -> str:
    if rf.current_step().attempt <= fail_times:
        raise ConnectionError(f"attempt {rf.current_step().attempt} failed")
    return "steady"


@rf.workflow(name="greeter")
async def greeter(ctx: rf.Context, name: str) -> str:
    text = await ctx.step("greet", greet, name)
    await ctx.step("wobbly", wobbly, 1)
    return text


@rf.workflow(name="approval")
async def approval(ctx: rf.Context, order: int) -> Any:
    await ctx.step("greet", greet, f"order {order}")
    return await ctx.wait_for_event("approve", timeout=120)


@rf.workflow(name="napper")
async def napper(ctx: rf.Context, seconds: float) -> str:
    await ctx.step("first", greet, "a")
    await ctx.sleep("nap", seconds)
    await ctx.step("second", greet, "b")
    return "rested"


def _registry() -> Registry:
    import sys

    return Registry.of(sys.modules[__name__])


@pytest.fixture(scope="module")
def env(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = Settings(bootstrap=kafka_bootstrap, namespace=namespace, partitions=3)
    apply_topics(settings.bootstrap, load_topics(settings))
    data = tmp_path_factory.mktemp("api")
    runtime = LocalRuntime(settings, _registry(), data_dir=data / "orchestrator")
    runtime.start()
    server = ApiServer(settings, data_dir=data, token=TOKEN).start()
    try:
        server.wait_ready()
        yield {"settings": settings, "server": server, "data": data}
    finally:
        server.stop()
        runtime.stop()
        _delete_topics(kafka_bootstrap, namespace)


def _delete_topics(bootstrap: str, namespace: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(namespace + ".")]
        if mine:
            for future in admin.delete_topics(mine, operation_timeout=10).values():
                future.result()
    except Exception:
        pass


class Api:
    def __init__(self, url: str, token: str | None = TOKEN) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(self.url + path, params=params or None, headers=self.headers, timeout=20)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.url + path, json=body, headers=self.headers, timeout=20, **kwargs)


def wait(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def instance_when(api: Api, instance_id: str, status: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        response = api.get("/v1/instances/" + quote(instance_id, safe=""))
        if response.status_code == 200 and response.json()["status"] == status:
            return response.json()  # type: ignore[no-any-return]
        return None

    return wait(check, what=f"{instance_id} {status}")  # type: ignore[no-any-return]


@pytest.fixture
def api(env: dict[str, Any]) -> Api:
    return Api(env["server"].url)


def test_start_get_timeline_history_and_lists(api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    response = api.post("/v1/instances", {"workflow": "greeter", "input": "ada", "id": f"g-{run}"})
    assert response.status_code == 202, response.text
    assert response.json()["id"] == f"g-{run}"
    # Same id again, other input: the first start wins.
    assert (
        api.post(
            "/v1/instances", {"workflow": "greeter", "input": "bob", "id": f"g-{run}"}
        ).status_code
        == 202
    )
    instance = instance_when(api, f"g-{run}", "COMPLETED")
    assert instance["input"] == "ada"  # JSON values, not JSON text
    assert instance["output"] == "hello ada"
    assert instance["workflow"] == "greeter" and instance["ended_at"] >= instance["started_at"]

    steps = api.get(f"/v1/instances/g-{run}/steps").json()["items"]
    assert [(s["key"], s["status"]) for s in steps] == [
        ("greet", "completed"),
        ("wobbly", "completed"),
    ]
    assert [a["status"] for a in steps[1]["attempts"]] == ["failed", "completed"]
    assert steps[1]["attempts"][0]["error"]["type"] == "ConnectionError"

    page1 = api.get(f"/v1/instances/g-{run}/history", limit=3).json()
    page2 = api.get(
        f"/v1/instances/g-{run}/history", limit=100, after_seq=page1["next_after_seq"]
    ).json()
    seqs = [e["seq"] for e in page1["items"] + page2["items"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert page1["items"][0]["type"] == "WorkflowStarted"
    assert page2["items"][-1]["type"] == "WorkflowCompleted"
    assert page2["next_after_seq"] is None

    listed = api.get("/v1/instances", workflow="greeter", status="COMPLETED").json()
    assert f"g-{run}" in [i["id"] for i in listed["items"]]
    counts = api.get("/v1/counts", workflow="greeter").json()
    assert counts["counts"]["COMPLETED"] >= 1 and counts["total"] >= 1
    workflows = api.get("/v1/workflows").json()["items"]
    assert "greeter" in [w["workflow"] for w in workflows]


def test_batch_start_and_cursor_pagination(api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    body = {
        "instances": [{"workflow": "napper", "input": 0.01, "id": f"b-{run}-{i}"} for i in range(7)]
    }
    response = api.post("/v1/instances/batch", body)
    assert response.status_code == 202, response.text
    assert response.json()["count"] == 7
    for i in range(7):
        instance_when(api, f"b-{run}-{i}", "COMPLETED")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"workflow": "napper", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/v1/instances", **params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    mine = [i for i in seen if i.startswith(f"b-{run}-")]
    assert sorted(mine) == sorted(f"b-{run}-{i}" for i in range(7))
    assert len(seen) == len(set(seen))
    napper_entries = api.get(f"/v1/instances/b-{run}-0/steps").json()["items"]
    assert [e["kind"] for e in napper_entries] == ["step", "sleep", "step"]


def test_send_event_cancel_terminate_pause_resume_restart(api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    ids = {name: f"{name}-{run}" for name in ("ev", "cancel", "term", "pause", "restart")}
    for instance_id in ids.values():
        assert (
            api.post(
                "/v1/instances", {"workflow": "approval", "input": 1, "id": instance_id}
            ).status_code
            == 202
        )
    for instance_id in ids.values():
        wait(
            lambda i=instance_id: any(
                e["kind"] == "wait"
                for e in api.get(f"/v1/instances/{i}/steps").json().get("items", [])
            ),
            what=f"{instance_id} waiting",
        )

    assert (
        api.post(
            f"/v1/instances/{ids['ev']}/events", {"name": "approve", "payload": {"ok": True}}
        ).status_code
        == 202
    )
    assert instance_when(api, ids["ev"], "COMPLETED")["output"] == {"ok": True}

    assert (
        api.post(f"/v1/instances/{ids['cancel']}/cancel", {"reason": "not needed"}).status_code
        == 202
    )
    assert instance_when(api, ids["cancel"], "CANCELLED")["reason"] == "not needed"

    assert api.post(f"/v1/instances/{ids['term']}/terminate").status_code == 202
    instance_when(api, ids["term"], "TERMINATED")
    steps = api.get(f"/v1/instances/{ids['term']}/steps").json()["items"]
    assert [(e["kind"], e["status"]) for e in steps] == [
        ("step", "completed"),
        ("wait", "terminated"),
    ]
    assert all(e["ended_at"] is not None for e in steps)

    # An event sent while paused is kept, and the resume hands it to the wait.
    assert api.post(f"/v1/instances/{ids['pause']}/pause", {"reason": "ops"}).status_code == 202
    assert instance_when(api, ids["pause"], "PAUSED")["reason"] == "ops"
    api.post(f"/v1/instances/{ids['pause']}/events", {"name": "approve", "payload": 2})
    wait(
        lambda: any(
            e["kind"] == "event"
            for e in api.get(f"/v1/instances/{ids['pause']}/steps").json()["items"]
        ),
        what="event kept while paused",
    )
    assert api.post(f"/v1/instances/{ids['pause']}/resume").status_code == 202
    paused = instance_when(api, ids["pause"], "COMPLETED")
    assert (paused["output"], paused["reason"]) == (2, None)
    steps = api.get(f"/v1/instances/{ids['pause']}/steps").json()["items"]
    assert [(e["kind"], e["status"]) for e in steps] == [
        ("step", "completed"),
        ("wait", "completed"),
        ("event", "delivered"),
    ]

    api.post(f"/v1/instances/{ids['restart']}/events", {"name": "approve", "payload": 3})
    instance_when(api, ids["restart"], "COMPLETED")
    assert (
        api.post(f"/v1/instances/{ids['restart']}/restart", {"from_step": "greet"}).status_code
        == 202
    )
    restarted = wait(
        lambda: (lambda r: r if r["run"] == 1 else None)(
            api.get(f"/v1/instances/{ids['restart']}").json()
        ),
        what="restart recorded",
    )
    assert restarted["status"] in ("RUNNING", "COMPLETED")
    assert "WorkflowRestarted" in [e["type"] for e in restarted["recent"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words"),
    [
        ("post", "/v1/instances", {"input": 1}, 400, "workflow"),
        ("post", "/v1/instances", {"workflow": "greeter", "id": " bad id"}, 400, "instance id"),
        ("post", "/v1/instances", {"workflow": "greeter", "colour": 1}, 400, "unknown field"),
        ("post", "/v1/instances", [1, 2], 400, "JSON object"),
        ("post", "/v1/instances/batch", {"instances": []}, 400, "non-empty"),
        (
            "post",
            "/v1/instances/batch",
            {"instances": [{"workflow": "greeter"}] * 1001},
            413,
            "at most 1000",
        ),
        ("post", "/v1/instances/x-1/events", {"payload": 1}, 400, "name"),
        ("get", "/v1/instances?status=NOPE", None, 400, "status"),
        ("get", "/v1/instances?limit=0", None, 400, "limit"),
        ("get", "/v1/instances?cursor=zzz", None, 400, "cursor"),
        ("get", "/v1/instances/no-such-instance", None, 404, "no instance"),
        ("get", "/v1/nothing-here", None, 404, "no route"),
        ("post", "/v1/dlq/abc/redrive", None, 400, "dead-letter id"),
    ],
)
def test_bad_input_is_a_clear_4xx(
    api: Api, method: str, path: str, body: Any, status: int, words: str
) -> None:
    response = api.post(path, body) if method == "post" else api.get(path)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]["message"]


def test_bad_json_oversized_body_and_auth(api: Api, env: dict[str, Any]) -> None:
    url = env["server"].url
    response = httpx.post(url + "/v1/instances", content=b"{nope", headers=api.headers)
    assert response.status_code == 400 and "not valid JSON" in response.text
    deep = b'{"workflow": "greeter", "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = httpx.post(url + "/v1/instances", content=deep, headers=api.headers)
    assert response.status_code == 400 and "nested too deeply" in response.text
    huge = b'{"workflow": "greeter", "input": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = httpx.post(url + "/v1/instances", content=huge, headers=api.headers)
    assert response.status_code == 413, response.text
    assert "limit" in response.json()["error"]["message"]
    big_input = {"workflow": "greeter", "input": "y" * (1024 * 1024 + 10)}
    assert api.post("/v1/instances", big_input).status_code == 413

    anonymous = Api(url, token=None)
    response = anonymous.get("/v1/instances")
    assert response.status_code == 401 and "Bearer" in response.json()["error"]["message"]
    assert Api(url, token="wrong").get("/v1/counts").status_code == 401
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert anonymous.get("/ui/").status_code == 200
    metrics = api.get("/metrics")
    assert "replayflow_api_events_folded_total" in metrics.text


def test_dead_letters_list_and_redrive_once(api: Api, env: dict[str, Any]) -> None:
    settings: Settings = env["settings"]
    key = f"nobody-{uuid.uuid4().hex[:6]}"
    junk = f"junk-{uuid.uuid4().hex[:6]}"
    producer = Producer({"bootstrap.servers": settings.bootstrap, "partitioner": "murmur2"})
    # An event for an instance that does not exist (yet): a redrive may succeed later.
    event = SendEvent(instance_id=key, name="go", payload="1")
    producer.produce(Topics(settings).commands, key=key.encode(), value=codec.encode(event))
    producer.produce(Topics(settings).commands, key=junk.encode(), value=b"not avro")
    producer.flush(10)

    def entry(key: str = key) -> dict[str, Any] | None:
        items = api.get("/v1/dlq").json()["items"]
        return next((e for e in items if e["key"] == key), None)

    found = wait(entry, what="the dead letter")
    assert found["source_topic"] == Topics(settings).commands and not found["redriven"]
    first = api.post(f"/v1/dlq/{found['id']}/redrive")
    assert first.status_code == 202, first.text
    again = api.post(f"/v1/dlq/{found['id']}/redrive")
    assert again.status_code == 409 and "already" in again.json()["error"]["message"]
    assert wait(lambda: (entry() or {}).get("redriven"), what="marked redriven")
    # Still no such instance: the orchestrator dead-letters it again.
    wait(
        lambda: len([e for e in api.get("/v1/dlq").json()["items"] if e["key"] == key]) == 2,
        what="second dead letter",
    )
    # Junk bytes would only be dead-lettered again: that redrive is refused, with why.
    junk_entry = wait(lambda: entry(junk), what="the junk dead letter")
    refused = api.post(f"/v1/dlq/{junk_entry['id']}/redrive")
    assert refused.status_code == 409
    assert "its bytes are not a replayflow record" in refused.json()["error"]["message"]
    assert api.post("/v1/dlq/0-999999999/redrive").status_code == 404


def test_deploy_a_dsl_document_and_list_it(api: Api) -> None:
    name = f"api-hello-{uuid.uuid4().hex[:6]}"
    document = (
        f"document:\n  dsl: '1.0.0'\n  namespace: tests\n  name: {name}\n"
        f"  version: '1.0.0'\ndo:\n  - greet:\n      set:\n        greeting: hello\n"
    )

    def post(text: str) -> httpx.Response:
        return httpx.post(
            api.url + "/v1/workflows", content=text.encode(), headers=api.headers, timeout=30
        )

    first = post(document)
    assert first.status_code == 201, first.text
    assert (first.json()["name"], first.json()["version"]) == (name, "1.0.0")
    assert post(document).status_code == 200  # the same document again: nothing new
    changed = post(document.replace("greeting: hello", "greeting: bonjour"))
    assert changed.status_code == 400 and "immutable" in changed.json()["error"]["message"]
    assert post("").status_code == 400
    bad = post("document: {}")
    assert bad.status_code == 400 and bad.json()["error"]["message"]
    listed = {w["workflow"]: w for w in api.get("/v1/workflows").json()["items"]}
    assert listed[name]["versions"] == [{"version": "1.0.0", "instances": 0, "deployed": True}]


def test_cli_status_and_list(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    run = uuid.uuid4().hex[:6]
    api.post("/v1/instances", {"workflow": "greeter", "input": "cli", "id": f"cli-{run}"})
    instance_when(api, f"cli-{run}", "COMPLETED")
    monkeypatch.setenv("REPLAYFLOW_API", api.url)
    monkeypatch.setenv("REPLAYFLOW_API_TOKEN", TOKEN)
    result = CliRunner().invoke(cli_main, ["status", f"cli-{run}"])
    assert result.exit_code == 0, result.output
    assert "COMPLETED" in result.output and "wobbly" in result.output
    result = CliRunner().invoke(cli_main, ["list", "--workflow", "greeter"])
    assert result.exit_code == 0, result.output
    assert f"cli-{run}" in result.output
    result = CliRunner().invoke(cli_main, ["status", "no-such-thing"])
    assert result.exit_code == 1 and "404" in result.output


def test_second_api_process_shares_partitions_and_routes(env: dict[str, Any], api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    ids = [f"r-{run}-{i}" for i in range(6)]
    api.post(
        "/v1/instances/batch",
        {"instances": [{"workflow": "greeter", "input": i, "id": i} for i in ids]},
    )
    for instance_id in ids:
        instance_when(api, instance_id, "COMPLETED")
    first: ApiServer = env["server"]
    second = ApiServer(env["settings"], data_dir=Path(env["data"]) / "second", token=TOKEN)
    second.start()
    try:
        second.wait_ready(90)

        def split() -> bool:
            a, b = first.health(), second.health()
            return bool(
                a
                and b
                and a["partitions"]
                and b["partitions"]
                and len(a["partitions"]) + len(b["partitions"]) == 3
            )

        wait(split, timeout=90, what="both processes owning partitions")
        other = Api(second.url)
        for instance_id in ids:
            for client in (api, other):
                got = wait(
                    lambda c=client, i=instance_id: (
                        lambda r: r.json() if r.status_code == 200 else None
                    )(c.get(f"/v1/instances/{i}")),
                    what=f"{instance_id} via {client.url}",
                )
                assert got["status"] == "COMPLETED"
        for client in (api, other):
            listed = {
                i["id"]
                for i in client.get("/v1/instances", workflow="greeter", limit=500).json()["items"]
            }
            assert set(ids) <= listed
            counts = client.get("/v1/counts", workflow="greeter").json()
            assert counts["counts"]["COMPLETED"] >= len(ids)
    finally:
        second.stop()
