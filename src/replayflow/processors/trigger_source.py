"""What a trigger works on: one record of a source topic, the mapper that turns it into
commands, and the error that sends it to the dead-letter topic instead.

A mapper is any callable `mapper(record) -> list[Command]`: code triggers get one from
trigger_mapping.TriggerMapper, DSL documents from replayflow.dsl.triggers. An empty list
means "not for this trigger" (an event type nobody listens for): the record is skipped.
A record the mapper cannot read raises Unmappable and lands in the DLQ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from replayflow.core.errors import ReplayflowError
from replayflow.core.messages import Command

Headers = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class SourceRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()
    timestamp: int = 0  # ms; 0 when the record has none

    def header(self, name: str) -> bytes | None:
        """The value of header `name` (the last one when repeated), None when absent."""
        found = None
        for key, value in self.headers:
            if key == name:
                found = value
        return found

    def has_header(self, name: str) -> bool:
        return any(key == name for key, _ in self.headers)


class Unmappable(ReplayflowError):
    """A record the trigger cannot turn into a command. `reason` goes into the dead
    letter, `error_type` names the kind: Undecodable, NoInstanceId, InvalidInstanceId,
    ExpressionFailed, PayloadError."""

    def __init__(self, reason: str, error_type: str = "Undecodable") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type


Mapper = Callable[[SourceRecord], Sequence[Command]]


@dataclass(frozen=True)
class TriggerSpec:
    """A trigger ready to run: its name (the consumer group is made from it), the
    topic it reads as declared (the namespace prefix is applied when it runs), its
    mapper, and a one-line description. `digest` changes when what it does changes,
    so a runner knows to restart it."""

    name: str
    topic: str
    mapper: Mapper
    description: str = ""
    digest: str = ""
