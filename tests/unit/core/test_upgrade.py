"""UpgradeWorkflow in the fold, and core.upgrade's check: an instance moves to another
version only while the replay check still covers it, exactly once."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.facts import summarize
from replayflow.core.messages import UpgradeRefused, UpgradeWorkflow, WorkflowUpgraded
from replayflow.core.state import Status
from replayflow.core.upgrade import check, replay_on
from replayflow.testing import Environment


@rf.step(name="up_charge")
def charge(order: str) -> str:
    return f"charged {order}"


@rf.step(name="up_notify")
def notify(order: str) -> str:
    return f"notified {order}"


@rf.workflow(name="up_order", version="1")
async def order_v1(ctx: rf.Context, order: str) -> list[str]:
    await ctx.wait_for_event("pay")
    done = [await ctx.step("charge", charge, order)]
    await ctx.wait_for_event("ship")
    return done


@rf.workflow(name="up_order", version="2")
async def order_v2(ctx: rf.Context, order: str) -> list[str]:
    await ctx.wait_for_event("pay")
    done = [await ctx.step("charge", charge, order)]
    done.append(await ctx.step("notify", notify, order))  # new after the charge
    await ctx.wait_for_event("ship")
    return done


@pytest.fixture
def env() -> Environment:
    return Environment(order_v1, order_v2, charge, notify)


def start_v1(env: Environment, instance_id: str) -> None:
    env.start("up_order", instance_id, id=instance_id, version="1")


def upgrade_command(env: Environment, instance_id: str) -> UpgradeWorkflow:
    found = check(env.history(instance_id), env.registry, "2")
    assert found.compatible, found.reason
    return found.command("1", "2")


def test_a_compatible_instance_moves_and_runs_the_new_code(env: Environment) -> None:
    start_v1(env, "o1")  # waits for "pay": nothing v2 does differently has happened
    env.deliver(upgrade_command(env, "o1"))
    upgraded = [e for e in env.history("o1") if isinstance(e, WorkflowUpgraded)]
    assert [(u.from_version, u.to_version, u.checked_seq) for u in upgraded] == [("1", "2", 2)]
    assert env.states["o1"].info.version == "2"
    env.send_event("o1", "pay")
    env.send_event("o1", "ship")
    assert env.result("o1") == ["charged o1", "notified o1"]
    assert env.completions["o1"].version == "2"
    report = env.replay("o1")  # the upgrade is a recorded fact: the history replays
    assert report.identical, report.difference
    summary = summarize(env.history("o1"))
    assert summary is not None and summary.version == "2" and len(summary.upgrades) == 1


def test_an_instance_past_the_change_is_not_compatible(env: Environment) -> None:
    start_v1(env, "o2")
    env.send_event("o2", "pay")  # charged under v1; v2 would now run "notify"
    found = check(env.history("o2"), env.registry, "2")
    assert not found.compatible
    assert "notify" in (found.reason or "")


def test_an_instance_that_moved_on_after_the_check_is_refused_then_checked_again(
    env: Environment,
) -> None:
    start_v1(env, "o3")
    command = upgrade_command(env, "o3")
    env.send_event("o3", "note", "kept for later")  # progress the check did not see
    env.deliver(command)
    refused = [e for e in env.history("o3") if isinstance(e, UpgradeRefused)]
    assert len(refused) == 1 and "moved on after the check" in refused[0].reason
    assert env.states["o3"].info.version == "1"
    assert env.replay("o3").identical  # a refusal is a fact too
    env.deliver(upgrade_command(env, "o3"))  # the history with the refusal, checked again
    assert env.states["o3"].info.version == "2"


def test_an_instance_that_moved_past_the_change_stays(env: Environment) -> None:
    start_v1(env, "o4")
    command = upgrade_command(env, "o4")
    env.send_event("o4", "pay")
    env.deliver(command)
    assert env.states["o4"].info.version == "1"
    assert not check(env.history("o4"), env.registry, "2").compatible
    env.send_event("o4", "ship")
    assert env.result("o4") == ["charged o4"]


def test_the_upgrade_happens_once(env: Environment) -> None:
    start_v1(env, "o5")
    command = upgrade_command(env, "o5")
    env.deliver(command)
    seq = env.states["o5"].info.seq
    env.deliver(command)  # redelivered: the instance runs v2 already
    assert env.states["o5"].info.seq == seq
    assert sum(isinstance(e, WorkflowUpgraded) for e in env.history("o5")) == 1


def test_what_the_fold_refuses_or_rejects(env: Environment) -> None:
    start_v1(env, "o6")
    seq = env.states["o6"].info.seq
    env.deliver(UpgradeWorkflow("o6", from_version="0", to_version="2", checked_seq=seq))
    refused = [e for e in env.history("o6") if isinstance(e, UpgradeRefused)]
    assert "runs version '1', not '0'" in refused[-1].reason
    env.deliver(UpgradeWorkflow("o6", "1", "9", env.states["o6"].info.seq))
    assert "not deployed" in env.rejected[-1][1]
    env.deliver(UpgradeWorkflow("nobody", "1", "2", 1))
    assert "no instance" in env.rejected[-1][1]
    env.send_event("o6", "pay")
    env.send_event("o6", "ship")
    env.result("o6")
    env.deliver(UpgradeWorkflow("o6", "1", "2", env.states["o6"].info.seq))
    assert "has ended" in env.rejected[-1][1]
    assert env.status("o6") is Status.COMPLETED


def test_a_history_without_a_start_cannot_be_checked(env: Environment) -> None:
    start_v1(env, "o7")
    report = replay_on(env.history("o7")[1:], env.registry, "2")
    assert not report.identical
