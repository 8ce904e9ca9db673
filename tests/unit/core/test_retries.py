"""Retries: limit, delay, backoff, max_delay, deterministic jitter; NonRetryableError;
StepFailed in the workflow when attempts run out, catchable for compensation."""

from __future__ import annotations

import pytest

import replayflow as rf
from replayflow.core.errors import traceback_of
from replayflow.core.messages import ErrorInfo, FailStep, StartWorkflow, StepFailed, StepScheduled
from replayflow.core.policy import DEFAULT_RETRY, Retry, unit_draw
from replayflow.testing import Environment

from .helpers import T0, Fold, kinds


@rf.step(name="r_unreliable", retry=Retry(limit=4, delay="2s", backoff="constant", jitter=False))
def unreliable() -> str:
    attempt = rf.current_step().attempt
    if attempt < 3:
        raise ConnectionError(f"attempt {attempt} lost the connection")
    return f"ok on {attempt}"


@rf.step(name="r_always_fails", retry=Retry(limit=3, delay="1s", backoff="constant", jitter=False))
def always_fails() -> None:
    raise RuntimeError("still broken")


class Declined(rf.NonRetryableError):
    pass


@rf.step(name="r_declines")
def declines() -> None:
    raise Declined("card declined")


@rf.step(name="r_undo")
def undo() -> str:
    return "undone"


@rf.workflow(name="r_unreliable_flow")
async def unreliable_flow(ctx: rf.Context) -> str:
    return str(await ctx.step("call", unreliable))


@rf.workflow(name="r_failing_flow")
async def failing_flow(ctx: rf.Context) -> None:
    await ctx.step("call", always_fails)


@rf.workflow(name="r_compensating_flow")
async def compensating_flow(ctx: rf.Context) -> dict[str, object]:
    try:
        await ctx.step("call", always_fails)
    except rf.StepFailed as exc:
        undone = await ctx.step("undo", undo)
        return {
            "caught": exc.step,
            "attempts": exc.attempts,
            "cause": exc.error.type,
            "undo": undone,
        }
    return {"caught": None}


@rf.workflow(name="r_declining_flow")
async def declining_flow(ctx: rf.Context) -> None:
    await ctx.step("charge", declines)


@rf.workflow(name="r_policy_flow")
async def policy_flow(ctx: rf.Context, policy: dict[str, object]) -> None:
    retry = Retry(
        limit=int(str(policy["limit"])),
        delay=str(policy["delay"]),
        backoff=policy["backoff"],  # type: ignore[arg-type]
        max_delay=policy.get("max_delay"),  # type: ignore[arg-type]
        jitter=bool(policy.get("jitter", False)),
    )
    await ctx.step("call", always_fails, retry=retry)


def failures(env: Environment, instance_id: str) -> list[StepFailed]:
    return [e for e in env.history(instance_id) if isinstance(e, StepFailed)]


# -- retries in a running workflow --------------------------------------------------------


def test_a_failing_step_is_retried_until_it_succeeds() -> None:
    env = Environment(unreliable_flow)
    handle = env.start(unreliable_flow)
    assert handle.result() == "ok on 3"
    history = env.history(handle.id)
    assert [(e.step, e.attempt) for e in history if isinstance(e, StepScheduled)] == [
        ("call", 1),
        ("call", 2),
        ("call", 3),
    ]
    failed = failures(env, handle.id)
    assert [(f.attempt, f.error.type, f.retry_at - f.at) for f in failed if f.retry_at] == [
        (1, "ConnectionError", 2000),
        (2, "ConnectionError", 2000),
    ]


def test_the_next_attempt_waits_for_its_retry_timer() -> None:
    env = Environment(unreliable_flow)
    handle = env.start(unreliable_flow)
    assert len(failures(env, handle.id)) == 1  # attempt 1 failed, attempt 2 not yet sent
    env.advance("1999ms")
    assert len(failures(env, handle.id)) == 1
    env.advance("1ms")
    assert len(failures(env, handle.id)) == 2  # attempt 2 ran at exactly +2s and failed


def test_env_fail_step_injects_failures_that_are_retried() -> None:
    env = Environment(compensating_flow)
    env.fail_step("undo", times=2)
    handle = env.start(compensating_flow)
    assert handle.result()["undo"] == "undone"
    undo_failures = [f for f in failures(env, handle.id) if f.step == "undo"]
    assert [f.error.type for f in undo_failures] == ["InjectedFailure"] * 2


