"""When a schedule fires: cron expressions and intervals in a time zone, as pure functions.

A spec is the union of zero or more cron expressions and zero or more intervals, bounded
by an optional start and end, with optional jitter; or, instead of both, `after`: runs
one after another (see below). Its *slots* are the nominal times it
names, as epoch milliseconds; a slot is what a run is named after, and jitter only
delays when that run is started. Nothing here reads a clock: callers pass `after_ms`.

Cron library. cron expressions are matched by cronsim (the evaluator behind
Healthchecks.io, released regularly, typed, no dependencies). croniter was declared
abandoned by its author in 2024 and only later adopted by pallets-eco; its DST handling
has a long history of bugs (hourly jobs stuck on the transition hour, daily jobs that
skip the spring-forward day). cronsim reproduces Debian cron, DST rules included, and
is tested against it. Accepted: 5 fields (minute hour day-of-month month day-of-week),
or 6 with seconds first (as Quartz and Temporal write it); `*`, lists, ranges, steps,
month and day names (JAN, MON), `L`, `LW`, `5L`, `MON#2`; the macros @yearly, @annually,
@monthly, @weekly, @daily, @midnight and @hourly. When both day fields are restricted,
a day matches either (Vixie cron's OR), unless one starts with `*`.

Time zones and DST. Cron fields are read on the wall clock of the spec's IANA zone
(zoneinfo); intervals ignore the zone (they count from the Unix epoch). Following
Debian cron, an expression whose minute and hour fields both name fixed values is a
*fixed-time* expression, and any other (a `*` or `*/n` minute or hour) is an
*elapsed-time* expression:
- Spring forward, Europe/Berlin 2026-03-29, the clock jumps from 02:00 CET to 03:00
  CEST. A fixed-time `30 2 * * *` fires once, at 03:00 CEST (01:00 UTC), the first
  instant after the gap; its slot is that instant. An elapsed-time `30 * * * *` has no
  02:30 that day: 01:30 CET is followed by 03:30 CEST, 60 minutes apart.
- Fall back, Europe/Berlin 2026-10-25, the clock goes from 03:00 CEST back to 02:00 CET.
  A fixed-time `30 2 * * *` fires once, at the first 02:30 (CEST, 00:30 UTC); the
  repeat an hour later does not fire. An elapsed-time `30 * * * *` fires at both 02:30s
  (00:30 and 01:30 UTC), so an hourly schedule runs 25 times that day, every 60 minutes.
Why this is the best choice: a fixed-time schedule means "once a day at this time", so
it runs exactly once on every calendar day, at the nearest real time, and never twice.
Temporal matches the clock literally: its 02:30 job does not run at all on the
spring-forward day and runs twice on the fall-back day (its docs recommend UTC to avoid
that). Plain cron loses nothing either way but has no time zone per job. An
elapsed-time schedule means "every so often", so it keeps its real period, as in cron
and Temporal. A 6-field expression follows the rule of its minute and hour fields; its
seconds apply within each minute that rule yields (cronsim alone would match 6-field
expressions literally). Each slot is a distinct instant, so slot names never collide.
Slots are recorded when fired, so a later tzdata release (a government moving its DST
dates) changes only future slots, never the replay of past ones.

Intervals: `every` with an `offset` fire at epoch + offset + k * every (the offset shifts
the phase: every 1h offset 15m fires at :15). Both are whole seconds, so every slot has
a distinct name at the second resolution of `slot_name`.

Bounds: slots before `start_ms` or after `end_ms` do not exist (both inclusive).

Rerun after (the Serverless Workflow DSL's `schedule.after`): the first run starts when
the schedule is created (or at `start_ms`), each next one `rerun_after_ms` after the
previous run ended. Such slots depend on when runs end, so next_fire_times cannot
predict them (it gives none); the schedule fold works them out from its runs with
`rerun_slot`. A spec is either this or cron/intervals, never both.

Jitter: a run starts `jitter_for(...)` ms after its slot: a value in [0, jitter_ms),
also below the gap to the next slot so runs start in slot order. It is a hash of the
schedule id and the slot, so every replay and every orchestrator computes the same
value; the schedule records it with the firing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from replayflow.core.errors import ValidationError

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_SLOTS_BETWEEN = 10_000  # a range with more slots is refused, not truncated
_SECOND = 1000
_MIN_EPOCH_MS = 0
_MAX_EPOCH_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: slot names stay fixed-width


@dataclass(frozen=True)
class Interval:
    """Every `every_ms`, at `offset_ms` past each multiple of it since the epoch."""

    every_ms: int
    offset_ms: int = 0

    def __post_init__(self) -> None:
        if not _whole_seconds(self.every_ms) or self.every_ms < _SECOND:
            raise ValidationError(
                f"an interval must be a whole number of seconds, at least 1s: {self.every_ms}ms"
            )
        if not _whole_seconds(self.offset_ms) or not 0 <= self.offset_ms < self.every_ms:
            raise ValidationError(
                f"an interval offset must be whole seconds in [0, every): {self.offset_ms}ms "
                f"for every {self.every_ms}ms"
            )


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule fires on; checked when built, so an invalid spec cannot exist."""

    cron: tuple[str, ...] = ()
    intervals: tuple[Interval, ...] = ()
    timezone: str = "UTC"
    start_ms: int | None = None
    end_ms: int | None = None
    jitter_ms: int = 0
    rerun_after_ms: int | None = None
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.cron, str) or isinstance(self.intervals, Interval):
            raise ValidationError("cron and intervals are tuples (one entry or more)")
        # Lists (as read from JSON or Avro) become tuples: a spec is hashable and compares
        # equal however it was built.
        object.__setattr__(self, "cron", tuple(self.cron))
        object.__setattr__(self, "intervals", tuple(self.intervals))
        rerun = self.rerun_after_ms
        if rerun is not None:
            if self.cron or self.intervals:
                raise ValidationError(
                    "a schedule spec reruns after each run or follows cron/intervals, not both"
                )
            if isinstance(rerun, bool) or not isinstance(rerun, int) or rerun < 0:
                raise ValidationError(
                    f"the rerun delay must be milliseconds, not negative: {rerun!r}"
                )
        elif not self.cron and not self.intervals:
            raise ValidationError(
                "a schedule spec needs at least one cron expression or interval, or 'after'"
            )
        object.__setattr__(self, "_zone", _zone(self.timezone))
        for expression in self.cron:
            _check_cron(expression)
        for bound, name in ((self.start_ms, "start"), (self.end_ms, "end")):
            if bound is not None and not _MIN_EPOCH_MS <= bound <= _MAX_EPOCH_MS:
                raise ValidationError(f"the {name} time {bound} is outside 1970..9999")
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise ValidationError(
                f"the end time {self.end_ms} is before the start time {self.start_ms}"
            )
        if isinstance(self.jitter_ms, bool) or not isinstance(self.jitter_ms, int):
            raise ValidationError(f"jitter must be whole milliseconds: {self.jitter_ms!r}")
        if self.jitter_ms < 0:
            raise ValidationError(f"jitter cannot be negative: {self.jitter_ms}ms")

    @property
    def zone(self) -> ZoneInfo:
        return self._zone


