"""Small drivers for tests that call Decider.decide() by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from replayflow.core.decide import Decider, Limits
from replayflow.core.decision import Decision
from replayflow.core.definitions import Registry
from replayflow.core.messages import Command, HistoryEvent, Task
from replayflow.core.state import InstanceState

T0 = round(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


@dataclass
class Fold:
    """One instance folded command by command, as the orchestrator would: the state,
    the history written so far, the tasks handed out and the live timers."""

    decider: Decider
    now: int = T0
    state: InstanceState | None = None
    history: list[HistoryEvent] = field(default_factory=list)
    tasks: list[Task] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    @classmethod
    def of(cls, *items: Any, cache_size: int = 0, limits: Limits | None = None) -> Fold:
        return cls(Decider(Registry.of(*items), cache_size=cache_size, limits=limits))

    def __call__(self, command: Command, at: int | None = None) -> Decision:
        if at is not None:
            self.now = at
        decision = self.decider.decide(self.state, command, self.now)
        self.decisions.append(decision)
        if decision.state is not None:
            self.state = decision.state
        self.history.extend(decision.events)
        self.tasks.extend(decision.tasks)
        return decision

    @property
    def timers(self) -> dict[str, int]:
        """Live timers of the instance: timer id -> due."""
        return dict(self.state.info.timers) if self.state is not None else {}

    @property
    def status(self) -> str:
        assert self.state is not None
        return self.state.status.value


def kinds(events: Any) -> list[str]:
    return [type(event).__name__ for event in events]
