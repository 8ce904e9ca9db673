"""Patch markers the code makes (ctx.patched, ctx.deprecate_patch): a call that is
resolved when made, and its PatchMarked fact. The rules are in core/patching.py."""

from __future__ import annotations

from replayflow.core.context import PatchRequest
from replayflow.core.decision import DecisionBuilder
from replayflow.core.messages import PatchMarked
from replayflow.core.patching import DEPRECATED
from replayflow.core.state import Call, CallKind, CallStatus


def new_patch(b: DecisionBuilder, member: PatchRequest, key: str) -> Call:
    index = len(b.calls)
    seq = b.emit(PatchMarked, patch=member.name, index=index, deprecated=member.deprecated)
    b.changed_calls.add(index)
    return Call(
        index=index,
        kind=CallKind.PATCH,
        key=key,
        status=CallStatus.COMPLETED,
        function=DEPRECATED if member.deprecated else "",
        result="true",
        resolved_seq=seq,
        resolved_at=b.now,
    )
