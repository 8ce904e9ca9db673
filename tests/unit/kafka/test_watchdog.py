"""The watchdog: a call on a helper thread under a deadline. Fake blocking calls stand in
for librdkafka's (a threading.Event that is never set, until the test lets it go)."""

from __future__ import annotations

import threading
import time

import pytest

from replayflow.core.errors import ReplayflowError
from replayflow.kafka.watchdog import Guard, Hung, guarded


class Stuck:
    """A call that blocks until released, like send_offsets_to_transaction after a
    broker restart; remembers that it ran and on which thread."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.threads: list[threading.Thread] = []

    def __call__(self, value: object = None) -> object:
        self.threads.append(threading.current_thread())
        self.started.set()
        self.release.wait(30)
        return value


def test_a_call_that_returns_in_time_gives_its_result() -> None:
    guard = Guard("producer")
    try:
        assert guard.run("add", 5.0, lambda a, b: a + b, 2, 3) == 5
        assert guard.run("again", 5.0, str, 7) == "7"
        assert guard.dead is None
    finally:
        guard.close()


def test_an_exception_reaches_the_caller_as_it_was_raised() -> None:
    guard = Guard("producer")

    def fails() -> None:
        raise KeyError("boom")

    try:
        with pytest.raises(KeyError, match="boom"):
            guard.run("fails", 5.0, fails)
        assert guard.dead is None  # an error is an answer: the client lives on
        assert guard.run("then", 5.0, lambda: 1) == 1
    finally:
        guard.close()


def test_a_call_past_its_deadline_raises_hung_and_the_client_is_dead() -> None:
    stuck = Stuck()
    guard = Guard("orchestrator producer")
    started = time.monotonic()
    with pytest.raises(Hung, match=r"send_offsets_to_transaction did not return within 0\.3 s"):
        guard.run("send_offsets_to_transaction", 0.3, stuck, "x")
    waited = time.monotonic() - started
    assert 0.3 <= waited < 5, waited
    assert stuck.started.is_set()
    assert guard.dead == "send_offsets_to_transaction did not return within 0.3 s"
    assert isinstance(Hung("x"), ReplayflowError) and isinstance(Hung("x"), TimeoutError)

    # Every later call fails at once, without running: the client is not to be used.
    ran: list[int] = []
    started = time.monotonic()
    with pytest.raises(Hung, match="orchestrator producer is dead"):
        guard.run("commit_transaction", 10.0, lambda: ran.append(1))
    assert time.monotonic() - started < 1 and ran == []

    # The stuck call cannot be stopped; once it returns, its helper thread ends.
    [thread] = stuck.threads
    assert thread.daemon and thread is not threading.current_thread()
    stuck.release.set()
    thread.join(5)
    assert not thread.is_alive()


def test_guarded_runs_one_call_on_a_thread_of_its_own() -> None:
    assert guarded("close", 5.0, lambda: "closed") == "closed"
    stuck = Stuck()
    with pytest.raises(Hung, match=r"close did not return within 0\.2 s"):
        guarded("close", 0.2, stuck)
    stuck.release.set()
    stuck.threads[0].join(5)
    assert not stuck.threads[0].is_alive()


def test_calls_run_one_at_a_time_in_order() -> None:
    guard = Guard("consumer")
    seen: list[int] = []
    try:
        for i in range(20):
            guard.run("call", 5.0, seen.append, i)
    finally:
        guard.close()
    assert seen == list(range(20))
