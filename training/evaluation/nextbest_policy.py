"""Run the nextbest decision engine on logged decision states, as serving would decide there.

For each (customer, decision time) the engine sees what serving would: point-in-time features
and the hour-of-week profile computed from the observed events strictly before the decision
(``features.pointintime``), the live consents, the journey stage and cart for eligibility, and
its models. The evaluation then restricts every policy to one candidate set
(``training.evaluation.oracle_values``), and the engine is set up to respect it exactly:

- ``candidate_message_ids`` / ``allowed_channels`` carry the set's eligible messages and
  consented channels (eligibility factorises into message x channel, so this is exact);
- the contact policy keeps no caps, suppressions or cooldowns of its own (the candidate set
  already applies the simulator's cooldowns), and quiet hours cover every hour outside the
  allowed send hours on every channel, so each send slot the engine scores is an allowed hour;
- exploration and control groups are off: the evaluation values the greedy policy.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing as mp
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import datetime

import numpy as np
import pandas as pd

from features.contract import CHANNELS, Channel, Col, Stage
from features.customers import CustomerTable
from features.definitions import FeatureSpec
from features.eventlog import EventLog, ts_to_ns
from features.io import Journeys
from features.pointintime import compute_features, hour_profile
from features.simulator.clock import local_hour
from models._boosting import CalibratedBooster
from models.policy import (
    ArbitrationConfig,
    ContactPolicy,
    DecisionEngine,
    DecisionRequest,
    ModelSet,
    load_arbitration,
    load_contact_policy,
)
from models.policy.config import ControlGroups, Exploration, QuietHours
from models.policy.slots import to_ns
from training.evaluation.oracle_values import PolicyActions

logger = logging.getLogger(__name__)

#: Requests decided per ``decide_many`` call (models score each batch at once).
BATCH_SIZE = 2_000


def quiet_hours_outside(send_hours: Sequence[int]) -> QuietHours | None:
    """Quiet hours on every channel covering exactly the hours outside ``send_hours``, which
    must be one contiguous (possibly midnight-wrapping) block; ``None`` when all 24 are allowed."""
    hours = sorted(set(int(h) for h in send_hours))
    if len(hours) == 24:
        return None
    allowed = np.zeros(24, dtype=bool)
    allowed[hours] = True
    starts = [h for h in range(24) if allowed[h] and not allowed[h - 1]]
    if len(starts) != 1:
        raise ValueError(f"send hours must form one contiguous block of local hours: {hours}")
    first = starts[0]
    last = first
    while allowed[(last + 1) % 24]:
        last = (last + 1) % 24
    return QuietHours(start=f"{(last + 1) % 24:02d}:00", end=f"{first:02d}:00",
                      channels=tuple(CHANNELS))


def shipped_send_hours() -> tuple[int, ...]:
    """Local hours outside the shipped contact policy's quiet hours: the send hours of a log
    without simulator truth (whose own allowed hours are unknown)."""
    quiet = load_contact_policy().quiet_hours
    if quiet is None:
        return tuple(range(24))
    start, end = quiet.start_seconds, quiet.end_seconds

    def inside(second: int) -> bool:
        return start <= second < end if start < end else (second >= start or second < end)

    return tuple(h for h in range(24) if not inside(h * 3600))


def evaluation_engine(
    catalog: pd.DataFrame,
    models: ModelSet,
    send_hours: Sequence[int],
    arbitration: ArbitrationConfig | None = None,
    seed: int = 0,
) -> DecisionEngine:
    """A decision engine that chooses within the evaluation's candidate set (see module doc)."""
    base = arbitration or load_arbitration()
    greedy = base.model_copy(update={
        "exploration": Exploration(epsilon=0.0),
        "control_groups": ControlGroups(global_share=0.0, salt=base.control_groups.salt),
    })
    message_ids = [str(m) for m in catalog[Col.MESSAGE_ID]]
    contact = ContactPolicy(
        cooldown_hours={m: 0.0 for m in message_ids},
        quiet_hours=quiet_hours_outside(send_hours),
    )
    return DecisionEngine(catalog, contact, greedy, models, seed=seed, deterministic_ids=True)


