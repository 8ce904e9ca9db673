"""Rebuilding state from the history topic on the real broker.

One namespace is brought to every state an instance can be in (completed, running
with a step out, sleeping, waiting with an event kept, queued under a limit, paused,
upgraded, suspended by a deploy), by the orchestrator itself. Then: the rebuild is
identical to the live state; the state topic is deleted and created again, the rebuilt
state written to it, and the engine goes on from there (one orchestrator on the
rebuilt data folder, one restoring from the new changelog): every instance continues
to its end."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from replayflow.cli.replay import Code
from replayflow.client import Client
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    EventAwaited,
    EventKept,
    StepScheduled,
    TimerStarted,
    WorkflowQueued,
    WorkflowSuspended,
    WorkflowUpgraded,
)
from replayflow.kafka import clients
from replayflow.processors.orchestrator import Orchestrator
from replayflow.processors.rebuild_compare import compare
from replayflow.processors.rebuild_kafka import KafkaHistory, read_state
from replayflow.processors.rebuild_run import RebuildPlan, rebuild
from replayflow.processors.runtime import LocalRuntime
from replayflow.settings import Settings
from replayflow.topics import Topics, apply_topics, load_topics
from tests.replay_code import mixed, mixed_v3, mixed_v4

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 3
SLEEP_S = 75  # long enough to be asleep at the rebuild, short enough to end after it


def wait_until(what: str, check: Callable[[], bool], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.3)


def has(client: Client, instance_id: str, kind: type, count: int = 1) -> Callable[[], bool]:
    return lambda: sum(isinstance(e, kind) for e in client.history(instance_id)) >= count


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
        "REPLAYFLOW_DATA": str(settings.data_dir),
        "REPLAYFLOW_PARTITIONS": str(PARTITIONS),
    }
    return subprocess.run(
        [sys.executable, "-m", "replayflow.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def recreate_state_topic(settings: Settings) -> None:
    """Delete the state topic (the loss the rebuild repairs) and create it again empty."""
    admin = clients.admin(settings)
    topic = Topics(settings).state
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result()
    wait_until("the state topic is gone", lambda: topic not in admin.list_topics(timeout=10).topics)
    deadline = time.monotonic() + 60
    while True:
        try:
            report = apply_topics(settings.bootstrap, load_topics(settings))
            assert report.ok, report.summary()
            return
        except Exception:  # marked for deletion a little longer: try again
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def delete_namespace(settings: Settings) -> None:
    admin = clients.admin(settings)
    mine = [
        t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.namespace + ".")
    ]
    if mine:
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()


@pytest.fixture(scope="module")
def live(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A namespace whose instances are in every state, with no orchestrator running."""
    data = tmp_path_factory.mktemp("rebuild")
    settings = Settings(
        bootstrap=kafka_bootstrap,
        namespace="t" + uuid.uuid4().hex[:10],
        partitions=PARTITIONS,
        data_dir=data,
    )
    apply_topics(settings.bootstrap, load_topics(settings))
    try:
        with Client(settings) as client:
            _first_deploy(settings, client, data)
            _second_deploy(settings, client, data)
        yield settings
    finally:
        delete_namespace(settings)


