"""ctx.patched and ctx.deprecate_patch: new instances and old ones that had not reached
the patch take the new path; old ones that ran past it keep the old one; markers are
recorded facts, so replays and re-folds decide as the live run did."""

from __future__ import annotations

from typing import Any

import pytest

import replayflow as rf
from replayflow.core.decide import Decider
from replayflow.core.definitions import WorkflowDef
from replayflow.core.messages import PatchMarked, StepScheduled, WorkflowSuspended
from replayflow.core.replay import replay
from replayflow.core.state import CallKind, Status
from replayflow.testing import Environment


@rf.step(name="pt_charge")
def charge(order: str) -> str:
    return f"charged {order}"


@rf.step(name="pt_fraud")
def fraud(order: str) -> str:
    return f"checked {order}"


async def _v1(ctx: rf.Context, order: str) -> list[str]:
    await ctx.wait_for_event("pay")
    charged = await ctx.step("charge", charge, order)
    await ctx.wait_for_event("ship")
    return [charged]


async def _v2(ctx: rf.Context, order: str) -> list[str]:
    await ctx.wait_for_event("pay")
    done = []
    if ctx.patched("fraud-check"):
        done.append(await ctx.step("fraud", fraud, order))
    assert ctx.patched("fraud-check") == bool(done)  # the first answer holds
    done.append(await ctx.step("charge", charge, order))
    await ctx.wait_for_event("ship")
    return done


async def _v3(ctx: rf.Context, order: str) -> list[str]:
    await ctx.wait_for_event("pay")
    ctx.deprecate_patch("fraud-check")
    done = [await ctx.step("fraud", fraud, order)]
    done.append(await ctx.step("charge", charge, order))
    await ctx.wait_for_event("ship")
    return done


async def _v4(ctx: rf.Context, order: str) -> list[str]:
    await ctx.wait_for_event("pay")
    done = [await ctx.step("fraud", fraud, order)]
    done.append(await ctx.step("charge", charge, order))
    await ctx.wait_for_event("ship")
    return done


def code(fn: Any) -> WorkflowDef:
    """One version of the code of workflow "pt_order" (same name, same version)."""
    return rf.workflow(name="pt_order", version="1")(fn)


def deploy(env: Environment, fn: Any) -> None:
    """Replace the workflow's code under the running instances, as a redeploy does:
    live coroutines go, the next decision rebuilds them from the recorded calls."""
    env.registry.workflows["pt_order"]["1"] = code(fn)
    env.decider.forget_all()


def markers(env: Environment, instance_id: str) -> list[PatchMarked]:
    return [e for e in env.history(instance_id) if isinstance(e, PatchMarked)]


def steps(env: Environment, instance_id: str) -> list[str]:
    return [e.step for e in env.history(instance_id) if isinstance(e, StepScheduled)]


def finish(env: Environment, instance_id: str) -> Any:
    env.send_event(instance_id, "pay")
    env.send_event(instance_id, "ship")
    return env.result(instance_id)


def assert_replays(env: Environment, instance_id: str) -> None:
    report = env.replay(instance_id)
    assert report.identical, report.difference


@pytest.fixture
def env() -> Environment:
    return Environment(code(_v1), charge, fraud)


def test_a_new_instance_takes_the_new_path_and_records_the_marker(env: Environment) -> None:
    deploy(env, _v2)
    env.start("pt_order", "o1", id="new")
    assert finish(env, "new") == ["checked o1", "charged o1"]
    assert [(m.patch, m.index, m.deprecated) for m in markers(env, "new")] == [
        ("fraud-check", 1, False)
    ]
    state = env.states["new"]
    assert [c.kind for c in state.calls][:2] == [CallKind.EVENT, CallKind.PATCH]
    assert_replays(env, "new")


def test_an_old_instance_that_had_not_reached_the_patch_takes_the_new_path(
    env: Environment,
) -> None:
    env.start("pt_order", "o2", id="before")  # waits for "pay", before the patch point
    deploy(env, _v2)
    assert finish(env, "before") == ["checked o2", "charged o2"]
    assert steps(env, "before") == ["fraud", "charge"]
    assert len(markers(env, "before")) == 1
    assert_replays(env, "before")