class ObservedJourneys:
    """The observed side of a data set, prepared once: event log, profiles, feature spec."""

    def __init__(self, journeys: Journeys, spec: FeatureSpec) -> None:
        self.spec = spec
        self.message_ids = tuple(str(m) for m in journeys.catalog[Col.MESSAGE_ID])
        self.customers = CustomerTable.from_frame(journeys.customers, spec)
        self.log = EventLog.from_frame(
            journeys.events, self.message_ids, customer_ids=list(self.customers.customer_ids)
        )

    def features(self, codes: np.ndarray, as_of_ns: np.ndarray) -> np.ndarray:
        """Point-in-time feature matrix of (customer code, as-of) queries (``spec.names``)."""
        return compute_features(self.log, self.customers, self.spec, codes, as_of_ns)

    def codes(self, customer_ids: pd.Series | np.ndarray) -> np.ndarray:
        codes = pd.Index(self.log.customer_ids).get_indexer(
            np.asarray(customer_ids, dtype=object).astype(str)
        )
        if (codes < 0).any():
            unknown = np.asarray(customer_ids, dtype=object)[codes < 0][:5]
            raise ValueError(f"customer_id not in customers: {', '.join(map(str, unknown))}")
        return codes.astype(np.int64)


def nextbest_actions(
    engine: DecisionEngine,
    observed: ObservedJourneys,
    customer_ids: pd.Series | np.ndarray,
    ts: pd.Series | pd.DatetimeIndex,
    timezones: np.ndarray,
    stage: np.ndarray,
    cart_open: np.ndarray,
    eligible: np.ndarray,
    batch_size: int = BATCH_SIZE,
    features: np.ndarray | None = None,
    jobs: int | None = 1,
) -> PolicyActions:
    """The engine's decision for each row, as action codes (message, channel, local hour).

    ``stage`` holds stage codes (``features.contract.STAGES`` order) and ``eligible`` the
    (n, messages, channels) candidate pairs of each row, both in the catalog order the engine
    uses. ``features`` may carry the rows' feature matrix when the caller already has it.
    ``jobs`` worker processes (``None``: one per usable CPU) decide the batches, each forked
    from this one with the engine and its models as they are; the decisions are the same as
    in process (1), in the same order.
    """
    ids = np.asarray(customer_ids, dtype=object).astype(str)
    as_of = ts_to_ns(pd.Series(pd.DatetimeIndex(ts)))
    codes = observed.codes(ids)
    stages = list(Stage)
    n = ids.shape[0]
    moments = pd.DatetimeIndex(ts).tz_convert("UTC").to_pydatetime()
    # one pass over the event log for every row: a scan costs the same for 100 or 100,000 rows
    if features is None:
        features = observed.features(codes, as_of)
    profiles = hour_profile(observed.log, observed.customers, codes, as_of)
    consented = np.asarray(eligible.any(axis=1), dtype=bool)  # (n, channels)
    offered = np.asarray(eligible.any(axis=2), dtype=bool)  # (n, messages)
    restrictions = _Restrictions(engine.message_ids)
    rows = _DecisionRows(engine, restrictions, ids, moments, timezones, [stages[int(s)] for s in
                         stage], cart_open, features, profiles, consented, offered, batch_size)
    workers = min(resolve_jobs(jobs), -(-n // batch_size))
    # the collector would rescan the evaluation's data at every full pass while the engine
    # allocates decisions (and, after a fork, touch every page the workers share): set what
    # exists aside until the loop ends
    # (the boosters are looked up among the collector's objects: before the freeze)
    with _single_threaded_scoring() if workers > 1 else nullcontext():
        gc.freeze()
        try:
            if workers <= 1:
                message, channel, send_at = rows.decide(0, n)
            else:
                message, channel, send_at = _decide_in_workers(rows, n, workers)
        finally:
            gc.unfreeze()
    sends = message >= 0
    when = pd.DatetimeIndex(send_at.view("datetime64[ns]")).tz_localize("UTC")
    hour = np.where(sends, local_hour(when, timezones), -1)
    return PolicyActions(message, channel, hour)


def resolve_jobs(jobs: int | None) -> int:
    """Worker processes to use: ``jobs``, or one per CPU this process may run on (``None``)."""
    if jobs is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1 (or None for one per CPU), got {jobs}")
    return jobs


class _DecisionRows:
    """Everything the engine needs to decide any range of the rows (built once, before a fork:
    the workers read it from the parent's memory instead of receiving it pickled)."""

    def __init__(
        self, engine: DecisionEngine, restrictions: _Restrictions, ids: np.ndarray,
        moments: np.ndarray, timezones: np.ndarray, stages: list[Stage], cart_open: np.ndarray,
        features: np.ndarray, profiles: np.ndarray, consented: np.ndarray, offered: np.ndarray,
        batch_size: int,
    ) -> None:
        self.engine, self.restrictions = engine, restrictions
        self.ids, self.moments, self.timezones = ids, moments, timezones
        self.stages, self.cart_open = stages, cart_open
        self.features, self.profiles = features, profiles
        self.consented, self.offered = consented, offered
        self.batch_size = batch_size
        self.message_index = {m: i for i, m in enumerate(engine.message_ids)}
        self.channel_code = {c: j for j, c in enumerate(CHANNELS)}

    def decide(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(message code, channel code, send time ns) of rows ``lo:hi``; -1 / int64 min when
        the engine sends nothing."""
        n = hi - lo
        message = np.full(n, -1, dtype=np.int64)
        channel = np.full(n, -1, dtype=np.int64)
        send_at = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
        for start in range(lo, hi, self.batch_size):
            rows = range(start, min(start + self.batch_size, hi))
            requests = [
                self.restrictions.request(
                    self.ids[i], self.moments[i], str(self.timezones[i]), self.stages[i],
                    bool(self.cart_open[i]), self.features[i : i + 1], self.profiles[i : i + 1],
                    self.consented[i], self.offered[i],
                )
                for i in rows
            ]
            for i, decision in zip(rows, self.engine.decide_many(requests), strict=True):
                action = decision.action
                if action is None:
                    continue
                message[i - lo] = self.message_index[action.message_id]
                channel[i - lo] = self.channel_code[action.channel]
                send_at[i - lo] = to_ns(action.send_at)
            logger.debug("nextbest decided rows %d to %d", rows.start, rows.stop)
        return message, channel, send_at


#: The rows the forked workers decide: set in the parent just before the fork (never pickled).
_FORKED_ROWS: _DecisionRows | None = None
#: Batches a worker decides per task: small enough that the two workers finish together on a
#: machine whose cores other jobs also use, large enough that the tasks cost nothing.
BATCHES_PER_TASK = 4


def _decide_forked(bounds: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert _FORKED_ROWS is not None, "worker started without the parent's rows"
    return _FORKED_ROWS.decide(*bounds)


def _decide_in_workers(
    rows: _DecisionRows, n: int, workers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decide the rows in ``workers`` forked processes, task by task, results in row order."""
    global _FORKED_ROWS
    step = rows.batch_size * BATCHES_PER_TASK
    tasks = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
    _FORKED_ROWS = rows
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            parts = list(pool.map(_decide_forked, tasks))
    finally:
        _FORKED_ROWS = None
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


@contextmanager
def _single_threaded_scoring() -> Iterator[None]:
    """Every LightGBM booster of this process scores on one thread until the block ends, its
    small-batch scorer built now: the forked workers already fill the cores, and OpenMP (in
    LightGBM's large batches and its model dump, which the flat trees are built from) hangs a
    forked child once the parent has run it on more than one thread."""
    boosters = [b for b in gc.get_objects() if isinstance(b, CalibratedBooster)]
    threads = [b.n_jobs for b in boosters]
    for booster in boosters:
        booster.n_jobs = 1
        if booster.booster is not None:
            booster.raw(np.zeros((1, booster.booster.num_feature()), dtype=np.float64))
    try:
        yield
    finally:
        for booster, n_jobs in zip(boosters, threads, strict=True):
            booster.n_jobs = n_jobs


class _Restrictions:
    """Consents, allowed channels and candidate messages of a row from its candidate set.

    Rows share a handful of distinct sets, so each is turned into Python objects once (the
    engine only reads them)."""

    def __init__(self, message_ids: tuple[str, ...]) -> None:
        self.message_ids = message_ids
        self._channels: dict[bytes, tuple[dict[Channel, bool], tuple[Channel, ...]]] = {}
        self._messages: dict[bytes, tuple[str, ...]] = {}

    def request(
        self, customer_id: str, now: datetime, timezone: str, stage: Stage, cart_open: bool,
        features: np.ndarray, profile: np.ndarray, consented: np.ndarray, offered: np.ndarray,
    ) -> DecisionRequest:
        key = consented.tobytes()
        channels = self._channels.get(key)
        if channels is None:
            channels = (
                {c: bool(consented[j]) for j, c in enumerate(CHANNELS)},
                tuple(c for j, c in enumerate(CHANNELS) if consented[j]),
            )
            self._channels[key] = channels
        key = offered.tobytes()
        messages = self._messages.get(key)
        if messages is None:
            messages = tuple(m for j, m in enumerate(self.message_ids) if offered[j])
            self._messages[key] = messages
        return DecisionRequest(
            customer_id=customer_id,
            now=now,
            timezone=timezone,
            consents=channels[0],
            stage=stage,
            has_open_cart=cart_open,
            features=features,
            hour_profile=profile,
            history=None,
            allowed_channels=channels[1],
            candidate_message_ids=messages,
            top_k=0,
        )
