"""Decision: everything one fold step produces. DecisionBuilder assembles it while a
handler works, so handlers read as the rules they implement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from replayflow.core.callseq import CallsDraft
from replayflow.core.evolve import evolve, evolve_with
from replayflow.core.fast_init import fast_init
from replayflow.core.messages import (
    Command,
    Completion,
    HistoryEvent,
    Task,
)
from replayflow.core.schedule_messages import ScheduleRunEnded
from replayflow.core.state import Call, Info, InstanceState, built_state

Timer = tuple[str, int]  # (timer id, due ms)
_NONE: frozenset[int] = frozenset()
# What an instance's decision may ask of other entities: commands to instances and
# limiters, and to the schedule that started it, the end of its run.
Outgoing = Command | ScheduleRunEnded


@fast_init
@dataclass(frozen=True)
class Decision:
    """The outcome of folding one command into one instance.

    `state` is the instance after the command (None: there is no instance). `changed` is
    False when the command was a duplicate or straggler that changes nothing; `rejected`
    holds the reason when the command was invalid (it goes to the dead-letter topic).
    The store writes `state.info` and the calls listed in `changed_calls`.
    """

    state: InstanceState | None
    events: tuple[HistoryEvent, ...] = ()
    tasks: tuple[Task, ...] = ()
    timers_set: tuple[Timer, ...] = ()
    timers_cancelled: tuple[Timer, ...] = ()
    commands: tuple[Outgoing, ...] = ()
    completion: Completion | None = None
    changed_calls: frozenset[int] = frozenset()
    removed_calls: frozenset[int] = frozenset()  # dropped by a restart: delete them
    changed: bool = False
    rejected: str | None = None
    # Why, in one word, for a caller waiting on the answer: UnknownWorkflow,
    # UnknownInstance, Invalid (the command itself is wrong) or Conflict (it does not
    # fit the instance's state).
    rejected_as: str = "Invalid"


@dataclass(slots=True, init=False)  # (made and read on every decision: no instance dict)
class DecisionBuilder:
    info: Info
    calls: CallsDraft[Call]
    now: int
    events: list[HistoryEvent] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    timers: dict[str, int] = field(default_factory=dict)
    timers_set: dict[str, int] = field(default_factory=dict)
    timers_cancelled: dict[str, int] = field(default_factory=dict)
    commands: list[Outgoing] = field(default_factory=list)
    completion: Completion | None = None
    changed_calls: set[int] = field(default_factory=set)
    removed_calls: set[int] = field(default_factory=set)
    timers_moved: bool = False  # whether `timers` differs from info.timers at the start

    def __init__(
        self, info: Info, calls: CallsDraft[Call], now: int, timers: dict[str, int] | None = None
    ) -> None:
        # By hand: the generated __init__ called a factory for each of eight empty
        # collections (list(), dict(), set()), where literals cost a third.
        self.info = info
        self.calls = calls
        self.now = now
        self.events = []
        self.tasks = []
        self.timers = {} if timers is None else timers
        self.timers_set = {}
        self.timers_cancelled = {}
        self.commands = []
        self.completion = None
        self.changed_calls = set()
        self.removed_calls = set()
        self.timers_moved = False

    @classmethod
    def from_state(cls, state: InstanceState, now: int) -> DecisionBuilder:
        # A draft of the calls: only the chunks this decision changes are copied.
        timers = state.info.timers
        return cls(state.info, state.calls.draft(), now, dict(timers) if timers else {})

    # -- history ---------------------------------------------------------------------

    def next_seq(self) -> int:
        return self.info.seq + len(self.events) + 1

    def emit(self, event_type: type[Any], **fields: Any) -> int:
        events = self.events
        seq = self.info.seq + len(events) + 1  # next_seq(), inline: a call per event
        events.append(event_type(instance_id=self.info.instance_id, seq=seq, at=self.now, **fields))
        return seq

    # -- calls -----------------------------------------------------------------------

    def put_call(self, call: Call) -> None:
        if call.index == len(self.calls):
            self.calls.append(call)
        else:
            self.calls[call.index] = call
        self.changed_calls.add(call.index)

    def update_info(self, **changes: Any) -> None:
        self.info = evolve(self.info, **changes)

    # -- timers ----------------------------------------------------------------------

    def set_timer(self, timer_id: str, due: int) -> None:
        self.timers_moved = True
        self.timers[timer_id] = due
        self.timers_set[timer_id] = due

    def cancel_timer(self, timer_id: str) -> None:
        due = self.timers.pop(timer_id, None)
        if due is None:
            return
        self.timers_moved = True
        if self.timers_set.pop(timer_id, None) is None:
            self.timers_cancelled[timer_id] = due

    def drop_fired_timer(self, timer_id: str) -> None:
        # A fired timer has left the index already: forget it without a cancel.
        self.timers_moved = True
        self.timers.pop(timer_id, None)
        self.timers_set.pop(timer_id, None)

    def cancel_all_timers(self) -> None:
        for timer_id in list(self.timers):
            self.cancel_timer(timer_id)

    # -- result ----------------------------------------------------------------------

    def build(self) -> Decision:
        info = self.info
        events = self.events
        # Most decisions set and cancel no timer: the sorted tuple stays as it was.
        timers = tuple(sorted(self.timers.items())) if self.timers_moved else info.timers
        info = evolve_with(info, {"seq": info.seq + len(events), "timers": timers})
        calls = self.calls.freeze()
        # Most of these are empty: () without a call to tuple() for each.
        removed = self.removed_calls
        return Decision(
            state=built_state(info, calls),
            events=tuple(events),
            tasks=tuple(self.tasks) if self.tasks else (),
            timers_set=tuple(self.timers_set.items()) if self.timers_set else (),
            timers_cancelled=tuple(self.timers_cancelled.items()) if self.timers_cancelled else (),
            commands=tuple(self.commands) if self.commands else (),
            completion=self.completion,
            changed_calls=frozenset(self.changed_calls),
            removed_calls=frozenset([i for i in removed if i >= len(calls)]) if removed else _NONE,
            changed=True,
        )
