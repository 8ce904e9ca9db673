"""Bounded echoes of input. Whatever a log line, an error message or a dead-letter record
repeats of a value that came from outside (an id, a key, a reason that quotes them, a
payload) goes through `clip` or `clip_repr`, so its size never follows the input's: a
3 MB instance id is echoed as its first characters and how many were left out.
"""

from __future__ import annotations

import traceback

#: Characters of one echoed value (an id, a key, a name) in a message.
MAX_ECHO = 200
#: Characters of a dead letter's reason, or of one logged message about input.
MAX_REASON = 2000
#: Characters of a logged traceback (its frames are ours; its message may quote input).
MAX_TRACE = 8000


def clip(text: str, limit: int = MAX_REASON) -> str:
    """`text` when it has at most `limit` characters, else its beginning and a note of
    how many characters were left out: never more than `limit` characters (for a limit
    above a few dozen)."""
    if len(text) <= limit:
        return text
    keep = max(0, limit - len(f"... ({len(text)} more characters)"))
    return f"{text[:keep]}... ({len(text) - keep} more characters)"


def clip_repr(value: object, limit: int = MAX_ECHO) -> str:
    """repr() of a value in at most `limit` characters. Strings and bytes are cut before
    repr() runs, so a huge one is never copied whole."""
    if isinstance(value, str | bytes | bytearray) and len(value) > limit:
        unit = "characters" if isinstance(value, str) else "bytes"
        return clip(f"{value[:limit]!r}... ({len(value) - limit} more {unit})", limit)
    return clip(repr(value), limit)


def clip_traceback(exc: BaseException, limit: int = MAX_TRACE) -> str:
    """The traceback of `exc` as log.exception would print it, at most `limit`
    characters: the innermost frames and the message are kept, the rest is cut."""
    text = "".join(traceback.format_exception(exc))
    if len(text) <= limit:
        return text
    head = limit // 4
    return (
        f"{text[:head]}... ({len(text) - limit} characters left out) ...{text[-(limit - head) :]}"
    )
