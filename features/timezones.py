"""Local wall-clock time of UTC instants in IANA timezones, in numpy, DST-correct.

Each timezone's UTC-offset history is turned once into a table of transition instants (cached),
so converting any number of timestamps is a ``searchsorted`` plus an addition: the same cost
model for ten million events in training as for one customer's history in serving, and no
pandas on the serving path.
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np
import pandas as pd

from features.eventlog import NS_PER_HOUR

NS_PER_SECOND: Final = 10**9
HOURS_PER_WEEK: Final = 168
#: 1970-01-01 was a Thursday: day 0 of the epoch is weekday 3 counting from Monday = 0.
_EPOCH_WEEKDAY: Final = 3
#: Offsets are sampled on this grid and every change is then located to the second.
_GRID_START: Final = pd.Timestamp("1970-01-01", tz="UTC").value
_GRID_STOP: Final = pd.Timestamp("2100-01-01", tz="UTC").value
_GRID_STEP: Final = 6 * NS_PER_HOUR


def _offsets_at(tz_name: str, instants_ns: np.ndarray) -> np.ndarray:
    utc = pd.DatetimeIndex(instants_ns.astype("datetime64[ns]")).tz_localize("UTC")
    wall = utc.tz_convert(tz_name).tz_localize(None)
    return np.asarray(wall.asi8 - utc.asi8, dtype=np.int64)


@cache
def offset_table(tz_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(since_ns, offset_ns)``: from ``since_ns[i]`` on, local = UTC + ``offset_ns[i]``.

    ``since_ns[0]`` is the smallest int64, so every instant falls in a segment. Instants after
    2100 keep the last offset of 2099.
    """
    grid = np.arange(_GRID_START, _GRID_STOP, _GRID_STEP, dtype=np.int64)
    offsets = _offsets_at(tz_name, grid)
    changes = np.flatnonzero(offsets[1:] != offsets[:-1])
    # Bisect every change to the second: lo keeps the old offset, hi has the new one.
    lo, hi = grid[changes], grid[changes + 1]
    old = offsets[changes]
    while True:
        open_ = hi - lo > NS_PER_SECOND
        if not open_.any():
            break
        mid = lo + ((hi - lo) // 2 // NS_PER_SECOND) * NS_PER_SECOND
        mid = np.where(open_ & (mid == lo), lo + NS_PER_SECOND, mid)
        same = _offsets_at(tz_name, mid) == old
        lo = np.where(open_ & same, mid, lo)
        hi = np.where(open_ & ~same, mid, hi)
    since = np.concatenate([[np.iinfo(np.int64).min], hi]).astype(np.int64)
    table = np.concatenate([offsets[:1], offsets[changes + 1]]).astype(np.int64)
    since.setflags(write=False)
    table.setflags(write=False)
    return since, table


def local_ns(ts_ns: np.ndarray, tz_codes: np.ndarray, tz_names: tuple[str, ...]) -> np.ndarray:
    """Local wall-clock nanoseconds of each UTC instant; ``tz_codes`` index ``tz_names``."""
    if len(tz_names) == 1:
        since, offsets = offset_table(tz_names[0])
        return ts_ns + offsets[np.searchsorted(since, ts_ns, side="right") - 1]
    out = np.empty_like(ts_ns)
    order = np.argsort(tz_codes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(tz_codes, minlength=len(tz_names)))])
    for code in np.flatnonzero(bounds[1:] > bounds[:-1]):
        rows = order[bounds[code] : bounds[code + 1]]
        since, offsets = offset_table(tz_names[code])
        ts = ts_ns[rows]
        out[rows] = ts + offsets[np.searchsorted(since, ts, side="right") - 1]
    return out


def hour_of_week(local: np.ndarray) -> np.ndarray:
    """Hour of the week of local wall-clock nanoseconds: Monday 00:00-00:59 is 0."""
    return (local // NS_PER_HOUR + _EPOCH_WEEKDAY * 24) % HOURS_PER_WEEK
