"""Which entity a command is folded into.

Every command on replayflow.commands is keyed by the entity it addresses: most address
a workflow instance (by its id); admission commands address a limiter (by its key);
schedule commands address a schedule (by `~schedule:<id>`). The fold looks the entity
up here and hands the command to that entity's fold; the orchestrator checks here that
a record's key names the same entity. A new kind of entity is a new `Entity` member,
its command types in `_ROUTES`, and its fold.

Timers live in one index for every entity (keyed by the entity's key); `timer_command`
says which command a due timer becomes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast, get_args

from replayflow.core.fast_init import fast_init
from replayflow.core.messages import AcquireSlot, Command, FireTimer, ReleaseSlot
from replayflow.core.schedule_messages import (
    BackfillSchedule,
    CreateSchedule,
    DeleteSchedule,
    FireSchedule,
    PauseSchedule,
    ScheduleCommand,
    ScheduleRunEnded,
    TriggerSchedule,
    UnpauseSchedule,
    UpdateSchedule,
)
from replayflow.core.schedule_state import SCHEDULE_PREFIX, SCHEDULE_TIMER, schedule_key

# Every command an entity folds.
AnyCommand = Command | ScheduleCommand


class Entity(Enum):
    INSTANCE = "instance"
    LIMITER = "limiter"
    SCHEDULE = "schedule"


@fast_init
@dataclass(frozen=True)
class Route:
    entity: Entity
    key: str  # the entity's id: the record key of its commands

    @property
    def record_key(self) -> bytes:
        return self.key.encode()


def _limiter(command: Any) -> str:
    key: str = command.limiter
    return key


def _schedule(command: Any) -> str:
    return schedule_key(command.schedule_id)


# Command types that do not address an instance, and how to find their entity's key.
_ROUTES: dict[type[Any], tuple[Entity, Callable[[Any], str]]] = {
    AcquireSlot: (Entity.LIMITER, _limiter),
    ReleaseSlot: (Entity.LIMITER, _limiter),
    CreateSchedule: (Entity.SCHEDULE, _schedule),
    UpdateSchedule: (Entity.SCHEDULE, _schedule),
    DeleteSchedule: (Entity.SCHEDULE, _schedule),
    PauseSchedule: (Entity.SCHEDULE, _schedule),
    UnpauseSchedule: (Entity.SCHEDULE, _schedule),
    TriggerSchedule: (Entity.SCHEDULE, _schedule),
    BackfillSchedule: (Entity.SCHEDULE, _schedule),
    FireSchedule: (Entity.SCHEDULE, _schedule),
    ScheduleRunEnded: (Entity.SCHEDULE, _schedule),
}


_SCHEDULE_COMMANDS = frozenset(get_args(ScheduleCommand))


def route(command: AnyCommand) -> Route:
    """The entity `command` is folded into."""
    found = _ROUTES.get(type(command))
    if found is None:
        # (A set of types, not isinstance against the union: asked for every command.)
        assert type(command) not in _SCHEDULE_COMMANDS
        return Route(Entity.INSTANCE, cast(Command, command).instance_id)
    entity, key_of = found
    return Route(entity, key_of(command))


def timer_command(owner: str, timer_id: str) -> FireTimer | FireSchedule:
    """The command a due timer of the index becomes: `owner` is the entity key it was
    set under."""
    if owner.startswith(SCHEDULE_PREFIX) and timer_id == SCHEDULE_TIMER:
        return FireSchedule(schedule_id=owner[len(SCHEDULE_PREFIX) :])
    return FireTimer(instance_id=owner, timer=timer_id)
