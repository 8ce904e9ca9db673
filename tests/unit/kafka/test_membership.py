"""A stopping worker leaves its group before it closes: as a static member its close()
alone sends no LeaveGroup, and its partitions would wait a session timeout for it. A
fake consumer stands in for librdkafka's: unsubscribe() asks for the revocation, which
a poll() serves (and the LeaveGroup follows it)."""

from __future__ import annotations

import pytest

from replayflow.kafka import membership


class FakeConsumer:
    def __init__(self, revoke_on_poll: bool = True) -> None:
        self.calls: list[str] = []
        self.assigned = ["tasks-0", "tasks-1"]
        self.revoke_on_poll = revoke_on_poll
        self.unsubscribed = False

    def unsubscribe(self) -> None:
        self.calls.append("unsubscribe")
        self.unsubscribed = True

    def poll(self, timeout: float) -> None:
        self.calls.append("poll")
        if self.unsubscribed and self.revoke_on_poll:
            self.assigned = []

    def assignment(self) -> list[str]:
        return self.assigned

    def close(self) -> None:
        self.calls.append("close")


def test_a_stopping_worker_unsubscribes_and_serves_the_revocation_before_closing() -> None:
    consumer = FakeConsumer()
    membership.leave_and_close(consumer)  # type: ignore[arg-type]
    assert consumer.calls == ["unsubscribe", "poll", "close"]


def test_a_revocation_that_does_not_come_still_ends_in_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(membership, "LEAVE_WAIT", 0.2)
    consumer = FakeConsumer(revoke_on_poll=False)
    membership.leave_and_close(consumer)  # type: ignore[arg-type]
    assert consumer.calls[0] == "unsubscribe" and consumer.calls[-1] == "close"
    assert consumer.calls.count("poll") >= 2  # it kept serving until LEAVE_WAIT passed


def test_a_failing_unsubscribe_still_closes() -> None:
    class Broken(FakeConsumer):
        def unsubscribe(self) -> None:
            raise RuntimeError("Consumer closed")

    consumer = Broken()
    membership.leave_and_close(consumer)  # type: ignore[arg-type]
    assert consumer.calls == ["close"]
