"""Admission: a concurrency limit per workflow that holds across every partition.

A limiter is an entity keyed `~limiter:<workflow>`, folded like an instance. Instances
ask it for a slot (AcquireSlot) and give it back when they end (ReleaseSlot); it grants
slots first in, first out. Its queue lives in the store as an ordered index, so a
million queued starts cost disk, not memory: decide_limiter() sees the queue only
through `LimiterQueue`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from replayflow.core.messages import AcquireSlot, GrantSlot, ReleaseSlot


@dataclass(frozen=True)
class LimiterState:
    key: str
    limit: int
    running: frozenset[str] = frozenset()
    next_ticket: int = 1  # queue order: tickets only grow
    queued: int = 0
    head: int = 1  # no ticket below this one is queued: the queue is read from here


class LimiterQueue(Protocol):
    def head(self, n: int, start: int) -> Sequence[tuple[int, str]]:
        """The first n (ticket, instance id) entries from ticket `start` on, oldest
        first."""
        ...


@dataclass(frozen=True)
class LimiterDecision:
    state: LimiterState
    enqueued: tuple[tuple[int, str], ...] = ()
    dequeued: tuple[int, ...] = ()  # tickets taken off the queue
    grants: tuple[GrantSlot, ...] = ()


def decide_limiter(
    state: LimiterState | None, command: AcquireSlot | ReleaseSlot, queue: LimiterQueue
) -> LimiterDecision:
    if isinstance(command, AcquireSlot):
        current = state or LimiterState(key=command.limiter, limit=command.limit)
        current = replace(current, limit=command.limit)  # the newest limit applies
        if command.instance_id in current.running:
            return LimiterDecision(state=current)
        # A raised limit frees slots: those already waiting get them first.
        admitted = _admit(current, queue)
        current = admitted.state
        if len(current.running) < current.limit and current.queued == 0:
            return replace(
                admitted,
                state=replace(current, running=current.running | {command.instance_id}),
                grants=(*admitted.grants, GrantSlot(instance_id=command.instance_id)),
            )
        ticket = current.next_ticket
        return replace(
            admitted,
            state=replace(current, next_ticket=ticket + 1, queued=current.queued + 1),
            enqueued=((ticket, command.instance_id),),
        )
    if isinstance(command, ReleaseSlot):
        if state is None or command.instance_id not in state.running:
            return LimiterDecision(state=state or LimiterState(key=command.limiter, limit=1))
        current = replace(state, running=state.running - {command.instance_id})
        return _admit(current, queue)
    raise TypeError(f"decide_limiter() has no handler for {type(command).__name__}")


def _admit(state: LimiterState, queue: LimiterQueue) -> LimiterDecision:
    free = state.limit - len(state.running)
    if free <= 0 or state.queued == 0:
        return LimiterDecision(state=state)
    running = set(state.running)
    dequeued: list[int] = []
    grants: list[GrantSlot] = []
    for ticket, instance_id in queue.head(min(free, state.queued), state.head):
        dequeued.append(ticket)
        if instance_id not in running:
            running.add(instance_id)
            grants.append(GrantSlot(instance_id=instance_id))
    head = max(dequeued) + 1 if dequeued else state.head
    return LimiterDecision(
        state=replace(
            state,
            running=frozenset(running),
            queued=state.queued - len(dequeued),
            head=head,
        ),
        dequeued=tuple(dequeued),
        grants=tuple(grants),
    )