def test_running_out_of_attempts_fails_the_instance_with_the_error_recorded() -> None:
    env = Environment(failing_flow)
    handle = env.start(failing_flow)
    with pytest.raises(rf.WorkflowError) as caught:
        handle.result()
    assert caught.value.status == rf.Status.FAILED
    error = caught.value.error
    assert error is not None and error.type == "StepFailed"
    assert "'call' failed after 3 attempt(s): RuntimeError: still broken" in error.message
    last = failures(env, handle.id)[-1]
    assert (last.attempt, last.retry_at) == (3, None)
    assert env.states[handle.id].info.error == error


def test_step_failed_can_be_caught_for_compensation() -> None:
    env = Environment(compensating_flow)
    handle = env.start(compensating_flow)
    assert handle.result() == {
        "caught": "call",
        "attempts": 3,
        "cause": "RuntimeError",
        "undo": "undone",
    }
    assert env.status(handle.id) == rf.Status.COMPLETED


def test_non_retryable_error_stops_retrying_at_once() -> None:
    env = Environment(declining_flow)
    handle = env.start(declining_flow)
    with pytest.raises(rf.WorkflowError):
        handle.result()
    history = env.history(handle.id)
    assert sum(isinstance(e, StepScheduled) for e in history) == 1
    (failed,) = failures(env, handle.id)
    assert (failed.error.type, failed.error.message, failed.error.retryable) == (
        "Declined",
        "card declined",
        False,
    )
    # The step's traceback is recorded with its source lines (workers may read files).
    trace = traceback_of(failed.error)
    assert trace is not None and 'raise Declined("card declined")' in trace
    assert failed.retry_at is None


def test_a_non_retryable_fail_step_from_a_worker_is_final() -> None:
    fold = Fold.of(unreliable_flow, unreliable)
    fold(StartWorkflow(instance_id="w", workflow="r_unreliable_flow"))
    decision = fold(
        FailStep(
            instance_id="w",
            step="call",
            attempt=1,
            error=ErrorInfo(type="Fatal", message="no", retryable=False),
        )
    )
    assert kinds(decision.events) == ["StepFailed", "WorkflowFailed"]
    assert fold.status == "FAILED"


@pytest.mark.parametrize(
    ("policy", "waits"),
    [
        ({"limit": 4, "delay": "1s", "backoff": "constant"}, [1000, 1000, 1000]),
        ({"limit": 4, "delay": "1s", "backoff": "linear"}, [1000, 2000, 3000]),
        ({"limit": 5, "delay": "1s", "backoff": "exponential"}, [1000, 2000, 4000, 8000]),
        (
            {"limit": 5, "delay": "1s", "backoff": "exponential", "max_delay": "3s"},
            [1000, 2000, 3000, 3000],
        ),
    ],
)
def test_backoff_sets_the_retry_time(policy: dict[str, object], waits: list[int]) -> None:
    env = Environment(policy_flow)
    handle = env.start(policy_flow, policy)
    with pytest.raises(rf.WorkflowError):
        handle.result()
    failed = failures(env, handle.id)
    assert [f.retry_at - f.at for f in failed if f.retry_at is not None] == waits
    assert len(failed) == policy["limit"]
    # Each attempt after the first ran when its retry timer was due.
    scheduled = [e for e in env.history(handle.id) if isinstance(e, StepScheduled)]
    assert [s.at for s in scheduled[1:]] == [f.retry_at for f in failed[:-1]]


def test_jitter_is_deterministic_and_within_half_to_full_delay() -> None:
    policy = {
        "limit": 6,
        "delay": "10s",
        "backoff": "exponential",
        "jitter": True,
        "max_delay": None,
    }

    def waits(instance_id: str) -> list[int]:
        env = Environment(policy_flow)
        env.start(policy_flow, policy, id=instance_id)
        env.run_until_idle()
        with pytest.raises(rf.WorkflowError):
            env.result(instance_id)
        return [f.retry_at - f.at for f in failures(env, instance_id) if f.retry_at]

    first = waits("jitter-a")
    assert first == waits("jitter-a")  # the same on every run
    assert first != waits("jitter-b")  # and drawn per instance
    for attempt, wait in enumerate(first, start=1):
        full = 10_000 * 2 ** (attempt - 1)
        assert full // 2 <= wait < full


