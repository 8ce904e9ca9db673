"""The upgrade tool's loop over an in-process engine: compatible instances move, the
others stay with their reason, and an instance that moves on between the check and the
command is checked again (or reported when it ended meanwhile)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from replayflow.cli.replay import Code
from replayflow.core.messages import HistoryEvent, UpgradeRefused, UpgradeWorkflow
from replayflow.processors.replay_all import Selection, group
from replayflow.processors.upgrade import Result, run
from replayflow.testing import Environment
from tests.replay_code import original, patched

CODE = Code(("tests.replay_code.patched",))


class EnvLink:
    """The engine of rf.testing as the tool's link; `meanwhile` runs between the check
    and the commands, as concurrent traffic would."""

    def __init__(self, env: Environment, meanwhile: Callable[[], None] | None = None) -> None:
        self.env = env
        self.meanwhile = meanwhile
        self.sent: list[UpgradeWorkflow] = []

    def histories(self, selection: Selection) -> dict[str, list[HistoryEvent]]:
        return group(self.env.facts, selection).histories

    def upgrade(
        self, commands: Sequence[UpgradeWorkflow], timeout: float
    ) -> dict[str, list[HistoryEvent]]:
        if self.meanwhile is not None:
            self.meanwhile()
            self.meanwhile = None
        for command in commands:
            self.sent.append(command)
            self.env.deliver(command)
        return {
            c.instance_id: [e for e in self.env.history(c.instance_id) if e.seq > c.checked_seq]
            for c in commands
        }


def engine() -> Environment:
    """Instances of version 1 (every tenth waits for "go"); version 2 deployed too."""
    env = Environment(original)
    for n in range(60):
        env.start("rc-order", n, id=f"order-{n}", version="1")
    env.advance("2m")
    env.registry.add(patched.order_v2)
    return env


def by_id(results: list[Result]) -> dict[str, Result]:
    return {r.instance_id: r for r in results}


def test_compatible_instances_move_and_the_others_stay() -> None:
    env = engine()
    results = by_id(run(EnvLink(env), CODE, "rc-order", "1", "2", workers=1))
    assert sorted(results) == [f"order-{n}" for n in (0, 10, 20, 30, 40, 50)]
    moved = sorted(i for i, r in results.items() if r.moved)
    assert moved == ["order-10", "order-30", "order-50"]  # the sleep was renamed for 0, 20, 40
    assert "sleep 'cool-down'" in (results["order-20"].reason or "")
    assert {env.states[i].info.version for i in moved} == {"2"}
    assert env.states["order-20"].info.version == "1"
    env.send_event("order-10", "go")
    assert env.result("order-10") == 10 + 1 + 2 + 100  # version 2's new step ran
    env.send_event("order-20", "go")
    assert env.result("order-20") == 20 + 1 + 2  # still version 1


def test_a_dry_run_moves_nothing() -> None:
    env = engine()
    link = EnvLink(env)
    results = by_id(run(link, CODE, "rc-order", "1", "2", workers=1, dry_run=True))
    assert sorted(i for i, r in results.items() if r.would_move) == [
        "order-10",
        "order-30",
        "order-50",
    ]
    assert link.sent == [] and not any(r.moved for r in results.values())


def test_an_instance_that_moves_on_during_the_upgrade_is_checked_again() -> None:
    env = engine()

    def traffic() -> None:
        env.send_event("order-10", "note")  # kept for later: still compatible
        env.send_event("order-30", "go")  # it completes before the command arrives

    link = EnvLink(env, meanwhile=traffic)
    results = by_id(run(link, CODE, "rc-order", "1", "2", workers=1))
    assert results["order-10"].moved and results["order-10"].checks == 2
    refused = [e for e in env.history("order-10") if isinstance(e, UpgradeRefused)]
    assert len(refused) == 1
    assert env.states["order-10"].info.version == "2"
    assert not results["order-30"].moved
    assert results["order-30"].reason == "it ended (COMPLETED) during the upgrade"
    assert results["order-50"].moved and results["order-50"].checks == 1
    assert [c.instance_id for c in link.sent].count("order-10") == 2
