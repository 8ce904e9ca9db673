"""The read model says what an instance waits for (from real histories of the test
environment): a named sleep until its due time, an event wait until its timeout, a step
retrying at a time (attempt n of m, with the last error), a step running; and the API
answers payloads as JSON values, errors with their traceback apart."""

from __future__ import annotations

import json
from typing import Any

import replayflow as rf
from replayflow.api import projection as p
from replayflow.api import values
from replayflow.testing import Environment


@rf.step(retry=rf.Retry(limit=3, delay="1m", backoff="constant", jitter=False))
def flaky(n: int) -> int:
    if rf.current_step().attempt < 3:
        raise ConnectionError("the bank is down")
    return n


@rf.workflow(name="w_sleeper")
async def sleeper(ctx: rf.Context, _: Any) -> Any:
    await ctx.sleep("cool-off", "1h")
    return await ctx.wait_for_event("approval", timeout="7d")


@rf.workflow(name="w_retrier")
async def retrier(ctx: rf.Context, _: Any) -> Any:
    return await ctx.step("charge", flaky, 5)


def row_of(env: Environment, instance_id: str) -> dict[str, Any]:
    store = p.fold_all(env.history(instance_id))
    return p.public_instance(json.loads(store[p.instance_key(instance_id)]))


def test_a_named_sleep_then_an_event_wait() -> None:
    env = Environment(sleeper)
    env.start(sleeper, {"n": 1}, id="s-1")
    row = row_of(env, "s-1")
    [sleep] = row["waiting"]
    assert (sleep["kind"], sleep["key"], row["waiting_count"]) == ("sleep", "cool-off", 1)
    assert sleep["until"] == env.now + 3_600_000
    assert row["input"] == {"n": 1}  # a JSON value, not JSON text
    env.advance("1h")
    row = row_of(env, "s-1")
    [wait] = row["waiting"]
    assert (wait["kind"], wait["key"], wait["until"]) == (
        "wait",
        "approval",
        env.now + 7 * 86_400_000,
    )
    env.send_event("s-1", "approval", {"ok": True})
    row = row_of(env, "s-1")
    assert (row["waiting"], row["waiting_count"], row["output"]) == ([], 0, {"ok": True})


def test_a_step_retrying_says_when_which_attempt_of_how_many_and_why() -> None:
    env = Environment(retrier, flaky)
    env.start(retrier, None, id="r-1")
    env.run_until_idle()
    row = row_of(env, "r-1")
    [retry] = row["waiting"]
    assert (retry["kind"], retry["key"], retry["status"]) == ("step", "charge", "backoff")
    assert (retry["attempt"], retry["max_attempts"]) == (2, 3)
    assert retry["until"] == env.now + 60_000
    assert retry["error"] == {"type": "ConnectionError", "message": "the bank is down"}
    env.advance("1m")
    env.advance("1m")
    assert env.result("r-1") == 5
    assert row_of(env, "r-1")["waiting_count"] == 0


def test_the_sleep_keeps_its_name_in_the_timeline() -> None:
    env = Environment(sleeper)
    env.start(sleeper, None, id="t-1")
    store = p.fold_all(env.history("t-1"))
    [entry] = [json.loads(v) for k, v in store.items() if k.startswith(p.calls_prefix("t-1"))]
    assert (entry["kind"], entry["key"], entry["timer"]) == ("sleep", "cool-off", "sleep/0")


def test_errors_show_details_and_traceback_apart() -> None:
    info = {
        "type": "StepFailed",
        "message": "step 'x' failed",
        "retryable": False,
        "details": json.dumps(
            {
                "step": "x",
                "attempts": 3,
                "cause": {"type": "E", "message": "m", "traceback": "Traceback (step)"},
                "traceback": "Traceback (workflow)",
            }
        ),
    }
    shown = values.error(info)
    assert shown["traceback"] == "Traceback (workflow)"
    assert shown["cause_traceback"] == "Traceback (step)"
    assert shown["details"] == {"step": "x", "attempts": 3, "cause": {"type": "E", "message": "m"}}


def test_a_preview_cut_short_stays_text_and_says_so() -> None:
    entry = values.decoded({"input": '{"a": "xxx…', "result": "[1, 2]"})
    assert entry["input"] == '{"a": "xxx…' and entry["truncated"] == ["input"]
    assert entry["result"] == [1, 2]
