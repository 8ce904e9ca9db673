"""Body parsing of the HTTP API: bad bodies are a clear 400, never a 500."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from replayflow.api import http
from replayflow.api.http import ApiError


class _Request:
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def read(self) -> bytes:
        return self.body


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_deeply_nested_body_is_a_400() -> None:
    body = b'{"workflow":"w","input":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(ApiError) as raised:
        asyncio.run(http._json_body(_Request(body)))  # type: ignore[arg-type]
    assert raised.value.status == 400 and "nested too deeply" in raised.value.message


def test_payload_too_deep_to_write_is_a_400() -> None:
    with pytest.raises(ApiError) as raised:
        http._payload(_nested(200_000), "the input")
    assert raised.value.status == 400 and "nested too deeply" in raised.value.message


def test_bad_json_is_still_a_400() -> None:
    with pytest.raises(ApiError) as raised:
        asyncio.run(http._json_body(_Request(b"{nope")))  # type: ignore[arg-type]
    assert raised.value.status == 400 and "not valid JSON" in raised.value.message