# -- the policy itself --------------------------------------------------------------------


def test_retry_delay_ms_without_jitter() -> None:
    assert [
        Retry(delay="1s", backoff="constant", jitter=False).delay_ms(n, "s") for n in (1, 2, 3)
    ] == [1000, 1000, 1000]
    assert [
        Retry(delay="1s", backoff="linear", jitter=False).delay_ms(n, "s") for n in (1, 2, 3)
    ] == [1000, 2000, 3000]
    assert [
        Retry(delay="1s", backoff="exponential", max_delay=None, jitter=False).delay_ms(n, "s")
        for n in (1, 2, 3, 4)
    ] == [1000, 2000, 4000, 8000]
    assert Retry(delay="1s", max_delay="5s", jitter=False).delay_ms(10, "s") == 5000
    # A huge attempt number neither overflows nor escapes the cap.
    assert Retry(delay="1s", max_delay="1h", jitter=False).delay_ms(10_000, "s") == 3_600_000


def test_retry_jitter_draw_is_a_pure_function_of_its_seed() -> None:
    policy = Retry(delay="8s", backoff="constant", jitter=True)
    assert policy.delay_ms(1, "i/step") == policy.delay_ms(1, "i/step")
    draws = {policy.delay_ms(1, f"i{n}/step") for n in range(50)}
    assert len(draws) > 40 and all(4000 <= d < 8000 for d in draws)
    assert 0 <= unit_draw("anything") < 1
    assert Retry(delay=0, jitter=True).delay_ms(1, "s") == 0


def test_retry_round_trips_through_its_recorded_form() -> None:
    policy = Retry(limit=7, delay="1.5s", backoff="linear", max_delay="1m", jitter=False)
    again = Retry.from_dict(policy.to_dict())
    assert again.to_dict() == policy.to_dict()
    assert [again.delay_ms(n, "x") for n in (1, 2)] == [1500, 3000]
    assert Retry.from_dict(Retry(max_delay=None).to_dict()).max_delay is None


def test_retry_equality_is_by_milliseconds() -> None:
    assert Retry(delay="1s", max_delay="5m") == Retry(delay=1, max_delay=300) == DEFAULT_RETRY
    assert hash(Retry(delay="1500ms")) == hash(Retry(delay=1.5))
    assert Retry(delay="1s") != Retry(delay="2s")
    assert Retry.from_dict(DEFAULT_RETRY.to_dict()) == DEFAULT_RETRY


def test_a_calls_policy_round_trips_through_its_state_record() -> None:
    from replayflow.core.state import Call, CallKind, CallStatus
    from replayflow.store import serde

    policy = Retry(limit=4, delay="250ms", backoff="linear", max_delay=None, jitter=False)
    call = Call(index=0, kind=CallKind.STEP, key="a", status=CallStatus.SCHEDULED, retry=policy)
    again = serde.load_call(serde.dump_call(call))
    assert again == call and isinstance(again.retry, Retry)
    # The record keeps the form older versions wrote: milliseconds in a JSON object.
    assert b'"retry":{"limit":4,"delay":250,"backoff":"linear","max_delay":null' in (
        serde.dump_call(call)
    )


def test_retry_defaults() -> None:
    assert (DEFAULT_RETRY.limit, DEFAULT_RETRY.backoff, DEFAULT_RETRY.jitter) == (
        3,
        "exponential",
        True,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"limit": 0},
        {"limit": 1.5},
        {"backoff": "fibonacci"},
        {"delay": "soon"},
        {"delay": -1},
        {"max_delay": "never"},
    ],
)
def test_invalid_retry_policies_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(rf.ValidationError):
        Retry(**bad)  # type: ignore[arg-type]


def test_ctx_step_retry_overrides_the_steps_own_policy() -> None:
    @rf.workflow(name="r_override_flow")
    async def override_flow(ctx: rf.Context) -> None:
        await ctx.step("call", always_fails, retry=Retry(limit=1))

    fold = Fold.of(override_flow, always_fails)
    fold(StartWorkflow(instance_id="o", workflow="r_override_flow"), at=T0)
    decision = fold(
        FailStep(instance_id="o", step="call", attempt=1, error=ErrorInfo(type="E", message="m"))
    )
    assert kinds(decision.events) == ["StepFailed", "WorkflowFailed"]
