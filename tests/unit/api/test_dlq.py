"""Redrive checks the entry before it makes a transactional producer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from replayflow import codec
from replayflow.api import dlq
from replayflow.api.dlq import MARKER_HEADER, DeadLetterError, DeadLetters
from replayflow.core.messages import DeadLetter

TOPIC = "ns.replayflow.dlq"


class _Message:
    def __init__(self, offset: int, value: bytes, headers: Any = None) -> None:
        self._offset, self._value, self._headers = offset, value, headers

    def offset(self) -> int:
        return self._offset

    def partition(self) -> int:
        return 0

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return self._value

    def headers(self) -> Any:
        return self._headers


class _Consumer:
    def __init__(self, partitions: list[int]) -> None:
        self.partitions = partitions

    def close(self) -> None:
        pass


class _Producer:
    made: list[_Producer] = []

    def __init__(self, config: Any) -> None:
        self.calls: list[str] = []
        _Producer.made.append(self)

    def init_transactions(self, timeout: float) -> None:
        self.calls.append("init")

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def produce(self, topic: str, **kwargs: Any) -> None:
        self.calls.append(f"produce {topic}")

    def commit_transaction(self, timeout: float) -> None:
        self.calls.append("commit")

    def flush(self, timeout: float) -> int:
        self.calls.append("flush")
        return 0


def letter() -> bytes:
    record = DeadLetter("ns.replayflow.commands", 0, 5, b"k", b"junk", "bad", "CodecError", 1)
    return codec.encode(record)


def _letters(
    monkeypatch: pytest.MonkeyPatch, partitions: list[int], messages: list[_Message]
) -> DeadLetters:
    _Producer.made = []
    monkeypatch.setattr(dlq, "Producer", _Producer)
    monkeypatch.setattr(dlq, "producer_config", lambda settings, **kw: kw)
    letters = DeadLetters.__new__(DeadLetters)
    letters.settings, letters.node, letters.topic = None, "n1", TOPIC  # type: ignore[assignment]
    monkeypatch.setattr(letters, "_consumer", lambda: _Consumer(partitions))
    monkeypatch.setattr(letters, "_partitions", lambda consumer: consumer.partitions)
    monkeypatch.setattr(letters, "_read", lambda consumer, starts: list(messages))
    return letters


@pytest.mark.parametrize(
    ("partitions", "messages", "status"),
    [
        ([], [], 404),  # no such partition
        ([0], [], 404),  # no such offset
        ([0], [_Message(3, b"not a dead letter")], 404),
        (
            [0],
            [
                _Message(3, letter()),
                _Message(
                    4, json.dumps({"redrive_of": "0-3", "at": 1}).encode(), [(MARKER_HEADER, b"1")]
                ),
            ],
            409,
        ),
    ],
)
def test_no_producer_for_an_entry_that_cannot_be_redriven(
    monkeypatch: pytest.MonkeyPatch, partitions: list[int], messages: list[_Message], status: int
) -> None:
    letters = _letters(monkeypatch, partitions, messages)
    with pytest.raises(DeadLetterError) as raised:
        letters.redrive("0-3")
    assert raised.value.status == status
    assert _Producer.made == []


def test_redrive_fences_commits_and_flushes(monkeypatch: pytest.MonkeyPatch) -> None:
    letters = _letters(monkeypatch, [0], [_Message(3, letter())])
    result = letters.redrive("0-3")
    assert result["redriven"] and result["to"] == "ns.replayflow.commands"
    [producer] = _Producer.made
    assert producer.calls == [
        "init",
        "begin",
        "produce ns.replayflow.commands",
        f"produce {TOPIC}",
        "commit",
        "flush",
    ]
