"""Events sent to an instance: delivered to a wait the code awaits now, or kept in the
inbox for a later wait (and for a resume, when they came while paused)."""

from __future__ import annotations

from dataclasses import replace

from replayflow.core.decide.calls import event_name, wait_timeout
from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.driver import Driver, Outcome, Waiting
from replayflow.core.errors import ValidationError
from replayflow.core.messages import EventReceived, SendEvent
from replayflow.core.names import check_name
from replayflow.core.payloads import check_size, load
from replayflow.core.state import Call, CallKind, CallStatus, InstanceState, Status


def send_event(r: Runner, state: InstanceState | None, cmd: SendEvent, now: int) -> Decision:
    if state is None:
        return Decision(state=None, rejected=f"no instance {cmd.instance_id!r}")
    if state.status.is_final:
        return Decision(state=state)  # an event for a finished instance changes nothing
    try:
        check_name(cmd.name, "event name")
        check_size(cmd.payload, f"the payload of event {cmd.name!r}", r.limits.max_payload)
        load(cmd.payload, f"the payload of event {cmd.name!r}")
    except ValidationError as exc:
        return Decision(state=state, rejected=str(exc))
    kept = sum(len(payload) for _, payload in state.info.inbox) + len(cmd.payload)
    if kept > r.limits.max_inbox:
        return Decision(
            state=state,
            rejected=(
                f"instance {cmd.instance_id!r} already keeps {len(state.info.inbox)} events "
                f"nobody waits for; this one would exceed the {r.limits.max_inbox}-byte "
                "inbox limit"
            ),
        )
    b = DecisionBuilder.from_state(state, now)
    seq = b.emit(EventReceived, name=cmd.name, payload=cmd.payload)
    if state.status is not Status.RUNNING:
        b.update_info(inbox=(*b.info.inbox, (cmd.name, cmd.payload)))
        return r.build_unawaited(b)
    # Deliver only to a wait the code awaits now. A wait left behind by a ctx.all that
    # raised is still WAITING, but nobody would receive what it got. A rebuilt driver
    # first catches up to its current await; a live one is there already.
    driver = r.driver(b, r.workflow_of(state.info))
    outcome = r.advance(b, driver)
    waiting = None
    if isinstance(outcome, Waiting):
        waiting = _awaited_wait(b, driver, cmd.name)
    if waiting is None:
        b.update_info(inbox=(*b.info.inbox, (cmd.name, cmd.payload)))
        return r.settle(b, driver, outcome)
    b.cancel_timer(wait_timeout(waiting.index))
    b.put_call(
        replace(
            waiting,
            status=CallStatus.COMPLETED,
            result=cmd.payload,
            resolved_seq=seq,
            resolved_at=now,
        )
    )
    return r.settle(b, driver, r.advance(b, driver))


def deliver_inbox(r: Runner, b: DecisionBuilder, driver: Driver) -> Outcome:
    """Advance, handing kept events to waits the code awaits now (they may have
    arrived while the instance was paused or suspended)."""
    outcome = r.advance(b, driver)
    while isinstance(outcome, Waiting) and b.info.inbox:
        match = None
        for position, (name, payload) in enumerate(b.info.inbox):
            match = _awaited_wait(b, driver, name)
            if match is not None:
                b.update_info(inbox=b.info.inbox[:position] + b.info.inbox[position + 1 :])
                b.cancel_timer(wait_timeout(match.index))
                b.put_call(
                    replace(
                        match,
                        status=CallStatus.COMPLETED,
                        result=payload,
                        resolved_seq=b.next_seq() - 1,
                        resolved_at=b.now,
                    )
                )
                break
        if match is None:
            break
        outcome = r.advance(b, driver)
    return outcome


def _awaited_wait(b: DecisionBuilder, driver: Driver, name: str) -> Call | None:
    """The open wait for `name` among what the code awaits now."""
    # A repeated wait for one name has key name#n: match on the name itself.
    return next(
        (
            c
            for c in (b.calls[i] for i in driver.awaiting())
            if c.kind is CallKind.EVENT and event_name(c) == name and c.status is CallStatus.WAITING
        ),
        None,
    )
