"""Patch markers: how ctx.patched decides, and what a re-fold of history knows of them.

A marker is a call like a step or a sleep (CallKind.PATCH, keyed by the patch id), made
where the code took the new path of ctx.patched (or passed ctx.deprecate_patch), and
recorded as a PatchMarked fact. The driver answers ctx.patched(id) at call position p:

- p is a recorded call (the instance ran past this point before): True when that
  call is the marker for id (consumed like any call), False otherwise: the code that
  ran here took the old path, so a replay must too;
- p is past the recorded calls, live: the code reaches this point for the first time,
  under this code: the marker is recorded, True;
- p is past the recorded calls while history is being re-folded (replay, rebuild):
  the recorded run decides. It did reach this point in the decision being re-folded
  (the code up to here is the same), so True only where it recorded the marker at p.
  `RecordedMarkers` tells the driver what it recorded; live folding has none.

A deprecated marker (from ctx.deprecate_patch) that the code does not ask for is
skipped, so the call can finally go once every instance that ran ctx.patched(id) has
ended. A marker made by ctx.patched is never skipped: code that drops the call while
such an instance runs is non-deterministic, and the instance is suspended. Re-folding
history, a skipped marker is made again where the recorded run made it (its fact is in
the history compared); a rebuild makes every recorded marker again, so the rebuilt
state holds what the live one holds, and suspends where the live one did.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from replayflow.core.messages import HistoryEvent, PatchMarked, WorkflowRestarted
from replayflow.core.state import Call, CallKind

Marker = tuple[str, bool]  # (patch id, deprecated)

# Call.function of a marker made by ctx.deprecate_patch (a marker has no function).
DEPRECATED = "deprecated"


def is_marker(call: Call, patch: str | None = None) -> bool:
    return call.kind is CallKind.PATCH and (patch is None or call.key == patch)


def skippable(call: Call, patch: str | None) -> bool:
    """A deprecated marker of another patch than the one the code asks for."""
    return call.kind is CallKind.PATCH and call.function == DEPRECATED and call.key != patch


class RecordedMarkers(Protocol):
    # Whether to make again, where the code asks for something else, also the markers
    # of ctx.patched (not only deprecated ones): a rebuild reproduces the recorded run,
    # whose state holds them; a replay check instead reports that the code no longer
    # asks for them, since a live instance holding one would be suspended.
    reproduce: bool

    def marker(self, instance_id: str, run: int, index: int) -> Marker | None:
        """The marker the recorded run `run` of the instance made at call `index`."""
        ...


class HistoryMarkers:
    """The markers of whole recorded histories, for a replay that has them up front."""

    reproduce = False

    def __init__(self, history: Iterable[HistoryEvent]) -> None:
        runs: dict[str, int] = {}
        self._marks: dict[tuple[str, int, int], Marker] = {}
        for event in history:
            if isinstance(event, WorkflowRestarted):
                runs[event.instance_id] = runs.get(event.instance_id, 0) + 1
            elif isinstance(event, PatchMarked):
                run = runs.get(event.instance_id, 0)
                self._marks[(event.instance_id, run, event.index)] = (
                    event.patch,
                    event.deprecated,
                )

    def marker(self, instance_id: str, run: int, index: int) -> Marker | None:
        return self._marks.get((instance_id, run, index))


class DecisionMarkers:
    """The markers of the decisions a streaming re-fold has read but not yet folded.
    A decision's facts are contiguous in its partition, so the re-fold reads to the end
    of one decision before folding its input; a restart within the decision starts the
    run the markers after it belong to, so the run number is not needed here."""

    reproduce = True

    def __init__(self) -> None:
        self._marks: dict[str, dict[int, Marker]] = {}

    def add(self, event: PatchMarked) -> None:
        self._marks.setdefault(event.instance_id, {})[event.index] = (
            event.patch,
            event.deprecated,
        )

    def folded(self, instance_id: str) -> None:
        self._marks.pop(instance_id, None)

    def marker(self, instance_id: str, run: int, index: int) -> Marker | None:
        marks = self._marks.get(instance_id)
        return None if marks is None else marks.get(index)
