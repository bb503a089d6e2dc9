"""Candidate send times ("slots") in the customer's own timezone, with the quiet-hours rule.

Slots are ``now`` (when immediate sends are allowed) and then every local hour start up to the
horizon. Two rows are computed: row 0 ignores quiet hours (channels they do not apply to), row 1
applies them. The quiet-hours rule (docs/decision-policy.md):

- ``shift``: a slot inside quiet hours moves to the end of the quiet period, the first allowed
  minute in local time (e.g. 23:00 -> 08:00 the next morning), and is scored for the hour it is
  actually sent at. Slots that land on the same instant are merged: one is kept (preferably one
  that was never shifted), the others are reported as excluded with ``quiet_hours_shifted``. A
  chosen send time into which quiet-hour slots were moved carries the reason
  ``quiet_hours_shifted``. A shifted slot may lie past the horizon by at most the length of the
  quiet period.
- ``drop``: slots inside quiet hours are excluded with ``quiet_hours``.

Local times come from ``zoneinfo``. Within a horizon the UTC offset rarely changes, so the fast
path asks zoneinfo twice and does the rest in numpy; across a DST transition every slot is
converted individually.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from models.policy.config import QuietHours, QuietHoursRule, SendTime
from models.policy.types import DecisionInputError

NS = 10**9
SECONDS_PER_DAY = 86_400
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
#: 1970-01-01 was a Thursday; hour-of-week 0 is Monday 00:00 local.
_EPOCH_WEEKDAY = 3


def to_ns(moment: datetime) -> int:
    """UTC nanoseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * SECONDS_PER_DAY + delta.seconds) * NS + delta.microseconds * 1000


