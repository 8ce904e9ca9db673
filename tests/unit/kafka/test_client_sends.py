"""Every command the client sends is acknowledged or reported: with no broker to
acknowledge it, each call raises DeliveryError after the client's send timeout."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from replayflow.client import Client, DeliveryError
from replayflow.kafka import clients
from replayflow.kafka.outage import KafkaUnreachable
from replayflow.settings import Settings


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # Nothing listens on port 1: no record is ever acknowledged. The client refuses to
    # start against it (test below); to reach its sends, this one skips that check and
    # neither reads what the orchestrators run nor waits for their replies.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clients, "check_reachable", lambda settings, timeout=None: None)
        unreachable = Client(
            Settings(bootstrap="127.0.0.1:1"),
            watch_completions=False,
            send_timeout=0.3,
            check=False,
            confirm=False,
        )
    yield unreachable  # not closed: close() would wait for the stuck records


def test_a_client_for_an_unreachable_cluster_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(KafkaUnreachable, match=r"cannot reach Kafka at 127.0.0.1:1 \("):
        Client(Settings(bootstrap="127.0.0.1:1", connect_timeout=3))
    assert time.monotonic() - started < 3.5


SENDS: dict[str, Callable[[Client], Any]] = {
    "start": lambda c: c.start("wf", {"n": 1}, id="i-1"),
    "start_many": lambda c: c.start_many([("wf", None, "i-2"), ("wf", None, "i-3")]),
    "send_event": lambda c: c.send_event("i-1", "go", {"ok": True}),
    "cancel": lambda c: c.cancel("i-1"),
    "terminate": lambda c: c.terminate("i-1"),
    "pause": lambda c: c.pause("i-1"),
    "resume": lambda c: c.resume("i-1"),
}


@pytest.mark.parametrize("send", SENDS.values(), ids=SENDS.keys())
def test_an_unacknowledged_command_raises(client: Client, send: Callable[[Client], Any]) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError, match=r"did not acknowledge \d+ record\(s\) within 0.3 s"):
        send(client)
    assert time.monotonic() - started < 5
