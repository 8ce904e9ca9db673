"""Committed histories (tests/fixtures/histories/*.json), replayed on every run against
the current code: a change that would break replay of instances already in flight fails
here. This test only reads the fixtures; it never writes them. Re-record on purpose
only, as a separate command: `make record-histories` (`python -m tests.fixtures.record`),
then review the diff of the JSON files before committing it."""

from __future__ import annotations

import json

import pytest

import replayflow as rf
from replayflow.core.messages import ErrorInfo, StepFailed
from replayflow.core.replay import replay
from tests.fixtures import record
from tests.workflows import definitions

REGISTRY = rf.Registry.of(definitions)
NAMES = sorted(record.SCENARIOS)


def test_every_scenario_has_a_committed_fixture() -> None:
    committed = sorted(p.stem for p in record.HISTORIES.glob("*.json"))
    assert committed == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_recorded_history_replays_identically(name: str) -> None:
    history = record.load(name)
    assert history, f"{name}.json is empty"
    report = replay(history, REGISTRY)
    assert report.identical, f"{name}: {report.difference}"
    assert report.state is not None and report.state.status.is_final


@pytest.mark.parametrize("name", NAMES)
def test_fixture_json_round_trips(name: str) -> None:
    text = (record.HISTORIES / f"{name}.json").read_text()
    committed = json.loads(text)
    history = record.from_json(committed)
    again = record.to_json(history)
    # Fields added to a record since the fixture was recorded come back at their default.
    assert [
        {k: v for k, v in e.items() if k in c} for e, c in zip(again, committed, strict=True)
    ] == committed
    assert all(
        e[k] is None for e, c in zip(again, committed, strict=True) for k in e.keys() - c.keys()
    )
    assert [e.seq for e in history] == list(range(1, len(history) + 1))


def test_the_fixtures_cover_what_they_claim() -> None:
    checkout = [type(e).__name__ for e in record.load("checkout")]
    for kind in ("StepFailed", "TimerStarted", "EventReceived", "WorkflowCompleted"):
        assert kind in checkout
    assert checkout[1:3] == ["StepScheduled", "StepScheduled"]  # the parallel pair
    cancelled = [type(e).__name__ for e in record.load("cancelled_with_cleanup")]
    assert cancelled[-4:] == [
        "CancelRequested",
        "StepScheduled",
        "StepCompleted",
        "WorkflowCancelled",
    ]
    timed_out = record.load("event_timeout")
    assert [type(e).__name__ for e in timed_out][-2:] == ["TimerFired", "WorkflowCompleted"]
    failed = [e for e in record.load("compensated") if isinstance(e, StepFailed)]
    assert [f.error for f in failed] == [
        ErrorInfo(type="CardDeclined", message="amount 500 is over the card limit", retryable=False)
    ]


def test_a_fixture_replayed_against_changed_code_is_caught() -> None:
    @rf.workflow(name="suite_checkout")
    async def reordered(ctx: rf.Context, order: dict[str, object]) -> object:
        # The same steps, but one at a time instead of in parallel.
        await ctx.step("reserve", definitions.reserve, order["item"])
        await ctx.step("fraud_check", definitions.fraud_check, order)
        return None

    registry = rf.Registry.of(reordered, definitions.reserve, definitions.fraud_check)
    report = replay(record.load("checkout"), registry)
    assert not report.identical
    assert report.position == 2  # fraud_check was scheduled alongside reserve