def _first_deploy(settings: Settings, client: Client, data: Path) -> None:
    with LocalRuntime(settings, Registry.of(mixed), orchestrator_id="live", data_dir=data / "live"):
        for n in range(3):
            client.start("mx-steps", n, id=f"done-{n}")
        client.start("mx-parent", 7, id="parent")
        client.start("mx-retry", "fail-once", id="retrying")
        client.start("mx-sleep", SLEEP_S, id="sleeping")
        for name in ("waiting", "paused", "upgraded"):
            client.start("mx-wait", name, id=name, version="1")
        client.start("mx-patch", "p", id="suspended")
        for n in range(5):
            client.start("mx-limited", n, id=f"limited-{n}")
        for n in range(3):
            assert client.result(f"done-{n}", timeout=60) == n
        assert client.result("parent", timeout=60) == 7
        assert client.result("retrying", timeout=60) == "fail-once"
        client.send_event("waiting", "other", {"kept": True})
        wait_until("the event is kept", has(client, "waiting", EventKept))
        client.pause("paused", "operator")
        client.send_event("suspended", "pay")  # the patch marker, then the fraud step
        wait_until("fraud ran", has(client, "suspended", EventAwaited, 2))
        wait_until("queued", has(client, "limited-4", WorkflowQueued))
        client.cancel("limited-3", "ended while queued")
        wait_until("sleeping", has(client, "sleeping", TimerStarted))
    dry = cli(
        settings,
        "upgrade",
        "mx-wait",
        "--from",
        "1",
        "--to",
        "2",
        "-m",
        "tests.replay_code.mixed",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "upgraded  would move to 2" in dry.stdout


def _second_deploy(settings: Settings, client: Client, data: Path) -> None:
    """mixed_v4 drops the ctx.patched call: the patched instance is suspended at its next
    decision. Only an orchestrator runs, no worker: a new instance's step stays out."""
    orchestrator = Orchestrator(
        settings, Registry.of(mixed_v4), instance_id="live", data_dir=data / "live"
    )
    thread = threading.Thread(target=orchestrator.run, daemon=True)
    thread.start()
    try:
        moved = cli(
            settings,
            "upgrade",
            "mx-wait",
            "--from",
            "1",
            "--to",
            "2",
            "-m",
            "tests.replay_code.mixed_v4",
        )
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert "upgraded  moved to 2" in moved.stdout
        wait_until("upgraded", has(client, "upgraded", WorkflowUpgraded))
        client.start("mx-running", "r", id="running")
        client.send_event("suspended", "noise")
        wait_until("suspended", has(client, "suspended", WorkflowSuspended))
        wait_until("the step is out", has(client, "running", StepScheduled))
    finally:
        orchestrator.stop()
        thread.join(30)


def test_the_rebuilt_state_is_the_live_state(live: Settings, tmp_path: Path) -> None:
    plan = RebuildPlan(
        partitions=tuple(range(PARTITIONS)),
        partition_count=PARTITIONS,
        data_dir=tmp_path / "rebuilt",
        workers=2,
    )
    result = rebuild(KafkaHistory(live), Code(("tests.replay_code.mixed_v4",)), plan)
    assert result.divergences == [] and result.partial == []
    assert result.admissions > 0 and result.instances >= 17
    state_topic = Topics(live).state
    for partition in plan.partitions:
        store = plan.open(partition)
        try:
            assert compare(read_state(live, state_topic, partition), store) == []
        finally:
            store.close()
    shown = cli(
        live,
        "rebuild",
        "-m",
        "tests.replay_code.mixed_v4",
        "--compare",
        "--data",
        str(tmp_path / "cli"),
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "identical to the live state" in shown.stdout


def test_after_the_state_topic_is_lost_the_engine_goes_on_from_the_rebuild(
    live: Settings, tmp_path: Path
) -> None:
    recreate_state_topic(live)
    data = tmp_path / "rebuilt"
    written = cli(
        live,
        "rebuild",
        "-m",
        "tests.replay_code.mixed_v4",
        "--data",
        str(data),
        "--orchestrator-id",
        "rebuilt",
        "--write-changelog",
    )
    assert written.returncode == 0, written.stdout + written.stderr
    assert "state records to" in written.stdout
    # One orchestrator runs on the rebuilt stores as they are; a second, with no data,
    # restores its partitions from the rebuilt changelog. The fix of mx-patch is out.
    registry = Registry.of(mixed_v3)
    second = Orchestrator(live, registry, instance_id="restored", data_dir=tmp_path / "empty")
    thread = threading.Thread(target=second.run, daemon=True)
    with (
        LocalRuntime(live, registry, orchestrator_id="rebuilt", data_dir=data),
        Client(live) as client,
    ):
        thread.start()
        try:
            _continue(client)
        finally:
            second.stop()
            thread.join(30)
    assert second.stats.restored_records > 0 or second.stats.assigned == []


def _continue(client: Client) -> None:
    results: dict[str, Any] = {}
    for name in ("waiting", "paused", "upgraded"):
        client.send_event(name, "go", name)
    client.resume("paused")
    for n in range(5):
        client.send_event(f"limited-{n}", "done", n)
    client.resume("suspended")
    client.send_event("suspended", "ship")
    for instance_id in ("running", "waiting", "paused", "upgraded", "suspended", "sleeping"):
        results[instance_id] = client.result(instance_id, timeout=SLEEP_S + 60)
    for n in (0, 1, 2, 4):
        results[f"limited-{n}"] = client.result(f"limited-{n}", timeout=60)
    assert results == {
        "running": "r",
        "waiting": "waiting",
        "paused": "paused",
        "upgraded": "upgraded",
        "suspended": "p",
        "sleeping": SLEEP_S,
        "limited-0": 0,
        "limited-1": 1,
        "limited-2": 2,
        "limited-4": 4,
    }
    upgraded = client.history("upgraded")
    assert any(isinstance(e, StepScheduled) and e.step == "after-v2" for e in upgraded)
