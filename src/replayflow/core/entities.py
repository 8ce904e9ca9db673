"""Which entity a command is folded into.

Every command on replayflow.commands is keyed by the entity it addresses: most address
a workflow instance (by its id); admission commands address a limiter (by its key).
The fold looks the entity up here and hands the command to that entity's fold; the
orchestrator checks here that a record's key names the same entity. A new kind of
entity is a new `Entity` member, its command types in `_ROUTES`, and its fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from replayflow.core.messages import AcquireSlot, Command, ReleaseSlot


class Entity(Enum):
    INSTANCE = "instance"
    LIMITER = "limiter"


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


# Command types that do not address an instance, and how to find their entity's key.
_ROUTES: dict[type[Any], tuple[Entity, Callable[[Any], str]]] = {
    AcquireSlot: (Entity.LIMITER, _limiter),
    ReleaseSlot: (Entity.LIMITER, _limiter),
}


def route(command: Command) -> Route:
    """The entity `command` is folded into."""
    found = _ROUTES.get(type(command))
    if found is None:
        return Route(Entity.INSTANCE, command.instance_id)
    entity, key_of = found
    return Route(entity, key_of(command))
