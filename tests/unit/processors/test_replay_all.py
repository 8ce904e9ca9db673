"""Replaying many recorded histories: grouping and selecting them, reporting the first
difference with both sides, and the process pool giving what one process gives."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import pytest

from replayflow import testing
from replayflow.cli.replay import Code, parse_since
from replayflow.core import history_files
from replayflow.core.errors import ValidationError
from replayflow.core.messages import HistoryEvent
from replayflow.core.state import Status
from replayflow.processors.replay_all import Selection, group, replay_many
from replayflow.testing import Environment
from tests.replay_code import changed, original

ORIGINAL = Code(("tests.replay_code.original",))
CHANGED = Code(("tests.replay_code.changed",))


def record(count: int) -> Environment:
    """`count` instances of the original code: most end, every tenth waits for "go"."""
    env = Environment(original)
    for n in range(count):
        env.start("rc-order", n, id=f"order-{n}")
    env.advance("2m")
    return env


def flat(env: Environment) -> list[HistoryEvent]:
    return [event for history in env.histories.values() for event in history]


@pytest.fixture(scope="module")
def recorded() -> Environment:
    return record(800)


def test_group_selects_whole_matching_histories(recorded: Environment) -> None:
    events = flat(recorded)
    everything = group(events, Selection())
    assert len(everything.histories) == 800 and everything.events == len(events)
    waiting = group(events, Selection(statuses=frozenset({Status.RUNNING})))
    assert sorted(waiting.histories) == sorted(f"order-{n}" for n in range(0, 800, 10))
    assert group(events, Selection(workflow="other")).histories == {}
    late = recorded.now + 1
    assert group(events, Selection(since=late)).histories == {}
    # A history whose first facts are gone (retention) is left out and named.
    cut = [e for e in events if not (e.instance_id == "order-3" and e.seq < 3)]
    partial = group(cut, Selection())
    assert "order-3" not in partial.histories and partial.partial == ["order-3"]


def test_a_code_change_is_reported_for_exactly_the_instances_it_changes(
    recorded: Environment,
) -> None:
    found = group(flat(recorded), Selection())
    same = replay_many(found.histories, ORIGINAL, workers=1)
    assert all(r.identical for r in same)
    results = replay_many(found.histories, CHANGED, workers=1)
    different = {r.instance_id: r for r in results if not r.identical}
    assert sorted(different) == sorted(f"order-{n}" for n in changed.CHANGED)
    outcome = different["order-7"]
    assert outcome.recorded is not None and "step='second'" in outcome.recorded
    assert outcome.produced is not None and "step='second-renamed'" in outcome.produced
    assert outcome.after is not None and outcome.after.startswith("TimerFired(")


def test_worker_processes_give_what_one_process_gives(recorded: Environment) -> None:
    found = group(flat(recorded), Selection())
    chunks: list[int] = []
    pooled = replay_many(
        found.histories, CHANGED, workers=2, on_done=lambda done: chunks.append(len(done))
    )
    alone = replay_many(found.histories, CHANGED, workers=1)
    assert pooled == alone
    assert sum(chunks) == 800


def test_replaying_on_another_version(recorded: Environment) -> None:
    found = group(flat(recorded), Selection(statuses=frozenset({Status.RUNNING})))
    results = replay_many(
        found.histories, Code(("tests.replay_code.patched",)), workers=1, to_version="2"
    )
    incompatible = sorted(r.instance_id for r in results if not r.identical)
    assert incompatible == sorted(f"order-{n}" for n in range(0, 800, 20))


def test_history_files_round_trip_and_replay_as_fixtures(
    recorded: Environment, tmp_path: Path
) -> None:
    for n in (1, 7, 10):
        history = recorded.history(f"order-{n}")
        text = history_files.dumps(history)
        assert history_files.loads(text) == history
        lines = "\n".join(text.strip().splitlines()[1:-1]).replace("},", "}")
        assert history_files.loads(lines) == history  # JSON lines read the same
        (tmp_path / f"order-{n}.json").write_text(text)
    testing.assert_replays(tmp_path, original)
    testing.assert_replays(tmp_path / "order-1.json", original)
    with pytest.raises(AssertionError, match=r"(?s)1 recorded histories .*order-7.json"):
        testing.assert_replays(tmp_path, changed)
    assert [p.name for p in testing.history_files(tmp_path)] == [
        "order-1.json",
        "order-10.json",
        "order-7.json",
    ]


def test_bad_history_files_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown event type 'Nope'"):
        history_files.loads('[{"type": "Nope", "instance_id": "i", "seq": 1, "at": 0}]')
    with pytest.raises(ValidationError, match="not a history file"):
        history_files.loads("{oops")
    with pytest.raises(ValidationError, match="no history files"):
        testing.history_files(tmp_path)


def test_the_project_fixtures_replay_through_the_public_function() -> None:
    definitions = importlib.import_module("tests.workflows.definitions")
    folder = Path(__file__).resolve().parents[2] / "fixtures" / "histories"
    testing.assert_replays(folder, definitions)


def test_since_takes_times_and_durations() -> None:
    assert parse_since("2026-01-01T00:00:00") == 1767225600000
    assert parse_since("2026-01-01T01:00:00+01:00") == 1767225600000
    assert parse_since("1h", now_ms=10_000_000) == 10_000_000 - 3_600_000
    assert parse_since(None) is None


def test_outcomes_are_plain_data(recorded: Environment) -> None:
    found = group(flat(recorded), Selection(workflow="rc-order"))
    [result] = replay_many({"order-7": found.histories["order-7"]}, CHANGED, workers=1)
    assert dataclasses.asdict(result)["identical"] is False
