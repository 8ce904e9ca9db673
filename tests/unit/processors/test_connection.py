"""Connection: the budget of replacements and the callbacks of replaced consumers. The
clients themselves are left out (open/close overridden): a broker test
(tests/integration/test_broker_restart_recovery.py) replaces real ones."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from replayflow.processors.connection import (
    REPLACE_LIMIT,
    REPLACE_WINDOW,
    Connection,
    Unrecoverable,
)
from replayflow.settings import Settings


class Counting(Connection):
    def __init__(self, now: list[float], calls: list[str]) -> None:
        super().__init__(
            Settings(namespace="t"),
            "orch-1",
            "t.replayflow.commands",
            on_assign=lambda c, p: calls.append(f"assign {p}"),
            on_revoke=lambda c, p: calls.append(f"revoke {p}"),
            stop=threading.Event(),
            clock=lambda: now[0],
        )
        self.opened = 0
        self.closed: list[bool] = []

    def open(self) -> bool:
        self.opened += 1
        self.generation += 1
        return True

    def close(self, *, abort: bool = False) -> None:
        self.closed.append(abort)
        self.generation += 1


def test_replacing_too_often_is_unrecoverable_with_the_reason() -> None:
    now = [100.0]
    connection = Counting(now, [])
    for _ in range(REPLACE_LIMIT):
        now[0] += 1
        assert connection.replace("send_offsets_to_transaction did not return within 7 s")
    assert connection.opened == REPLACE_LIMIT and connection.closed == [True] * REPLACE_LIMIT
    with pytest.raises(Unrecoverable, match="replaced 5 times within 300 s and fail again: boom"):
        connection.replace("boom")


def test_replacements_older_than_the_window_do_not_count() -> None:
    now = [0.0]
    connection = Counting(now, [])
    for _ in range(4 * REPLACE_LIMIT):
        now[0] += REPLACE_WINDOW / REPLACE_LIMIT + 1
        assert connection.replace("fenced")


def test_callbacks_of_a_replaced_consumer_do_nothing() -> None:
    calls: list[str] = []
    connection = Counting([0.0], calls)
    connection.open()
    on_assign = connection._current(connection.generation, connection._on_assign)
    consumer: Any = None
    on_assign(consumer, [1])
    connection.replace("stalled")
    on_assign(consumer, [2])  # e.g. the old consumer's revoke while it closes
    assert calls == ["assign [1]"]
    fresh = connection._current(connection.generation, connection._on_assign)
    fresh(consumer, [3])
    assert calls == ["assign [1]", "assign [3]"]
