"""The heartbeat file of a process without HTTP, and `replayflow health` on it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from replayflow.cli import main
from replayflow.processors.heartbeat import Heartbeat, check


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_heartbeat_is_written_at_most_every_interval(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "health"
    beat = Heartbeat("worker", path, interval=2, clock=clock)
    beat.beat(running=3)
    assert check(path, 30, now=clock.now)[0]
    clock.now += 1
    beat.beat(running=4)  # too soon: not written
    assert "running=3" in check(path, 30, now=clock.now)[1]
    clock.now += 40
    healthy, said = check(path, 30, now=clock.now)
    assert not healthy and said.startswith("stale heartbeat (41 s old, over 30 s)")
    beat.beat(running=5)
    assert check(path, 30, now=clock.now) == (True, check(path, 30, now=clock.now)[1])


def test_without_a_file_nothing_is_written(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("REPLAYFLOW_HEALTH_FILE", raising=False)
    Heartbeat("worker").beat()
    assert list(tmp_path.iterdir()) == []


def test_the_health_command(tmp_path: Path) -> None:
    path = tmp_path / "health"
    missing = CliRunner().invoke(main, ["health", "--file", str(path)])
    assert missing.exit_code == 1 and "no heartbeat" in missing.output
    Heartbeat("orchestrator o-1", path).beat(partitions=12)
    fresh = CliRunner().invoke(main, ["health", "--file", str(path)])
    assert fresh.exit_code == 0 and "role=orchestrator o-1" in fresh.output
