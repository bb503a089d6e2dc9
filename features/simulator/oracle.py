"""The oracle: the true expected outcome of any action for any simulated customer state.

The simulator draws every decision's outcomes from ``Oracle.expected_outcome`` itself, so the
oracle and the simulated data cannot drift apart. The model lives in
``features.simulator.response`` and is documented in docs/simulator.md. A message on a channel
whose consent is not live is not delivered: its outcome is no_action's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contract import CHANNELS, Col
from features.simulator.catalog import CatalogArrays
from features.simulator.clock import local_hour, schedule_send_at
from features.simulator.events import fixed_width_ids
from features.simulator.policy import channel_codes, eligible_actions, state_arrays
from features.simulator.response import (
    OUTCOME_COLUMNS,
    Outcome,
    ResponseModel,
    StateRows,
    Traits,
)
from features.simulator.truth import LIVE_CONSENT_COLUMNS, GroundTruth, State

SEND_HOUR: Final = "send_hour"
EXPECTED_VALUE: Final = "expected_value"
REQUIRED_STATE_COLUMNS: Final = (
    Col.CUSTOMER_ID, Col.TS, State.STAGE, State.CHURNED, State.CART_OPEN,
    State.DAYS_SINCE_PURCHASE, State.SENDS_28D, *LIVE_CONSENT_COLUMNS,
)

ActionValues = str | None | Sequence[str | None] | pd.Series | np.ndarray
SendTimes = (pd.Timestamp | datetime | str | None | Sequence[pd.Timestamp | None] | pd.Series
             | pd.DatetimeIndex | np.ndarray)
Objective_ = Literal["revenue", "net_value", "conversion"]


def _column(value: object, n: int) -> np.ndarray:
    """Broadcast a scalar or align an array-like to ``n`` rows (object dtype)."""
    if value is None or isinstance(value, str):
        return np.full(n, value, dtype=object)
    array = np.asarray(value, dtype=object)
    if array.shape != (n,):
        raise ValueError(f"expected a scalar or {n} values, got shape {array.shape}")
    return array


def _timestamps(value: SendTimes, n: int) -> pd.DatetimeIndex:
    """UTC timestamps from a scalar or n values (naive values are taken as UTC)."""
    if isinstance(value, pd.Series | pd.DatetimeIndex) and pd.api.types.is_datetime64_any_dtype(
        value.dtype
    ):
        index = pd.DatetimeIndex(value)
    elif isinstance(value, str | pd.Timestamp | datetime):
        index = pd.DatetimeIndex([pd.Timestamp(value)] * n)
    else:
        index = pd.DatetimeIndex(pd.to_datetime(_column(value, n), utc=True))
    if len(index) != n:
        raise ValueError(f"send_at: expected a scalar or {n} values, got {len(index)}")
    return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")


class _CustomerIndex:
    """Row of each customer id in the latent table.

    Ids that are a common prefix plus their row number (as the simulator writes them) resolve
    by parsing and one vectorised check; any other ids by a hash lookup.
    """

    def __init__(self, ids: pd.Series) -> None:
        self._ids = pa.array(ids.to_numpy(dtype=object), type=pa.string())
        self._index = pd.Index(ids.to_numpy(dtype=object))
        if not self._index.is_unique:
            raise ValueError("latent table: customer_id must be unique")
        first = str(ids.iloc[0]) if len(ids) else ""
        self._prefix = len(first.rstrip("0123456789"))
        width = len(first) - self._prefix
        self._numbered = width > 0 and bool(pc.all(pc.equal(
            self._ids, fixed_width_ids(first[: self._prefix], np.arange(len(ids)), width)
        )).as_py())

    def codes(self, customer_ids: pd.Series) -> np.ndarray:
        if self._numbered:
            query = pa.array(customer_ids, from_pandas=True).cast(pa.string())
            try:
                number = pc.cast(pc.utf8_slice_codeunits(query, self._prefix), pa.int64())
                guess = np.clip(number.to_numpy(zero_copy_only=False), 0, len(self._ids) - 1)
                if pc.all(pc.equal(self._ids.take(pa.array(guess)), query)).as_py():
                    return guess.astype(np.int64)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass  # not all numbered ids: the general lookup below decides
        return self._index.get_indexer(customer_ids.to_numpy(dtype=object))


class Oracle:
    """True expected outcomes of actions in the simulated world."""

    def __init__(self, truth: GroundTruth, catalog: pd.DataFrame) -> None:
        self.config = truth.config
        self.catalog = CatalogArrays.from_frame(catalog)
        latent = truth.latent
        self._customers = _CustomerIndex(latent[Col.CUSTOMER_ID])
        self._timezone = latent[Col.TIMEZONE].to_numpy(dtype=object)
        self.model = ResponseModel(self.config, self.catalog, Traits.from_frame(latent))

    def rows(self, states: pd.DataFrame) -> StateRows:
        """Parse ``decision_states`` rows (or any frame with the same columns)."""
        missing = [c for c in REQUIRED_STATE_COLUMNS if c not in states.columns]
        if missing:
            raise ValueError(f"states lack column(s) {', '.join(missing)} (see decision_states)")
        customer = self._customers.codes(states[Col.CUSTOMER_ID])
        if (customer < 0).any():
            unknown = states[Col.CUSTOMER_ID].to_numpy(dtype=object)[customer < 0][:5]
            raise ValueError(f"customer_id not in the ground truth: {', '.join(map(str, unknown))}")
        stage, cart_open, consent_live, in_cooldown = state_arrays(states, self.catalog)
        return StateRows(
            customer=customer,
            stage=stage,
            churned=states[State.CHURNED].to_numpy(dtype=bool),
            cart_open=cart_open,
            days_since_purchase=states[State.DAYS_SINCE_PURCHASE].to_numpy(dtype=np.float64),
            sends_28d=states[State.SENDS_28D].to_numpy(dtype=np.float64),
            consent_live=consent_live,
            in_cooldown=in_cooldown,
            ts=pd.DatetimeIndex(states[Col.TS]),
            timezone=self._timezone[customer],
        )

    def timezones(self, states: pd.DataFrame) -> np.ndarray:
        """Each row's IANA timezone."""
        return self._timezone[self.rows(states).customer]

    def send_times(self, states: pd.DataFrame, send_hour: int | np.ndarray) -> pd.DatetimeIndex:
        """``send_at`` of a send at local ``send_hour`` decided at each row's ``ts``, scheduled
        as the simulator does (the first such hour at least ``min_send_delay_hours`` later)."""
        rows = self.rows(states)
        hours = np.broadcast_to(np.asarray(send_hour), (len(states),))
        return schedule_send_at(rows.ts, rows.timezone, hours, self.config.min_send_delay_hours)

    def expected_outcome(
        self,
        states: pd.DataFrame,
        message_id: ActionValues = None,
        channel: ActionValues = None,
        send_at: SendTimes = None,
    ) -> pd.DataFrame:
        """True expected outcomes of one action per row of ``states`` (decision_states rows).

        ``message_id``/``channel``: a scalar for every row or one value per row; ``None`` (or
        ``no_action``) sends nothing. ``send_at`` (UTC) is required for sends: the response
        depends on its local hour in the customer's timezone. Columns: ``OUTCOME_COLUMNS``.
        """
        rows = self.rows(states)
        n = len(states)
        message = self.catalog.message_codes(_column(message_id, n))
        channel_code = channel_codes(_column(channel, n))
        sends = message >= 0
        if (sends != (channel_code >= 0)).any():
            raise ValueError("message_id and channel must both be set (a send) or both be empty")
        hour = np.full(n, -1, dtype=np.int64)
        if sends.any():
            when = _timestamps(send_at, n)
            if when[sends].isna().any():
                raise ValueError("send_at is required for every row that sends a message")
            hour = local_hour(when, rows.timezone)
        outcome = self.model.evaluate(rows, message, channel_code, hour)
        return pd.DataFrame(outcome, index=states.index)[list(OUTCOME_COLUMNS)]

    def candidate_actions(self, send_hours: Sequence[int] | None = None) -> pd.DataFrame:
        """Every catalog (message, channel) at every send hour, plus ``no_action`` first."""
        hours = tuple(send_hours) if send_hours is not None else self.config.send_hours
        rows: list[tuple[str | None, str | None, int]] = [(None, None, -1)]
        for m, message_id in enumerate(self.catalog.message_ids):
            for ch in np.flatnonzero(self.catalog.allowed_channel[m]):
                rows.extend((message_id, CHANNELS[ch].value, h) for h in hours)
        return pd.DataFrame(rows, columns=[Col.MESSAGE_ID, Col.CHANNEL, SEND_HOUR])

    def best_action(
        self,
        states: pd.DataFrame,
        actions: pd.DataFrame | None = None,
        objective: Objective_ = "revenue",
        feasible_only: bool = True,
    ) -> pd.DataFrame:
        """The oracle-optimal action per row among ``actions`` (default: every action).

        ``actions`` has columns message_id, channel, send_hour (local hour; ignored for
        no_action rows, whose message_id is empty or ``no_action``). Sends are scheduled like
        the simulator's (``schedule_send_at``). ``objective``: ``revenue`` (expected revenue),
        ``net_value`` (minus the send cost) or ``conversion``. With ``feasible_only`` an action
        must be eligible for the row (consent, stage, cart, cooldown); no_action always is.
        Ties keep the earlier candidate. Returns the chosen action, its send time and outcomes.
        """
        if objective not in ("revenue", "net_value", "conversion"):
            raise ValueError(f"objective must be revenue, net_value or conversion: {objective!r}")
        actions = self.candidate_actions() if actions is None else actions
        rows = self.rows(states)
        n, model = len(states), self.model
        message = self.catalog.message_codes(actions[Col.MESSAGE_ID].to_numpy(dtype=object))
        channel = channel_codes(actions[Col.CHANNEL].to_numpy(dtype=object))
        hours = np.where(message >= 0, actions[SEND_HOUR].to_numpy(dtype=np.int64), -1)
        eligible = None
        if feasible_only:
            eligible = eligible_actions(self.catalog, rows.stage, rows.cart_open,
                                        rows.consent_live, rows.in_cooldown)
        send_at = {int(h): schedule_send_at(rows.ts, rows.timezone, np.full(n, h),
                                            self.config.min_send_delay_hours)
                   for h in np.unique(hours[hours >= 0])}
        local = {h: local_hour(at, rows.timezone) for h, at in send_at.items()}

        # the factors of the uplift are computed once per row and per value of each dimension
        terms = model.row_terms(rows)
        affinity = model.traits.channel_affinity[rows.customer]
        by_hour = {h: model.hour_factor(model.closeness(rows, lh)) for h, lh in local.items()}
        by_message = {int(m): model.fit(rows, np.full(n, m)) * model.category_factor(
            rows, np.full(n, m)) for m in np.unique(message[message >= 0])}
        best_score = np.full(n, -np.inf)
        best = np.zeros(n, dtype=np.int64)
        for j in range(len(actions)):
            m, ch, h = int(message[j]), int(channel[j]), int(hours[j])
            if m < 0:
                delivered = np.zeros(n, dtype=bool)
                uplift = np.zeros(n)
            else:
                delivered = rows.consent_live[:, ch]
                uplift = (terms.scale * by_message[m] * model.channel_factor(affinity[:, ch])
                          * by_hour[h])
            p, revenue = model.conversion(terms, delivered, uplift, max(m, 0))
            if objective == "revenue":
                score = revenue
            elif objective == "conversion":
                score = p
            else:
                score = revenue - np.where(delivered, self.catalog.cost[max(m, 0), ch], 0.0)
            if eligible is not None and m >= 0:
                score = np.where(eligible[:, m, ch], score, -np.inf)
            better = score > best_score
            best_score = np.where(better, score, best_score)
            best = np.where(better, j, best)

        chosen = message[best] >= 0
        chosen_hour = np.where(chosen, hours[best], -1)
        chosen_at = np.full(n, np.iinfo(np.int64).min)  # NaT unless a send
        chosen_local = np.full(n, -1, dtype=np.int64)
        for h, at in send_at.items():
            pick = chosen_hour == h
            chosen_at[pick] = at.asi8[pick]
            chosen_local[pick] = local[h][pick]
        outcome = model.evaluate(rows, message[best], channel[best], chosen_local)
        ids = np.asarray((*self.catalog.message_ids, None), dtype=object)
        names = np.asarray([*(c.value for c in CHANNELS), None], dtype=object)
        result = pd.DataFrame(
            {
                Col.MESSAGE_ID: ids[np.where(chosen, message[best], -1)],
                Col.CHANNEL: names[np.where(chosen, channel[best], -1)],
                SEND_HOUR: chosen_hour,
                Col.SEND_AT: pd.DatetimeIndex(chosen_at.view("datetime64[ns]")).tz_localize("UTC"),
                **outcome,
            },
            index=states.index,
        )
        result[EXPECTED_VALUE] = result[Outcome.EXPECTED_REVENUE] - result[Outcome.COST]
        return result
