"""The fold of a limiter: admission commands into the limiter's state and its queue in
the store, through the batch's pending writes. decide_limiter() (core/limiter.py) makes
the decisions; this module only reads and stages."""

from __future__ import annotations

from replayflow.core.limiter import LimiterDecision, LimiterState, decide_limiter
from replayflow.core.messages import AcquireSlot, ReleaseSlot
from replayflow.store import keys, serde
from replayflow.store.pending import Pending


def load_limiter(pending: Pending, limiter: str) -> LimiterState | None:
    raw = pending.get(keys.limiter(limiter))
    return None if raw is None else serde.load_limiter(raw)


def fold_limiter(
    pending: Pending, command: AcquireSlot | ReleaseSlot, added: list[tuple[int, str]]
) -> LimiterDecision:
    """Decide and stage the limiter's writes. `added` lists the entries this batch has
    enqueued on the limiter so far, oldest first; the ones enqueued now join it."""
    queue = _StoredQueue(pending, command.limiter, added)
    decision = decide_limiter(load_limiter(pending, command.limiter), command, queue)
    pending.put(keys.limiter(command.limiter), serde.dump_limiter(decision.state))
    for ticket, instance_id in decision.enqueued:
        pending.put(keys.queue_entry(command.limiter, ticket), instance_id.encode())
        added.append((ticket, instance_id))
    for ticket in decision.dequeued:
        pending.delete(keys.queue_entry(command.limiter, ticket))
    return decision


class _StoredQueue:
    """An admission queue read from the store and the batch's pending writes.

    Reading starts at the limiter's head ticket, so entries dequeued earlier (and their
    tombstones) are never walked again; entries this batch enqueued are kept in order
    by the folder, so the pending writes are never scanned."""

    def __init__(self, pending: Pending, limiter: str, added: list[tuple[int, str]]) -> None:
        self._pending = pending
        self._limiter = limiter
        self._added = added

    def head(self, n: int, start: int) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        prefix = keys.queue_prefix(self._limiter)
        changes = self._pending.changes
        for key, value in self._pending.store.scan(
            prefix, seek=keys.queue_entry(self._limiter, start)
        ):
            if len(found) >= n:
                return found
            if key in changes:
                continue  # dequeued in this batch
            found.append((keys.queue_ticket(key), value.decode()))
        for ticket, instance_id in self._added:
            if len(found) >= n:
                break
            if ticket >= start and changes.get(keys.queue_entry(self._limiter, ticket)):
                found.append((ticket, instance_id))
        return found
