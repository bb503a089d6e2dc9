"""Local time for the simulator and the oracle: UTC offsets, local hours and scheduled sends.

Offsets come from the tz database once per (timezone, year) as a table of the instants where the
offset changes (every modern transition falls on a quarter hour in UTC, so sampling every 15
minutes finds each exactly); after that every conversion is a numpy ``searchsorted``, fast enough
for the simulator's inner loop and exact for any instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

SECONDS_PER_HOUR = 3_600
SECONDS_PER_DAY = 86_400
NS_PER_SECOND = 10**9
_EPOCH_YEAR = 1970
#: UTC offsets never exceed this, so a local wall time lies within it of its instant.
_MAX_OFFSET = 15 * SECONDS_PER_HOUR


@lru_cache(maxsize=512)
def _zone_year(zone: str, year: int) -> tuple[np.ndarray, np.ndarray]:
    """(segment starts in epoch seconds, offset seconds) of ``zone`` during ``year`` (UTC)."""
    grid = pd.date_range(f"{year}-01-01", f"{year + 1}-01-01", freq="15min", tz="UTC",
                         inclusive="left")
    local = grid.tz_convert(zone).tz_localize(None)
    offsets = (local - grid.tz_localize(None)).total_seconds().to_numpy()
    starts = np.concatenate([[0], np.flatnonzero(np.diff(offsets)) + 1])
    return grid.as_unit("ns").asi8[starts] // NS_PER_SECOND, offsets[starts]


class _ZoneTable:
    """Offsets of one timezone over a span of years, as change points."""

    def __init__(self, zone: str, seconds: np.ndarray) -> None:
        finite = seconds[np.isfinite(seconds)]
        low, high = (finite.min(), finite.max()) if len(finite) else (0.0, 0.0)
        self.starts, self.offsets = _zone_years(
            zone, _year(low - _MAX_OFFSET - SECONDS_PER_DAY),
            _year(high + _MAX_OFFSET + SECONDS_PER_DAY),
        )

    def segment(self, seconds: np.ndarray) -> np.ndarray:
        return np.maximum(np.searchsorted(self.starts, seconds, side="right") - 1, 0)

    def offset(self, seconds: np.ndarray) -> np.ndarray:
        return self.offsets[self.segment(seconds)]

    def to_utc(self, wall: np.ndarray) -> np.ndarray:
        """Instants of local wall times: the first of two (DST overlap); a wall time in a DST
        gap moves forward to the end of the gap (like pandas' ``shift_forward``)."""
        before = self.offset(wall - _MAX_OFFSET)
        after = self.offset(wall + _MAX_OFFSET)
        early, late = wall - before, wall - after
        early_ok = self.offset(early) == before
        late_ok = self.offset(late) == after
        gap_end = self.starts[self.segment(early)]
        return np.where(early_ok & late_ok, np.minimum(early, late),
                        np.where(early_ok, early, np.where(late_ok, late, gap_end)))


@lru_cache(maxsize=256)
def _zone_years(zone: str, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
    parts = [_zone_year(zone, year) for year in range(first, last + 1)]
    return (np.concatenate([p[0] for p in parts]).astype(np.float64),
            np.concatenate([p[1] for p in parts]))


def _year(seconds: float) -> int:
    return (datetime(_EPOCH_YEAR, 1, 1) + timedelta(seconds=float(seconds))).year


def _epoch_seconds(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    index = pd.DatetimeIndex(ts)
    if index.tz is None:
        index = index.tz_localize("UTC")
    seconds = index.as_unit("ns").asi8.astype(np.float64) / NS_PER_SECOND
    seconds[index.isna()] = np.nan
    return seconds


def _to_ns(seconds: np.ndarray) -> np.ndarray:
    """Integer nanoseconds of float seconds (whole seconds exact), 0 where not finite."""
    finite = np.where(np.isfinite(seconds), seconds, 0.0)
    whole = np.floor(finite)
    return whole.astype(np.int64) * NS_PER_SECOND + np.round((finite - whole) * NS_PER_SECOND
                                                             ).astype(np.int64)


def _index(ns: np.ndarray, valid: np.ndarray) -> pd.DatetimeIndex:
    values = np.where(valid, ns, np.iinfo(np.int64).min)  # the minimum int64 is NaT
    return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")


def _from_epoch_seconds(seconds: np.ndarray) -> pd.DatetimeIndex:
    return _index(_to_ns(seconds), np.isfinite(seconds))


def _by_zone(timezones: pd.Series | np.ndarray) -> list[tuple[str, np.ndarray]]:
    codes, zones = pd.factorize(np.asarray(timezones, dtype=object), sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(zones) + 1))
    return [(str(zones[z]), order[bounds[z]:bounds[z + 1]]) for z in range(len(zones))]


def utc_offsets(timezones: Sequence[str], start: datetime, n_days: int) -> np.ndarray:
    """Seconds to add to UTC to get local time, per timezone and calendar day ``start + d``,
    taken at local noon (the simulator's day grid; exact away from night-time DST switches)."""
    table = np.zeros((len(timezones), n_days), dtype=np.float64)
    for z, name in enumerate(timezones):
        zone = ZoneInfo(name)
        for d in range(n_days):
            date = (start + timedelta(days=d)).date()
            offset = datetime(date.year, date.month, date.day, 12, tzinfo=zone).utcoffset()
            table[z, d] = 0.0 if offset is None else offset.total_seconds()
    return table


def to_timestamps(start: datetime, seconds: np.ndarray) -> pd.DatetimeIndex:
    """UTC timestamps of float seconds since ``start`` (NaN -> NaT), at ns resolution."""
    seconds = np.asarray(seconds, dtype=np.float64)
    return _index(_to_ns(seconds) + pd.Timestamp(start).as_unit("ns").value, np.isfinite(seconds))


def to_seconds(start: datetime, timestamps: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Float seconds since ``start`` of UTC timestamps (NaT -> NaN)."""
    return _epoch_seconds(timestamps) - pd.Timestamp(start).as_unit("ns").value / NS_PER_SECOND


def local_hour(ts: pd.Series | pd.DatetimeIndex, timezones: pd.Series | np.ndarray) -> np.ndarray:
    """Hour of day (0-23) of each UTC timestamp in its row's IANA timezone; NaT -> -1."""
    seconds = _epoch_seconds(ts)
    hours = np.full(len(seconds), -1, dtype=np.int64)
    for zone, rows in _by_zone(timezones):
        table = _ZoneTable(zone, seconds[rows])
        local = seconds[rows] + table.offset(seconds[rows])
        valid = np.isfinite(local)
        hours[rows[valid]] = (np.floor(local[valid] / SECONDS_PER_HOUR) % 24).astype(np.int64)
    return hours


def schedule_send_at(
    ts: pd.Series | pd.DatetimeIndex,
    timezones: pd.Series | np.ndarray,
    send_hour: np.ndarray,
    min_delay_hours: float,
) -> pd.DatetimeIndex:
    """The first instant at local ``send_hour``:00 that is at least ``min_delay_hours`` after ts.

    This is how the simulator turns a chosen send hour into ``send_at``; evaluators use it to put
    any policy's hour on the same clock. A wall time in a DST gap moves to the end of the gap;
    in a DST overlap the first occurrence is taken.
    """
    earliest = _epoch_seconds(ts) + min_delay_hours * SECONDS_PER_HOUR
    hours = np.broadcast_to(np.asarray(send_hour, dtype=np.float64), earliest.shape)
    result = np.full(len(earliest), np.nan)
    for zone, rows in _by_zone(timezones):
        table = _ZoneTable(zone, earliest[rows])
        wall = earliest[rows] + table.offset(earliest[rows])
        candidate = np.floor(wall / SECONDS_PER_DAY) * SECONDS_PER_DAY + hours[rows] * 3600.0
        at = table.to_utc(candidate)
        late = at < earliest[rows]
        at[late] = table.to_utc(candidate[late] + SECONDS_PER_DAY)
        result[rows] = at
    return _from_epoch_seconds(result)
