"""User values cross every boundary as JSON text of bounded size."""

from __future__ import annotations

import json
from typing import Any

from replayflow.core.errors import PayloadError

DEFAULT_MAX_PAYLOAD = 1024 * 1024


def dump(value: Any, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> str:
    """JSON text of a value, or PayloadError naming what it was and why it won't go."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise PayloadError(f"{what} is not a JSON value: {exc}") from None
    check_size(text, what, limit)
    return text


def check_size(text: str, what: str, limit: int = DEFAULT_MAX_PAYLOAD) -> None:
    size = len(text.encode("utf-8")) if len(text) * 4 > limit else len(text)
    if size > limit:
        raise PayloadError(f"{what} is {size} bytes, over the payload limit of {limit}")


def load(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"{what} is not valid JSON text: {exc}") from None
