"""Events sent to an instance: delivered to a wait the code awaits now, or kept in the
inbox for a later wait (and for a resume, when they came while paused)."""

from __future__ import annotations

from replayflow.core.decide.calls import event_name, wait_timeout
from replayflow.core.decide.runner import Runner
from replayflow.core.decision import Decision, DecisionBuilder
from replayflow.core.driver import Driver, Outcome, Waiting
from replayflow.core.errors import ValidationError
from replayflow.core.evolve import evolve
from replayflow.core.messages import EventDelivered, EventKept, EventReceived, SendEvent
from replayflow.core.names import check_name
from replayflow.core.payloads import check_size, load
from replayflow.core.state import Call, CallKind, CallStatus, InstanceState, Status


def send_event(r: Runner, state: InstanceState | None, cmd: SendEvent, now: int) -> Decision:
    if state is None:
        return Decision(
            state=None, rejected=f"no instance {cmd.instance_id!r}", rejected_as="UnknownInstance"
        )
    if state.status.is_final:
        return Decision(state=state)  # an event for a finished instance changes nothing
    try:
        check_name(cmd.name, "event name")
        check_size(cmd.payload, f"the payload of event {cmd.name!r}", r.limits.max_payload)
        load(cmd.payload, f"the payload of event {cmd.name!r}")
    except ValidationError as exc:
        return Decision(state=state, rejected=str(exc))
    kept = sum(len(payload) for _, payload, _ in state.info.inbox) + len(cmd.payload)
    if kept > r.limits.max_inbox:
        return Decision(
            state=state,
            rejected=(
                f"instance {cmd.instance_id!r} already keeps {len(state.info.inbox)} events "
                f"nobody waits for; this one would exceed the {r.limits.max_inbox}-byte "
                "inbox limit"
            ),
            rejected_as="Conflict",
        )
    b = DecisionBuilder.from_state(state, now)
    seq = b.emit(EventReceived, name=cmd.name, payload=cmd.payload)
    if state.status is not Status.RUNNING:
        keep(b, cmd.name, cmd.payload, seq)
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
        keep(b, cmd.name, cmd.payload, seq)
        return r.settle(b, driver, outcome)
    _deliver(b, waiting, cmd.payload, seq, resolved_seq=seq)
    return r.settle(b, driver, r.advance(b, driver))


def keep(b: DecisionBuilder, name: str, payload: str, received_seq: int) -> None:
    b.update_info(inbox=(*b.info.inbox, (name, payload, received_seq)))
    b.emit(EventKept, name=name, received_seq=received_seq)


def _deliver(
    b: DecisionBuilder, wait: Call, payload: str, received_seq: int | None, resolved_seq: int
) -> None:
    b.cancel_timer(wait_timeout(wait.index))
    b.emit(EventDelivered, name=event_name(wait), wait=wait.index, received_seq=received_seq)
    b.put_call(
        evolve(
            wait,
            status=CallStatus.COMPLETED,
            result=payload,
            resolved_seq=resolved_seq,
            resolved_at=b.now,
        )
    )


def deliver_inbox(r: Runner, b: DecisionBuilder, driver: Driver) -> Outcome:
    """Advance, handing kept events to waits the code awaits now (they may have
    arrived while the instance was paused or suspended)."""
    outcome = r.advance(b, driver)
    while isinstance(outcome, Waiting) and b.info.inbox:
        match = None
        for position, (name, payload, received_seq) in enumerate(b.info.inbox):
            match = _awaited_wait(b, driver, name)
            if match is not None:
                b.update_info(inbox=b.info.inbox[:position] + b.info.inbox[position + 1 :])
                # Resolved by the last event recorded before the delivery, as before the
                # delivery was recorded, so the order of outcomes replays unchanged.
                _deliver(b, match, payload, received_seq, resolved_seq=b.next_seq() - 1)
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
