"""The HTTP API tells the truth, on the real broker: refused commands get 404/409/422
at the call, a bad batch item is named by its index, payloads are JSON values, errors
carry their traceback, lists say what each instance waits for (a named sleep, a retry,
a queue position) and search by id prefix and time, the workflows list names who runs
what, health is split into liveness and readiness, and a dead letter is inspectable and
its redrive refused when it cannot succeed."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import replayflow as rf
from replayflow import codec
from replayflow.api.process import ApiServer
from replayflow.core.definitions import Registry
from replayflow.core.messages import StartWorkflow
from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics


@rf.step(retry=rf.Retry(limit=4, delay="1h", backoff="constant", jitter=False))
def always_down(n: int) -> int:
    raise ConnectionError("the bank is down")


@rf.workflow(name="edge-sleepy", version="1")
async def sleepy(ctx: rf.Context, value: Any) -> Any:
    await ctx.sleep("cool-off", "1h")
    return value


@rf.workflow(name="edge-retry", version="1")
async def retrying(ctx: rf.Context, value: Any) -> Any:
    return await ctx.step("charge", always_down, 1)


@rf.workflow(name="edge-fails", version="1")
async def fails(ctx: rf.Context, value: Any) -> Any:
    raise KeyError("missing")


@rf.workflow(name="edge-waits", version="1")
async def waits(ctx: rf.Context, value: Any) -> Any:
    return await ctx.wait_for_event("go", timeout="1d")


@rf.workflow(name="edge-limited", version="1", concurrency=1)
async def limited(ctx: rf.Context, value: Any) -> Any:
    return await ctx.wait_for_event("go", timeout="1d")


@pytest.fixture(scope="module")
def edge(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Settings]]:
    namespace = "t" + uuid.uuid4().hex[:10]
    settings = Settings(bootstrap=kafka_bootstrap, namespace=namespace, partitions=3)
    apply_topics(settings.bootstrap, load_topics(settings))
    data: Path = tmp_path_factory.mktemp("api-edge")
    registry = Registry.of(sleepy, retrying, fails, waits, limited, always_down)
    runtime = LocalRuntime(settings, registry, data_dir=data / "orchestrator").start()
    server = ApiServer(settings, data_dir=data).start()
    try:
        server.wait_ready(120)
        yield server.url, settings
    finally:
        server.stop()
        runtime.stop()
        from tests.integration.test_api import _delete_topics

        _delete_topics(kafka_bootstrap, namespace)


@pytest.fixture
def api(edge: tuple[str, Settings]) -> str:
    return edge[0]


def get(url: str, path: str, **params: Any) -> httpx.Response:
    return httpx.get(url + path, params=params or None, timeout=30)


def post(url: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30)


def until(predicate: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def instance(url: str, instance_id: str, check: Any = None) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        response = get(url, f"/v1/instances/{instance_id}")
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body if check is None or check(body) else None

    return until(ready, what=instance_id)  # type: ignore[no-any-return]


def message(response: httpx.Response) -> str:
    return str(response.json()["error"]["message"])


def test_health_is_split_into_liveness_and_readiness(api: str) -> None:
    live = get(api, "/health/live")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    ready = get(api, "/health/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["partitions"] == [0, 1, 2]
    assert get(api, "/health").json()["ready"] is True


def test_refused_commands_answer_404_409_422(api: str) -> None:
    unknown = post(api, "/v1/instances", {"workflow": "nosuch-wf", "input": 1})
    assert unknown.status_code == 422
    assert message(unknown).startswith("unknown workflow 'nosuch-wf': the orchestrators run ")
    version = post(api, "/v1/instances", {"workflow": "edge-sleepy", "version": "9"})
    assert version.status_code == 422 and "known: 1" in message(version)
    batch = post(
        api,
        "/v1/instances/batch",
        {
            "instances": [
                {"workflow": "edge-sleepy"},
                {"workflow": "edge-sleepy"},
                {"workflow": "x"},
            ]
        },
    )
    assert batch.status_code == 422
    assert message(batch).startswith("instances[2]: unknown workflow 'x'")
    for path, body in (
        ("/v1/instances/nobody/events", {"name": "go"}),
        ("/v1/instances/nobody/cancel", None),
        ("/v1/instances/nobody/terminate", None),
        ("/v1/instances/nobody/pause", None),
        ("/v1/instances/nobody/resume", None),
        ("/v1/instances/nobody/restart", None),
    ):
        response = post(api, path, body)
        assert response.status_code == 404, (path, response.text)
        assert message(response) == "no instance 'nobody'"
    started = post(api, "/v1/instances", {"workflow": "edge-waits", "id": "conflict-1"})
    assert started.status_code == 202
    assert (started.json()["outcome"], started.json()["status"]) == ("ACCEPTED", "RUNNING")
    again = post(api, "/v1/instances", {"workflow": "edge-waits", "id": "conflict-1"})
    assert (again.json()["outcome"], again.json()["status"]) == ("UNCHANGED", "RUNNING")
    restart = post(api, "/v1/instances/conflict-1/restart", {"from_step": "nope"})
    assert restart.status_code == 409 and "no step 'nope'" in message(restart)
    sent = post(api, "/v1/instances/conflict-1/events", {"name": "go", "payload": [1, 2]})
    assert sent.status_code == 202 and sent.json()["outcome"] == "ACCEPTED"


def test_a_bad_batch_item_is_named_by_its_index(api: str) -> None:
    response = post(
        api, "/v1/instances/batch", {"instances": [{"workflow": "edge-sleepy"}, {"input": 1}]}
    )
    assert response.status_code == 400
    assert message(response) == "instances[1]: field 'workflow' is required"
    response = post(
        api,
        "/v1/instances/batch",
        {"instances": [{"workflow": "edge-sleepy"}, {"workflow": "edge-sleepy", "id": "bad id"}]},
    )
    assert response.status_code == 400 and message(response).startswith("instances[1]: ")


def test_payloads_are_json_values_and_errors_carry_their_traceback(api: str) -> None:
    post(api, "/v1/instances", {"workflow": "edge-waits", "id": "values-1", "input": {"a": [1]}})
    until(lambda: get(api, "/v1/instances/values-1/steps").json().get("items"), what="wait")
    post(api, "/v1/instances/values-1/events", {"name": "go", "payload": {"ok": True}})
    done = instance(api, "values-1", lambda b: b["status"] == "COMPLETED")
    assert (done["input"], done["output"]) == ({"a": [1]}, {"ok": True})
    [wait] = get(api, "/v1/instances/values-1/steps").json()["items"]
    assert wait["result"] == {"ok": True}
    history = get(api, "/v1/instances/values-1/history").json()["items"]
    received = next(e for e in history if e["type"] == "EventReceived")
    assert received["payload"] == {"ok": True}
    assert history[0]["input"] == {"a": [1]}

    post(api, "/v1/instances", {"workflow": "edge-fails", "id": "fails-1"})
    failed = instance(api, "fails-1", lambda b: b["status"] == "FAILED")
    assert failed["error"]["type"] == "KeyError"
    assert "in fails" in failed["error"]["traceback"]
    assert failed["error"]["traceback"].endswith("KeyError: 'missing'")


def test_lists_say_what_instances_wait_for(api: str) -> None:
    post(api, "/v1/instances", {"workflow": "edge-sleepy", "id": "sleep-1"})
    post(api, "/v1/instances", {"workflow": "edge-retry", "id": "retry-1"})
    for i in range(3):
        post(api, "/v1/instances", {"workflow": "edge-limited", "id": f"queue-{i}"})
        time.sleep(0.05)
    sleeping = instance(api, "sleep-1", lambda b: b["waiting"])
    [sleep] = sleeping["waiting"]
    assert (sleep["kind"], sleep["key"]) == ("sleep", "cool-off")
    assert sleep["until"] - sleeping["started_at"] == 3_600_000
    retry = instance(
        api, "retry-1", lambda b: b["waiting"] and b["waiting"][0]["status"] == "backoff"
    )
    [step] = retry["waiting"]
    assert (step["key"], step["attempt"], step["max_attempts"]) == ("charge", 2, 4)
    assert step["error"] == {"type": "ConnectionError", "message": "the bank is down"}
    queued = instance(api, "queue-2", lambda b: b["status"] == "QUEUED")
    assert queued["queue_position"] == 2  # queue-0 runs, queue-1 is next
    page = get(api, "/v1/instances", workflow="edge-limited").json()["items"]
    positions = {i["id"]: i.get("queue_position") for i in page}
    assert positions == {"queue-0": None, "queue-1": 1, "queue-2": 2}
    listed = {i["id"]: i for i in get(api, "/v1/instances").json()["items"]}
    assert listed["sleep-1"]["waiting"][0]["key"] == "cool-off"


def test_search_by_id_prefix_and_time_range(api: str) -> None:
    for i in range(3):
        post(api, "/v1/instances", {"workflow": "edge-sleepy", "id": f"find-me-{i}"})
    post(api, "/v1/instances", {"workflow": "edge-sleepy", "id": "other-1"})
    page = until(
        lambda: (
            (r := get(api, "/v1/instances", prefix="find-me-").json())["items"]
            and len(r["items"]) == 3
            and r
        ),
        what="three found",
    )
    assert [i["id"] for i in page["items"]] == ["find-me-0", "find-me-1", "find-me-2"]
    first = get(api, "/v1/instances", prefix="find-me-", limit=2).json()
    assert [i["id"] for i in first["items"]] == ["find-me-0", "find-me-1"]
    rest = get(api, "/v1/instances", prefix="find-me-", limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in rest.json()["items"]] == ["find-me-2"]
    started = instance(api, "find-me-1")["started_at"]
    windowed = get(
        api, "/v1/instances", prefix="find-me-", started_after=started, started_before=started
    ).json()["items"]
    assert [i["id"] for i in windowed] == ["find-me-1"]
    assert get(api, "/v1/instances", prefix="nothing-").json()["items"] == []


def test_the_workflows_list_counts_and_names_who_runs_what(api: str) -> None:
    post(api, "/v1/instances", {"workflow": "edge-sleepy", "id": "wf-1"})
    instance(api, "wf-1")
    items = {w["workflow"]: w for w in get(api, "/v1/workflows").json()["items"]}
    assert {"edge-sleepy", "edge-retry", "edge-fails", "edge-waits"} <= set(items)
    [version] = items["edge-sleepy"]["versions"]
    assert version["version"] == "1" and len(version["run_by"]) == 1
    assert items["edge-sleepy"]["counts"]["RUNNING"] >= 1


def test_a_dead_letter_is_inspectable_and_a_hopeless_redrive_refused(
    edge: tuple[str, Settings],
) -> None:
    api, settings = edge
    command = StartWorkflow(instance_id="raw-edge", workflow="never-deployed", input='{"x": 1}')
    deliver(
        clients.producer(settings),
        [Record(Topics(settings).commands, codec.encode(command), key=b"raw-edge")],
    )
    entries = until(
        lambda: [e for e in get(api, "/v1/dlq").json()["items"] if e["key"] == "raw-edge"],
        what="the dead letter",
    )
    [entry] = entries
    assert entry["original"]["type"] == "StartWorkflow"
    assert entry["original"]["input"] == {"x": 1}  # inspectable, payload as a value
    refused = post(api, f"/v1/dlq/{entry['id']}/redrive")
    assert refused.status_code == 409
    assert "unknown workflow 'never-deployed'" in message(refused)
    assert "cannot succeed if redriven" in message(refused)


def test_the_cli_says_it_in_words(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from replayflow.cli import main

    monkeypatch.setenv("REPLAYFLOW_API", api)
    monkeypatch.delenv("REPLAYFLOW_API_TOKEN", raising=False)
    long_id = "cli-sleep-" + "x" * 120
    post(api, "/v1/instances", {"workflow": "edge-sleepy", "id": long_id})
    post(api, "/v1/instances", {"workflow": "edge-fails", "id": "cli-fails"})
    instance(api, long_id, lambda b: b["waiting"])
    instance(api, "cli-fails", lambda b: b["status"] == "FAILED")
    status = CliRunner().invoke(main, ["status", "cli-fails"])
    assert status.exit_code == 0, status.output
    assert "error   KeyError: 'missing'" in status.output
    assert "traceback:" in status.output and "in fails" in status.output
    assert " UTC" in status.output
    listed = CliRunner().invoke(main, ["list", "--workflow", "edge-sleepy", "--prefix", "cli-"])
    assert listed.exit_code == 0, listed.output
    header, row = listed.stdout.splitlines()[:2]
    assert row.startswith(long_id)  # the whole id, in a column as wide as it
    assert row.index("edge-sleepy") == header.index("WORKFLOW")
    assert "sleeping (cool-off) until" in row
