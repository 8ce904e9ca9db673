"""`replayflow replay --all` on the real broker: 1,000 recorded instances, of which a
code change makes exactly three non-deterministic; `history --json` exports one as a
file that rf.testing replays.

The histories are recorded by the engine's fold in this process (rf.testing) and
produced to the namespace's history topic as the orchestrator would (keyed by
instance id, murmur2 partitioned): the CLI reads them from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from replayflow import codec, testing
from replayflow.kafka import clients
from replayflow.kafka.producing import Record, deliver
from replayflow.settings import Settings
from replayflow.testing import Environment
from replayflow.topics import Topics, apply_topics, load_topics
from tests.replay_code import changed, original

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
INSTANCES = 1000


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": settings.bootstrap,
        "REPLAYFLOW_NAMESPACE": settings.namespace,
    }
    return subprocess.run(
        [sys.executable, "-m", "replayflow.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def recorded(kafka_bootstrap: str) -> Iterator[Settings]:
    settings = Settings(
        bootstrap=kafka_bootstrap, namespace="t" + uuid.uuid4().hex[:10], partitions=3
    )
    apply_topics(settings.bootstrap, load_topics(settings))
    env = Environment(original)
    for n in range(INSTANCES):
        env.start("rc-order", n, id=f"order-{n}")
    env.advance("2m")  # every tenth still waits for "go"
    topic = Topics(settings).history
    deliver(
        clients.producer(settings),
        [Record(topic, codec.encode(e), key=e.instance_id.encode()) for e in env.facts],
    )
    try:
        yield settings
    finally:
        admin = clients.admin(settings)
        mine = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.namespace)]
        for future in admin.delete_topics(mine, operation_timeout=30).values():
            future.result()


def test_a_code_change_is_found_in_exactly_the_instances_it_breaks(recorded: Settings) -> None:
    same = cli(recorded, "replay", "--all", "-m", "tests.replay_code.original", "--workers", "2")
    assert same.returncode == 0, same.stdout[-2000:] + same.stderr
    assert f"{INSTANCES} instances replayed" in same.stdout
    assert f"{INSTANCES} identical, 0 different" in same.stdout

    broken = cli(recorded, "replay", "--all", "-m", "tests.replay_code.changed", "--workers", "2")
    assert broken.returncode == 1, broken.stderr
    different = [line.split()[0] for line in broken.stdout.splitlines() if "DIFFERENT" in line]
    assert sorted(different) == sorted(f"order-{n}" for n in changed.CHANGED)
    assert f"{INSTANCES - 3} identical, 3 different" in broken.stdout
    lines = broken.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("order-7  DIFFERENT")))
    assert "step='second'" in lines[at + 1] and lines[at + 1].strip().startswith("history:")
    assert "step='second-renamed'" in lines[at + 2]

    # Patched code replays every old history (the old path where they ran past it).
    patched = cli(recorded, "replay", "--all", "-m", "tests.replay_code.patched", "--workers", "2")
    assert patched.returncode == 0, patched.stdout[-2000:] + patched.stderr


def test_filters_and_json(recorded: Settings) -> None:
    waiting = cli(
        recorded,
        "replay",
        "--all",
        "--status",
        "running",
        "--workflow",
        "rc-order",
        "-m",
        "tests.replay_code.changed",
        "--json",
        "--workers",
        "1",
    )
    assert waiting.returncode == 0, waiting.stderr  # 7, 77, 777 have ended
    rows = [json.loads(line) for line in waiting.stdout.splitlines()]
    assert len(rows) == INSTANCES // 10 and all(r["identical"] for r in rows)
    assert "100 instances replayed" in waiting.stderr
    nothing = cli(
        recorded, "replay", "--all", "--workflow", "other", "-m", "tests.replay_code.original"
    )
    assert nothing.returncode == 0 and "0 instances replayed" in nothing.stdout


def test_an_exported_history_is_a_regression_fixture(recorded: Settings, tmp_path: Path) -> None:
    path = tmp_path / "order-7.json"
    exported = cli(recorded, "history", "order-7", "--json", "-o", str(path))
    assert exported.returncode == 0, exported.stderr
    testing.assert_replays(path, original)
    with pytest.raises(AssertionError, match=r"order-7\.json"):
        testing.assert_replays(tmp_path, changed)
    printed = cli(recorded, "history", "order-7", "--json")
    assert json.loads(printed.stdout) == json.loads(path.read_text())
