"""The read model keeps payloads as the JSON text history recorded; the API answers with
JSON values: an instance's input and output, a step's input and result, an event's
payload are objects, lists, numbers... in the reply, not strings holding JSON. An
error's details are a value too, with its traceback lifted out.

A payload preview cut short in the instance row ("…" at the end) is no JSON any more:
it stays text, and `truncated` says so."""

from __future__ import annotations

import json
from typing import Any

#: Fields that hold a JSON payload as text in the read model and in history events.
PAYLOAD_FIELDS = ("input", "output", "result", "payload")


def value(text: Any) -> tuple[Any, bool]:
    """(the JSON value of `text`, whether it was cut short). Non-text passes as is."""
    if not isinstance(text, str):
        return text, False
    try:
        return json.loads(text), False
    except ValueError:
        return text, True


def error(info: Any) -> Any:
    """An error as the API shows it: type, message, retryable, details (a value) and
    traceback (text), the last two when recorded."""
    if not isinstance(info, dict):
        return info
    out = dict(info)
    details, _ = value(out.get("details"))
    if isinstance(details, dict) and isinstance(details.get("traceback"), str):
        details = dict(details)
        out["traceback"] = details.pop("traceback")
        cause = details.get("cause")
        if isinstance(cause, dict) and isinstance(cause.get("traceback"), str):
            details["cause"] = {k: v for k, v in cause.items() if k != "traceback"}
            out["cause_traceback"] = cause["traceback"]
    out["details"] = details or None
    return out


def decoded(entry: dict[str, Any]) -> dict[str, Any]:
    """An instance row, timeline entry or history event with JSON values."""
    out = dict(entry)
    cut = []
    for name in PAYLOAD_FIELDS:
        if name in out:
            out[name], truncated = value(out[name])
            if truncated:
                cut.append(name)
    if cut:
        out["truncated"] = cut
    if "error" in out:
        out["error"] = error(out["error"])
    if isinstance(out.get("attempts"), list):
        out["attempts"] = [
            {**a, "error": error(a.get("error"))} if isinstance(a, dict) else a
            for a in out["attempts"]
        ]
    if isinstance(out.get("recent"), list):
        out["recent"] = [decoded(e) if isinstance(e, dict) else e for e in out["recent"]]
    return out