def test_an_old_instance_that_ran_past_the_patch_keeps_the_old_path(env: Environment) -> None:
    env.start("pt_order", "o3", id="past")
    env.send_event("past", "pay")  # charged under the old code; waits for "ship"
    deploy(env, _v2)
    env.send_event("past", "ship")
    assert env.result("past") == ["charged o3"]
    assert markers(env, "past") == []
    assert_replays(env, "past")


def test_a_finished_old_history_replays_on_the_patched_code(env: Environment) -> None:
    env.start("pt_order", "o4", id="done")
    assert finish(env, "done") == ["charged o4"]
    deploy(env, _v2)
    assert_replays(env, "done")  # the recorded run ran past the patch: old path


@pytest.mark.parametrize("cache_size", [0, 10_000])
def test_live_and_rebuilt_coroutines_decide_alike(cache_size: int) -> None:
    env = Environment(code(_v1), charge, fraud, cache_size=cache_size)
    env.start("pt_order", "a", id="a")
    env.start("pt_order", "b", id="b")
    env.send_event("b", "pay")
    deploy(env, _v2)
    env.start("pt_order", "c", id="c")
    results = {i: finish(env, i) for i in ("a", "c")}
    env.send_event("b", "ship")
    results["b"] = env.result("b")
    assert results == {
        "a": ["checked a", "charged a"],
        "b": ["charged b"],
        "c": ["checked c", "charged c"],
    }


def test_deprecate_patch_accepts_histories_with_and_without_the_marker(
    env: Environment,
) -> None:
    deploy(env, _v2)
    env.start("pt_order", "o5", id="patched")
    env.send_event("patched", "pay")  # marker recorded; waits for "ship"
    deploy(env, _v3)
    env.send_event("patched", "ship")
    assert env.result("patched") == ["checked o5", "charged o5"]
    assert_replays(env, "patched")
    env.start("pt_order", "o6", id="deprecated")
    assert finish(env, "deprecated") == ["checked o6", "charged o6"]
    assert [m.deprecated for m in markers(env, "deprecated")] == [True]
    assert_replays(env, "deprecated")


def test_code_without_the_call_skips_deprecated_markers_only(env: Environment) -> None:
    deploy(env, _v3)
    env.start("pt_order", "o7", id="deprecated")
    env.send_event("deprecated", "pay")
    deploy(env, _v2)  # a patched() marker made by ctx.patched cannot be skipped ...
    env.start("pt_order", "o8", id="patched")
    env.send_event("patched", "pay")
    deploy(env, _v4)  # ... a deprecated one can
    env.send_event("deprecated", "ship")
    assert env.result("deprecated") == ["checked o7", "charged o7"]
    assert_replays(env, "deprecated")
    env.send_event("patched", "ship")
    assert env.status("patched") is Status.SUSPENDED
    suspended = [e for e in env.history("patched") if isinstance(e, WorkflowSuspended)]
    assert "patch 'fraud-check'" in suspended[0].error.message


def test_replay_follows_the_recorded_markers_not_the_live_rule() -> None:
    """Re-folding a history, the frontier is not new: the recorded run decided there.
    Without the recorded markers the patched code would take the new path for an old
    history; with them it takes the path the history shows."""
    env = Environment(code(_v1), charge, fraud)
    env.start("pt_order", "o9", id="old")
    finish(env, "old")
    history = env.history("old")
    patched = rf.Registry.of(code(_v2), charge, fraud)
    assert replay(history, patched).identical
    live_rule = replay(history, patched, decider=Decider(patched, cache_size=0))
    assert not live_rule.identical
    assert "PatchMarked" in (live_rule.difference or "")


def test_patched_outside_a_running_workflow_is_an_error() -> None:
    ctx = rf.Context("i", "w", "1", 0)
    with pytest.raises(rf.ReplayflowError, match="running workflow"):
        ctx.patched("x")
    with pytest.raises(rf.ValidationError):
        ctx.deprecate_patch("")
