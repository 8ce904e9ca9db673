"""Every command the client sends is acknowledged or reported: with no broker to
acknowledge it, each call raises DeliveryError after the client's send timeout."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from replayflow.client import Client, DeliveryError
from replayflow.settings import Settings


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    # Nothing listens on port 1: no record is ever acknowledged.
    unreachable = Client(
        Settings(bootstrap="127.0.0.1:1"), watch_completions=False, send_timeout=0.3
    )
    yield unreachable  # not closed: close() would wait for the stuck records


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
