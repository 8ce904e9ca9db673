"""Sleeps and event waits the code asks for. An event that arrived before its wait is
kept in the instance's inbox and handed to the first wait for its name."""

from __future__ import annotations

from replayflow.core.context import EventRequest, SleepRequest
from replayflow.core.decide.calls import sleep_timer, wait_timeout
from replayflow.core.decision import DecisionBuilder
from replayflow.core.messages import EventAwaited, EventDelivered, TimerStarted
from replayflow.core.state import Call, CallKind, CallStatus


def new_sleep(b: DecisionBuilder, member: SleepRequest, key: str) -> Call:
    index = len(b.calls)
    # The name the code gave the sleep is recorded: the timer id only says where it is.
    b.emit(TimerStarted, timer=sleep_timer(index), due=member.until, name=key)
    b.set_timer(sleep_timer(index), member.until)
    b.changed_calls.add(index)
    return Call(
        index=index,
        kind=CallKind.SLEEP,
        key=key,
        status=CallStatus.WAITING,
        deadline=member.until,
    )


def new_wait(b: DecisionBuilder, member: EventRequest, key: str) -> Call:
    index = len(b.calls)
    deadline = None if member.timeout_ms is None else b.now + member.timeout_ms
    seq = b.emit(EventAwaited, name=member.name, deadline=deadline, wait=index)
    b.changed_calls.add(index)
    for position, (name, payload, received_seq) in enumerate(b.info.inbox):
        if name == member.name:  # sent before the wait: delivered in arrival order
            inbox = b.info.inbox[:position] + b.info.inbox[position + 1 :]
            b.update_info(inbox=inbox)
            b.emit(EventDelivered, name=name, wait=index, received_seq=received_seq)
            return Call(
                index=index,
                kind=CallKind.EVENT,
                key=key,
                status=CallStatus.COMPLETED,
                result=payload,
                resolved_seq=seq,
                resolved_at=b.now,
            )
    if deadline is not None:
        b.set_timer(wait_timeout(index), deadline)
    return Call(
        index=index, kind=CallKind.EVENT, key=key, status=CallStatus.WAITING, deadline=deadline
    )
