"""Eligibility, consent and the contact policy, evaluated for every (pair, slot) at once.

The result is a reason matrix of shape ``(n_pairs, n_slots)``: 0 where the candidate is allowed,
else the code of the first rule it fails, in ``EXCLUSION_ORDER``. Caps and cooldowns are checked
at each candidate's own send time against every send in the history, past or scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from features.contract import CHANNELS
from models.policy.catalog import NS_PER_HOUR, CatalogArrays
from models.policy.config import ContactPolicy, QuietHoursRule
from models.policy.history import ContactHistory
from models.policy.slots import SlotGrid
from models.policy.types import ReasonCode

R = ReasonCode
#: Exclusion rules in the order they are checked; a candidate reports the first it fails.
EXCLUSION_ORDER: Final[tuple[ReasonCode, ...]] = (
    R.MESSAGE_NOT_REQUESTED,
    R.CHANNEL_NOT_ALLOWED,
    R.STAGE_NOT_ELIGIBLE,
    R.REQUIRES_CART,
    R.UNSUBSCRIBED,
    R.NO_CONSENT,
    R.QUIET_HOURS,
    R.QUIET_HOURS_SHIFTED,
    R.SUPPRESSED_AFTER_CONVERSION,
    R.SUPPRESSED_NON_RESPONSE,
    R.COOLDOWN,
    R.CAP_CHANNEL,
    R.CAP_GLOBAL,
    R.LOWER_SEND_TIME_SCORE,
)
CODE: Final[dict[ReasonCode, int]] = {reason: i + 1 for i, reason in enumerate(EXCLUSION_ORDER)}
#: Reason of each code (index 0, "allowed", maps to nothing).
REASON_OF_CODE: Final[tuple[ReasonCode | None, ...]] = (None, *EXCLUSION_ORDER)
N_CODES: Final = len(EXCLUSION_ORDER) + 1


@dataclass(frozen=True)
class CompiledContactPolicy:
    """The contact policy as arrays over ``CHANNELS``."""

    channel_cap_max: np.ndarray  # (C,) int64, -1 = no cap
    channel_cap_window_ns: np.ndarray  # (C,) int64
    global_caps: tuple[tuple[int, int, np.ndarray], ...]  # (max, window_ns, counted (C+1,))
    after_conversion_ns: int
    non_response: tuple[int, int] | None  # (max consecutive sends, suppress ns)
    grid_row_of_channel: np.ndarray  # (C,) intp: 1 where quiet hours apply, else 0
    quiet_code: int

    @classmethod
    def compile(cls, policy: ContactPolicy) -> CompiledContactPolicy:
        n = len(CHANNELS)
        cap_max = np.full(n, -1, dtype=np.int64)
        cap_window = np.zeros(n, dtype=np.int64)
        for channel, rule in policy.frequency_caps.per_channel.items():
            cap_max[CHANNELS.index(channel)] = rule.max_sends
            cap_window[CHANNELS.index(channel)] = round(rule.window_hours * NS_PER_HOUR)
        global_caps = []
        for rule in policy.frequency_caps.all_channels:
            # one entry per channel, plus a last one (index -1) for sends without a channel,
            # which count only towards caps over all channels
            counted = np.ones(n + 1, dtype=bool)
            if rule.channels is not None:
                counted = np.array([c in rule.channels for c in CHANNELS] + [False], dtype=bool)
            global_caps.append((rule.max_sends, round(rule.window_hours * NS_PER_HOUR), counted))
        suppression = policy.suppression
        non_response = None
        if suppression.non_response is not None:
            rule_nr = suppression.non_response
            non_response = (
                rule_nr.max_consecutive_sends, round(rule_nr.suppress_hours * NS_PER_HOUR)
            )
        quiet = policy.quiet_hours
        rows = np.zeros(n, dtype=np.intp)
        quiet_code = CODE[R.QUIET_HOURS_SHIFTED]
        if quiet is not None:
            rows = np.array([int(c in quiet.channels) for c in CHANNELS], dtype=np.intp)
            if quiet.rule is QuietHoursRule.DROP:
                quiet_code = CODE[R.QUIET_HOURS]
        return cls(
            channel_cap_max=cap_max,
            channel_cap_window_ns=cap_window,
            global_caps=tuple(global_caps),
            after_conversion_ns=round(suppression.after_conversion_hours * NS_PER_HOUR),
            non_response=non_response,
            grid_row_of_channel=rows,
            quiet_code=quiet_code,
        )


def rolling_cap_reached(
    sends: np.ndarray, times: np.ndarray, window_ns: int, max_sends: int
) -> np.ndarray:
    """Whether one more send at each of ``times`` would put more than ``max_sends`` sends in
    some rolling window ``(x, x + window]`` — counting sorted ``sends`` before and after it."""
    if max_sends <= 0:
        return np.ones(times.shape, dtype=bool)
    n = sends.shape[0]
    if n < max_sends:
        return np.zeros(times.shape, dtype=bool)
    flat = times.ravel()
    # the window ending at the candidate ...
    worst = np.searchsorted(sends, flat, "right") - np.searchsorted(
        sends, flat - window_ns, "right"
    )
    if sends[-1] > flat.min():
        # ... and every window ending at a later send that still contains the candidate
        ending_at = np.arange(1, n + 1) - np.searchsorted(sends, sends - window_ns, "right")
        later = (sends[None, :] > flat[:, None]) & (sends[None, :] < flat[:, None] + window_ns)
        worst = np.maximum(worst, np.where(later, ending_at[None, :], 0).max(axis=1))
    return (worst >= max_sends).reshape(times.shape)


def pair_reasons(
    catalog: CatalogArrays,
    requested: np.ndarray,
    allowed_channels: np.ndarray,
    stage_code: int,
    has_open_cart: bool,
    consent: np.ndarray,
    unsubscribed: np.ndarray,
) -> np.ndarray:
    """Rules that hold for every slot of a (message, channel) pair, shape ``(P,)``."""
    # Codes grow with precedence, so a pair's first failing rule is the smaller of its message's
    # and its channel's first failing rule (0 = passes, mapped to a large number for the min).
    passes = np.int8(127)
    by_message = np.where(
        ~requested, CODE[R.MESSAGE_NOT_REQUESTED],
        np.where(
            ~catalog.stage_eligible[:, stage_code], CODE[R.STAGE_NOT_ELIGIBLE],
            np.where(catalog.requires_cart & (not has_open_cart), CODE[R.REQUIRES_CART], passes),
        ),
    ).astype(np.int8)
    by_channel = np.where(
        ~allowed_channels, CODE[R.CHANNEL_NOT_ALLOWED],
        np.where(
            unsubscribed, CODE[R.UNSUBSCRIBED], np.where(~consent, CODE[R.NO_CONSENT], passes)
        ),
    ).astype(np.int8)
    reasons = np.minimum(by_message[catalog.pair_message], by_channel[catalog.pair_channel])
    reasons[reasons == passes] = 0
    return reasons


def slot_reasons(
    catalog: CatalogArrays,
    policy: CompiledContactPolicy,
    history: ContactHistory,
    grid: SlotGrid,
    now_ns: int,
) -> np.ndarray:
    """Rules that depend on the send time, shape ``(P, S)``.

    Each rule is evaluated at its own granularity (grid row, channel or message) and spread to
    the pairs only when it excludes something: most rules exclude nothing for most customers,
    and plain counts tell when a cap cannot be reached.
    """
    pm, pc = catalog.pair_message, catalog.pair_channel
    rows = policy.grid_row_of_channel[pc]
    times = grid.send_ns  # (2, S)
    n_slots = times.shape[1]
    reasons = np.zeros((pc.shape[0], n_slots), dtype=np.int8)
    # rules in reverse precedence: a later assignment (an earlier rule) overwrites
    sends, send_channel = history.send_ns, history.send_channel
    n_sends = int(sends.shape[0])

    for max_sends, window_ns, counted in reversed(policy.global_caps):
        if n_sends >= max_sends:
            # counted has one extra last entry for sends without a channel (code -1)
            reached = rolling_cap_reached(sends[counted[send_channel]], times, window_ns, max_sends)
            if reached.any():
                reasons[reached[rows] & counted[pc][:, None]] = CODE[R.CAP_GLOBAL]

    per_channel = np.bincount(send_channel + 1, minlength=len(CHANNELS) + 1)[1:].tolist()
    capped = None
    for channel, count in enumerate(per_channel):
        max_sends = int(policy.channel_cap_max[channel])
        if 0 <= max_sends <= count:
            reached = rolling_cap_reached(
                sends[send_channel == channel],
                times[policy.grid_row_of_channel[channel]],
                int(policy.channel_cap_window_ns[channel]),
                max_sends,
            )
            if reached.any():
                if capped is None:
                    capped = np.zeros((len(CHANNELS), n_slots), dtype=bool)
                capped[channel] = reached
    if capped is not None:
        reasons[capped[pc]] = CODE[R.CAP_CHANNEL]

    if n_sends:
        cooling = _cooling(catalog, history, times)
        if cooling is not None:
            reasons[cooling[rows, pm]] = CODE[R.COOLDOWN]

    if n_sends and policy.non_response is not None:
        resting = _non_response(policy, history, times, now_ns, per_channel)
        if resting is not None:
            reasons[resting[pc]] = CODE[R.SUPPRESSED_NON_RESPONSE]

    if policy.after_conversion_ns > 0 and history.last_purchase_ns is not None:
        until = history.last_purchase_ns + policy.after_conversion_ns
        if until > now_ns:
            suppressed = (times < until)[rows] & ~catalog.exempt_after_conversion[pm][:, None]
            reasons[suppressed] = CODE[R.SUPPRESSED_AFTER_CONVERSION]

    if grid.blocked[1].any():
        reasons[grid.blocked[rows]] = policy.quiet_code
    return reasons


def _cooling(
    catalog: CatalogArrays, history: ContactHistory, times: np.ndarray
) -> np.ndarray | None:
    """(2, M, S): slots too close to a send of the same message; None when there are none."""
    message = history.send_message
    cooldown = np.where(message >= 0, catalog.cooldown_ns[message], 0)
    sends = history.send_ns
    # only sends whose cooldown reaches into the slot range can block anything
    near = (sends + cooldown > times.min()) & (sends - cooldown < times.max()) & (cooldown > 0)
    if not near.any():
        return None
    # (near sends, 2, S) blocked slots, or-ed per message by a product with a one-hot matrix
    blocked = np.abs(times[None] - sends[near][:, None, None]) < cooldown[near][:, None, None]
    one_hot = message[near][None, :] == np.arange(catalog.n_messages)[:, None]
    hits = one_hot.astype(np.float64) @ blocked.reshape(blocked.shape[0], -1)
    return (hits > 0).reshape(catalog.n_messages, 2, -1).transpose(1, 0, 2)


def _non_response(
    policy: CompiledContactPolicy,
    history: ContactHistory,
    times: np.ndarray,
    now_ns: int,
    sends_per_channel: list[int],
) -> np.ndarray | None:
    """(C, S): channels resting after too many consecutive unanswered sends; None if none."""
    if policy.non_response is None:
        return None
    max_streak, rest_ns = policy.non_response
    sends, send_channel = history.send_ns, history.send_channel
    resting = None
    for channel, count in enumerate(sends_per_channel):
        if count < max_streak:
            continue  # cannot reach the streak
        engaged = history.engagement_ns[history.engagement_channel == channel]
        last_engaged = engaged[-1] if engaged.shape[0] else np.iinfo(np.int64).min
        unanswered = sends[(send_channel == channel) & (sends < now_ns) & (sends > last_engaged)]
        if unanswered.shape[0] >= max_streak:
            if resting is None:
                resting = np.zeros((len(CHANNELS), times.shape[1]), dtype=bool)
            row = policy.grid_row_of_channel[channel]
            resting[channel] = times[row] < unanswered[-1] + rest_ns
    return resting