def from_ns(ns: int) -> datetime:
    """Aware UTC datetime (microsecond precision) of nanoseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name``; a ``DecisionInputError`` naming the field if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DecisionInputError(
            f"timezone: expected an IANA timezone such as Europe/Paris, got {name!r}"
        ) from exc


def _offset(tz: ZoneInfo, utc_seconds: int) -> int:
    offset = datetime.fromtimestamp(utc_seconds, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offsets(tz: ZoneInfo, utc_seconds: np.ndarray) -> np.ndarray:
    first, last = _offset(tz, int(utc_seconds[0])), _offset(tz, int(utc_seconds[-1]))
    if first == last:
        return np.full(utc_seconds.shape, first, dtype=np.int64)
    return np.array([_offset(tz, int(s)) for s in utc_seconds], dtype=np.int64)


def local_send_time(ns: int, timezone: str) -> str:
    """ISO 8601 local time with its UTC offset, e.g. ``2024-03-10T08:00:00-04:00``."""
    return from_ns(ns).astimezone(zone(timezone)).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class SlotGrid:
    """Candidate send times, shape ``(2, n_slots)``: row 0 without quiet hours, row 1 with."""

    send_ns: np.ndarray  # int64 UTC ns
    hour_of_week: np.ndarray  # intp, local, Monday 00:00 = 0
    local_hour: np.ndarray  # intp, 0-23
    shifted: np.ndarray  # bool: moved out of quiet hours
    blocked: np.ndarray  # bool: dropped (drop rule) or merged into another slot (shift rule)

    @property
    def n_slots(self) -> int:
        return int(self.send_ns.shape[1])


def _calendar(local_seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    days, second_of_day = np.divmod(local_seconds, SECONDS_PER_DAY)
    hour = second_of_day // 3600
    weekday = (days + _EPOCH_WEEKDAY) % 7
    return (weekday * 24 + hour).astype(np.intp), hour.astype(np.intp)


def _wall_to_utc(tz: ZoneInfo, local_seconds: int) -> int:
    wall = (_NAIVE_EPOCH + timedelta(seconds=local_seconds)).replace(tzinfo=tz)
    return int(wall.timestamp())


def _quiet_mask(second_of_day: np.ndarray, start: int, end: int) -> np.ndarray:
    if start < end:
        return (second_of_day >= start) & (second_of_day < end)
    return (second_of_day >= start) | (second_of_day < end)


QuietKey = tuple[int, int, QuietHoursRule]


def _grid(tz: ZoneInfo, utc_seconds: np.ndarray, quiet: QuietKey | None) -> SlotGrid:
    """The grid of whole-second slots, quiet hours applied in row 1."""
    offsets = _offsets(tz, utc_seconds)
    local_seconds = utc_seconds + offsets
    send_ns = utc_seconds * NS
    how, hour = _calendar(local_seconds)
    n = utc_seconds.shape[0]
    no_flags = np.zeros(n, dtype=bool)
    q_send_ns, q_how, q_hour = send_ns.copy(), how.copy(), hour.copy()
    shifted, blocked = no_flags, no_flags
    if quiet is not None:
        start, end, rule = quiet
        second_of_day = local_seconds % SECONDS_PER_DAY
        inside = _quiet_mask(second_of_day, start, end)
        if rule is QuietHoursRule.DROP:
            blocked = inside
        elif inside.any():
            shifted = inside
            target_local = local_seconds[inside] + (end - second_of_day[inside]) % SECONDS_PER_DAY
            approx_utc = target_local - offsets[0]
            constant = bool((offsets == offsets[0]).all())
            if constant:
                # one more zoneinfo call tells whether a transition hides between the last
                # slot and the latest shifted send time
                constant = _offset(tz, int(approx_utc.max())) == offsets[0]
            if constant:
                target_utc = approx_utc
            else:
                target_utc = np.array([_wall_to_utc(tz, int(t)) for t in target_local], np.int64)
            q_send_ns[inside] = target_utc * NS
            q_how[inside], q_hour[inside] = _calendar(target_utc + _offsets(tz, target_utc))
            # merge slots that now share an instant: keep an unshifted one, else the earliest;
            # the kept slot is flagged shifted when quiet-hour slots were merged into it
            order = np.lexsort((np.arange(n), shifted, q_send_ns))
            repeats = np.zeros(n, dtype=bool)
            repeats[1:] = q_send_ns[order][1:] == q_send_ns[order][:-1]
            blocked = np.zeros(n, dtype=bool)
            blocked[order] = repeats
            group = np.cumsum(~repeats) - 1
            group_shifted = np.bincount(group, weights=shifted[order]) > 0
            shifted = shifted.copy()
            shifted[order] = group_shifted[group]
    grid = SlotGrid(
        np.stack([send_ns, q_send_ns]),
        np.stack([how, q_how]),
        np.stack([hour, q_hour]),
        np.stack([no_flags, shifted]),
        np.stack([no_flags, blocked]),
    )
    for array in (grid.send_ns, grid.hour_of_week, grid.local_hour, grid.shifted, grid.blocked):
        array.flags.writeable = False  # shared through the cache
    return grid


@lru_cache(maxsize=2048)
def _hourly_grid(
    timezone: str, first_hour_utc: int, horizon_hours: int, quiet: QuietKey | None
) -> SlotGrid:
    """The hourly slots: they depend on the timezone and the hour only, so customers of a
    timezone share them within an hour (the cache makes them free on the request path)."""
    utc_seconds = first_hour_utc + 3600 * np.arange(horizon_hours, dtype=np.int64)
    return _grid(zone(timezone), utc_seconds, quiet)


def quiet_key(quiet: QuietHours | None) -> QuietKey | None:
    """The quiet-hours settings slot grids depend on, as a hashable cache key."""
    return None if quiet is None else (quiet.start_seconds, quiet.end_seconds, quiet.rule)


@lru_cache(maxsize=2048)
def _padded_hourly_grid(
    timezone: str, first_hour_utc: int, horizon_hours: int, quiet: QuietKey | None
) -> SlotGrid:
    """The hourly grid with an empty first column for "send now", filled per request."""
    hourly = _hourly_grid(timezone, first_hour_utc, horizon_hours, quiet)

    def pad(rows: np.ndarray) -> np.ndarray:
        padded = np.zeros((2, rows.shape[1] + 1), dtype=rows.dtype)
        padded[:, 1:] = rows
        padded.flags.writeable = False
        return padded

    return SlotGrid(
        pad(hourly.send_ns), pad(hourly.hour_of_week), pad(hourly.local_hour),
        pad(hourly.shifted), pad(hourly.blocked),
    )


def build_slot_grid(
    now_ns: int, timezone: str, send_time: SendTime, quiet: QuietKey | None
) -> SlotGrid:
    tz = zone(timezone)
    now_s = now_ns // NS
    offset_now = _offset(tz, now_s)
    first_hour_utc = ((now_s + offset_now) // 3600 + 1) * 3600 - offset_now
    if not send_time.include_immediate:
        return _hourly_grid(timezone, first_hour_utc, send_time.horizon_hours, quiet)
    padded = _padded_hourly_grid(timezone, first_hour_utc, send_time.horizon_hours, quiet)
    return _with_immediate(padded, tz, now_ns, offset_now, quiet)


def _with_immediate(
    padded: SlotGrid, tz: ZoneInfo, now_ns: int, offset_now: int, quiet: QuietKey | None
) -> SlotGrid:
    """Fill the "send now" column (0), applying the quiet-hours rule to it alone."""
    local = now_ns // NS + offset_now
    second_of_day = local % SECONDS_PER_DAY
    inside = quiet is not None and (
        quiet[0] <= second_of_day < quiet[1] if quiet[0] < quiet[1]
        else (second_of_day >= quiet[0] or second_of_day < quiet[1])
    )
    # the flags change only when "now" falls in quiet hours: share them otherwise
    grid = SlotGrid(
        padded.send_ns.copy(), padded.hour_of_week.copy(), padded.local_hour.copy(),
        padded.shifted.copy() if inside else padded.shifted,
        padded.blocked.copy() if inside else padded.blocked,
    )
    how = ((local // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7) * 24 + local % SECONDS_PER_DAY // 3600
    grid.send_ns[:, 0] = now_ns
    grid.hour_of_week[:, 0] = how
    grid.local_hour[:, 0] = how % 24
    if quiet is None or not inside:
        return grid
    end, rule = quiet[1], quiet[2]
    if rule is QuietHoursRule.DROP:
        grid.blocked[1, 0] = True
        return grid
    target_local = local + (end - second_of_day) % SECONDS_PER_DAY
    target_utc = target_local - offset_now
    if _offset(tz, target_utc) != offset_now:
        target_utc = _wall_to_utc(tz, target_local)
    target_local = target_utc + _offset(tz, target_utc)
    q_how = ((target_local // SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7) * 24 + (
        target_local % SECONDS_PER_DAY // 3600
    )
    grid.send_ns[1, 0] = target_utc * NS
    grid.hour_of_week[1, 0] = q_how
    grid.local_hour[1, 0] = q_how % 24
    grid.shifted[1, 0] = True
    same = np.flatnonzero(grid.send_ns[1, 1:] == target_utc * NS) + 1
    if same.shape[0]:
        kept = same[~grid.blocked[1, same]]
        if kept.shape[0] and not grid.shifted[1, kept[0]]:
            # an hourly slot sends at that time anyway: merge "now" into it
            grid.blocked[1, 0] = True
            grid.shifted[1, kept] = True
        else:
            grid.blocked[1, same] = True  # "now" is the earliest original: it is kept
    return grid
