"""Retry policies. Every delay, jitter included, is a pure function of the policy, the
instance, the step and the attempt, so a replay computes exactly what the live run did."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from replayflow.core.durations import Duration, to_ms
from replayflow.core.errors import ValidationError

Backoff = Literal["constant", "linear", "exponential"]


@dataclass(frozen=True)
class Retry:
    """limit is the most attempts a step gets, the first one included (limit=1: no retry).

    The delay before attempt n+1 is `delay` (constant), `delay * n` (linear) or
    `delay * 2**(n-1)` (exponential), capped at `max_delay`; with jitter, a deterministic
    draw in [50%, 100%] of that.
    """

    limit: int = 3
    delay: Duration = field(default="1s", compare=False)
    backoff: Backoff = "exponential"
    max_delay: Duration | None = field(default="5m", compare=False)
    jitter: bool = True
    # The durations in milliseconds, computed once when the policy is made. Equality
    # uses them, so Retry(delay="1s") == Retry(delay=1) and a policy read back from
    # state equals the one that was declared.
    base_ms: int = field(init=False, repr=False)
    cap_ms: int | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or self.limit < 1:
            raise ValidationError(f"Retry.limit must be an integer >= 1, got {self.limit!r}")
        if self.backoff not in ("constant", "linear", "exponential"):
            raise ValidationError(
                f"Retry.backoff must be constant, linear or exponential, got {self.backoff!r}"
            )
        object.__setattr__(self, "base_ms", to_ms(self.delay))
        cap = None if self.max_delay is None else to_ms(self.max_delay)
        object.__setattr__(self, "cap_ms", cap)

    def delay_ms(self, attempt: int, seed: str) -> int:
        """The wait after failed attempt `attempt` (1-based) before the next one."""
        base = self.base_ms
        if self.backoff == "linear":
            ms = base * attempt
        elif self.backoff == "exponential":
            ms = base * (2 ** min(attempt - 1, 62))
        else:
            ms = base
        if self.cap_ms is not None:
            ms = min(ms, self.cap_ms)
        if self.jitter and ms > 0:
            ms = ms // 2 + int(unit_draw(f"{seed}/{attempt}") * (ms - ms // 2))
        return ms

    def to_dict(self) -> dict[str, object]:
        """The recorded form (in a call's state record): durations in milliseconds."""
        return {
            "limit": self.limit,
            "delay": self.base_ms,
            "backoff": self.backoff,
            "max_delay": self.cap_ms,
            "jitter": self.jitter,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Retry:
        max_delay = data.get("max_delay")
        return cls(
            limit=int(str(data["limit"])),
            delay=f"{int(str(data['delay']))}ms",
            backoff=str(data["backoff"]),  # type: ignore[arg-type]
            max_delay=None if max_delay is None else f"{int(str(max_delay))}ms",
            jitter=bool(data["jitter"]),
        )


#: The policy of a step declared without one.
DEFAULT_RETRY = Retry()
#: One attempt: children (a child instance retries inside itself) and DSL calls that
#: run their own retry loop.
NO_RETRY = Retry(limit=1, jitter=False)


def unit_draw(seed: str) -> float:
    """A number in [0, 1) that depends on the seed alone."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
