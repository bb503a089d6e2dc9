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
from collections.abc import Sequence
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
) -> PolicyActions:
    """The engine's decision for each row, as action codes (message, channel, local hour).

    ``stage`` holds stage codes (``features.contract.STAGES`` order) and ``eligible`` the
    (n, messages, channels) candidate pairs of each row, both in the catalog order the engine
    uses. ``features`` may carry the rows' feature matrix when the caller already has it.
    """
    ids = np.asarray(customer_ids, dtype=object).astype(str)
    as_of = ts_to_ns(pd.Series(pd.DatetimeIndex(ts)))
    codes = observed.codes(ids)
    stages = list(Stage)
    n = ids.shape[0]
    message = np.full(n, -1, dtype=np.int64)
    channel = np.full(n, -1, dtype=np.int64)
    send_at = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    message_index = {m: i for i, m in enumerate(engine.message_ids)}
    moments = pd.DatetimeIndex(ts).tz_convert("UTC").to_pydatetime()
    # one pass over the event log for every row: a scan costs the same for 100 or 100,000 rows
    if features is None:
        features = observed.features(codes, as_of)
    profiles = hour_profile(observed.log, observed.customers, codes, as_of)
    consented = np.asarray(eligible.any(axis=1), dtype=bool)  # (n, channels)
    offered = np.asarray(eligible.any(axis=2), dtype=bool)  # (n, messages)
    restrictions = _Restrictions(engine.message_ids)
    channel_code = {c: j for j, c in enumerate(CHANNELS)}
    # the collector would rescan the evaluation's data at every full pass while the engine
    # allocates decisions: set what exists aside until the loop ends
    gc.freeze()
    try:
        for lo in range(0, n, batch_size):
            rows = np.arange(lo, min(lo + batch_size, n))
            requests = [
                restrictions.request(
                    ids[i], moments[i], str(timezones[i]), stages[int(stage[i])],
                    bool(cart_open[i]), features[i : i + 1], profiles[i : i + 1],
                    consented[i], offered[i],
                )
                for i in rows
            ]
            for i, decision in zip(rows.tolist(), engine.decide_many(requests), strict=True):
                action = decision.action
                if action is None:
                    continue
                message[i] = message_index[action.message_id]
                channel[i] = channel_code[action.channel]
                send_at[i] = to_ns(action.send_at)
            logger.debug("nextbest decided %d of %d rows", rows[-1] + 1, n)
    finally:
        gc.unfreeze()
    sends = message >= 0
    when = pd.DatetimeIndex(send_at.view("datetime64[ns]")).tz_localize("UTC")
    hour = np.where(sends, local_hour(when, timezones), -1)
    return PolicyActions(message, channel, hour)


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
