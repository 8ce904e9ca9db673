"""Decider: the one entry point of the fold. One handler per command type; an unknown
type is a programming error and raises.

Everything here is a function of (state, command, now) and the registered workflow code:
no clock, no randomness of the machine, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from replayflow.core.decide.admission import grant, start
from replayflow.core.decide.events import send_event
from replayflow.core.decide.lifecycle import cancel, pause, restart, resume, terminate
from replayflow.core.decide.runner import Admission, Limits, Runner, one_limiter
from replayflow.core.decide.steps import complete_step, fail_step
from replayflow.core.decide.timers import fire_timer
from replayflow.core.decide.upgrade import upgrade
from replayflow.core.decision import Decision
from replayflow.core.definitions import Registry
from replayflow.core.messages import (
    CancelWorkflow,
    Command,
    CompleteStep,
    FailStep,
    FireTimer,
    GrantSlot,
    PauseWorkflow,
    RestartWorkflow,
    ResumeWorkflow,
    SendEvent,
    StartWorkflow,
    TerminateWorkflow,
    UpgradeWorkflow,
)
from replayflow.core.patching import RecordedMarkers
from replayflow.core.state import InstanceState

Handler = Callable[[Runner, Any, Any, int], Decision]

HANDLERS: dict[type[Any], Handler] = {
    StartWorkflow: start,
    GrantSlot: grant,
    CompleteStep: complete_step,
    FailStep: fail_step,
    FireTimer: fire_timer,
    SendEvent: send_event,
    CancelWorkflow: cancel,
    TerminateWorkflow: terminate,
    PauseWorkflow: pause,
    ResumeWorkflow: resume,
    RestartWorkflow: restart,
    UpgradeWorkflow: upgrade,
}


class Decider(Runner):
    """Folds commands into instance state with the workflows of one registry."""

    def __init__(
        self,
        registry: Registry,
        *,
        cache_size: int = 10_000,
        limits: Limits | None = None,
        concurrency: dict[str, int] | None = None,
        keep_idle: bool = False,
        recorded: RecordedMarkers | None = None,
        admission: Admission = one_limiter,
    ) -> None:
        super().__init__(
            registry,
            cache_size=cache_size,
            limits=limits,
            concurrency=concurrency,
            keep_idle=keep_idle,
            recorded=recorded,
            admission=admission,
        )
        self._handlers = {kind: partial(handler, self) for kind, handler in HANDLERS.items()}

    def decide(self, state: InstanceState | None, command: Command, now: int) -> Decision:
        handler = self._handlers.get(type(command))
        if handler is None:
            raise TypeError(f"decide() has no handler for {type(command).__name__}")
        return handler(state, command, now)

    def forget(self, instance_id: str) -> None:
        """Drop the instance's live coroutine (the batch that touched it aborted)."""
        self.cache.drop(instance_id)

    def forget_all(self) -> None:
        """Drop every live coroutine (this process gave up its partitions)."""
        self.cache.clear()