def next_fire_times(spec: ScheduleSpec, after_ms: int, n: int) -> list[int]:
    """The next `n` slots strictly after `after_ms` (fewer when the spec ends first)."""
    if n <= 0:
        return []
    after_ms = max(after_ms, (spec.start_ms - 1) if spec.start_ms is not None else after_ms)
    candidates: set[int] = set()
    for expression in spec.cron:
        candidates.update(_cron_slots(expression, spec.zone, after_ms, n))
    for interval in spec.intervals:
        candidates.update(_interval_slots(interval, after_ms, n))
    slots = sorted(candidates)[:n]
    end = spec.end_ms if spec.end_ms is not None else _MAX_EPOCH_MS
    return [slot for slot in slots if slot <= end]


def rerun_slot(spec: ScheduleSpec, earliest_ms: int, handled_through_ms: int) -> int | None:
    """The next slot of a `rerun_after_ms` spec: at `earliest_ms` (the previous run's end
    plus the delay, or the creation for the first run), on a whole second after every
    slot handled so far, within the bounds; None past the end."""
    slot = max(earliest_ms, handled_through_ms + 1, spec.start_ms or 0)
    slot = -(-slot // _SECOND) * _SECOND  # slot names have whole seconds
    if spec.end_ms is not None and slot > spec.end_ms:
        return None
    return slot


def next_slot(spec: ScheduleSpec, after_ms: int) -> int | None:
    found = next_fire_times(spec, after_ms, 1)
    return found[0] if found else None


def slots_between(spec: ScheduleSpec, start_ms: int, end_ms: int) -> list[int]:
    """Every slot in [start_ms, end_ms) in order; ValidationError past MAX_SLOTS_BETWEEN."""
    if end_ms < start_ms:
        raise ValidationError(f"the range ends ({end_ms}) before it starts ({start_ms})")
    found: list[int] = []
    after = start_ms - 1
    while True:
        batch = [slot for slot in next_fire_times(spec, after, 256) if slot < end_ms]
        found.extend(batch)
        if len(found) > MAX_SLOTS_BETWEEN:
            raise ValidationError(
                f"the range holds more than {MAX_SLOTS_BETWEEN} slots: split it into smaller ones"
            )
        if len(batch) < 256:
            return found
        after = batch[-1]


def jitter_for(spec: ScheduleSpec, schedule_id: str, slot_ms: int) -> int:
    """The delay of the run for `slot_ms`: the same for every caller, always the same."""
    if spec.jitter_ms <= 1:
        return 0
    bound = spec.jitter_ms
    following = next_slot(spec, slot_ms)
    if following is not None:
        bound = min(bound, following - slot_ms)
    digest = hashlib.sha256(f"{schedule_id}\x00{slot_ms}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % bound


def fire_time(spec: ScheduleSpec, schedule_id: str, slot_ms: int) -> int:
    return slot_ms + jitter_for(spec, schedule_id, slot_ms)


# -- slot names ------------------------------------------------------------------------


def slot_name(slot_ms: int) -> str:
    """A slot as UTC ISO 8601 basic format, `20260329T010000Z`: fixed width, so names sort
    in time order; only digits, T and Z, so `<schedule id>-<name>` is a valid instance id;
    UTC, so the two 02:30s of a fall-back night get different names."""
    return datetime.fromtimestamp(slot_ms // _SECOND, UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_slot_name(name: str) -> int:
    try:
        moment = datetime.strptime(name, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValidationError(f"not a slot name: {name!r}") from exc
    return int(moment.timestamp()) * _SECOND


def slot_instance_id(schedule_id: str, slot_ms: int) -> str:
    return f"{schedule_id}-{slot_name(slot_ms)}"


# -- internals -------------------------------------------------------------------------


def _whole_seconds(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value % _SECOND == 0


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ValidationError(f"unknown time zone {name!r}: use an IANA name such as 'UTC'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'"
        ) from exc


@lru_cache(maxsize=4096)
def _split(expression: str) -> tuple[str, tuple[int, ...]]:
    """The 5-field minute expression and the seconds within each minute."""
    if not isinstance(expression, str):
        raise ValidationError(f"a cron expression is text: {expression!r}")
    text = expression.strip()
    if text.startswith("@"):
        macro = MACROS.get(text.lower())
        if macro is None:
            raise ValidationError(
                f"unknown cron macro {expression!r} (known: {', '.join(sorted(MACROS))})"
            )
        return macro, (0,)
    fields = text.split()
    if len(fields) == 5:
        return text, (0,)
    if len(fields) != 6:
        raise ValidationError(
            f"cron {expression!r} needs 5 fields (minute hour day month weekday) or 6 "
            f"(second first), got {len(fields)}"
        )
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        matches = CronSim(f"{fields[0]} * * * * *", epoch - timedelta(seconds=1))
        seconds = tuple(m.second for m in islice(matches, 60) if m.minute == 0)
    except CronSimError as exc:
        raise ValidationError(f"invalid cron {expression!r}: {exc} (the seconds field)") from exc
    return " ".join(fields[1:]), seconds


def _check_cron(expression: str) -> None:
    minutes, _ = _split(expression)
    try:
        matches = CronSim(minutes, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise ValidationError(f"invalid cron {expression!r}: {exc}") from exc
    try:
        next(matches)
    except StopIteration:
        raise ValidationError(f"cron {expression!r} never matches") from None


def _cron_slots(expression: str, zone: ZoneInfo, after_ms: int, n: int) -> list[int]:
    minutes, seconds = _split(expression)
    # Start a minute early: a minute that began before `after_ms` may still hold later
    # seconds; anything at or before `after_ms` is dropped below.
    start = datetime.fromtimestamp(after_ms // _SECOND - 60, zone)
    found: list[int] = []
    try:
        for minute in CronSim(minutes, start):
            base = int(minute.timestamp()) * _SECOND
            if base > _MAX_EPOCH_MS:
                break
            found.extend(t for s in seconds if (t := base + s * _SECOND) > after_ms)
            if len(found) >= n:
                break
    except StopIteration:  # cronsim gives up after 50 years without a match
        pass
    return found[:n]


def _interval_slots(interval: Interval, after_ms: int, n: int) -> list[int]:
    k = (after_ms - interval.offset_ms) // interval.every_ms + 1
    first = interval.offset_ms + k * interval.every_ms
    return [first + i * interval.every_ms for i in range(n)]
