"""The formats of names and instance ids, checked where they enter."""

from __future__ import annotations

import functools
import re

from replayflow.core.errors import ValidationError

# Public: the HTTP API's OpenAPI document publishes these patterns as they are.
MAX_ID_LENGTH = 200
MAX_NAME_LENGTH = 128
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,199}")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")


def check_instance_id(value: object) -> str:
    if not isinstance(value, str) or not INSTANCE_ID.fullmatch(value):
        raise ValidationError(
            f"invalid instance id {value!r}: 1 to {MAX_ID_LENGTH} characters of letters, "
            "digits and ._:@/+=- starting with a letter or digit"
        )
    return value


def check_name(value: object, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValidationError(
            f"invalid {what} {value!r}: 1 to 128 characters of letters, digits and _.- "
            "starting with a letter or _"
        )
    return value


def check_version(value: object) -> str:
    if not isinstance(value, str) or not VERSION.fullmatch(value):
        raise ValidationError(
            f"invalid version {value!r}: letters, digits and _.+- starting with a letter or digit"
        )
    return value


# A registry asks for the newest version of a workflow on every start that names none:
# the few version strings there are get split once, not every time.
@functools.lru_cache(maxsize=1024)
def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Order versions naturally: '2' < '10', '1.9' < '1.10'; numbers before words."""
    parts = re.split(r"[.\-+_]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)
