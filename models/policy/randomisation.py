"""Stable pseudo-random numbers from hashes: control groups, exploration draws, decision ids.

Nothing here uses a global random state or Python's salted ``hash()``: a customer's control
group and a decision's exploration draw are the same in every process, on every replay.
"""

from __future__ import annotations

import hashlib
import uuid

import numpy as np

from models.policy.config import ControlGroups
from models.policy.types import Assignment

_SEP = "\x1f"
_TWO_64 = float(2**64)


def _digest(*parts: object) -> bytes:
    text = _SEP.join(str(p) for p in parts)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def stable_uniform(*parts: object) -> float:
    """A number in [0, 1) determined by ``parts`` alone."""
    return int.from_bytes(_digest(*parts)[:8], "big") / _TWO_64


def stable_uniform_pair(*parts: object) -> tuple[float, float]:
    """Two independent numbers in [0, 1) determined by ``parts`` alone."""
    digest = _digest(*parts)
    return (
        int.from_bytes(digest[:8], "big") / _TWO_64,
        int.from_bytes(digest[8:], "big") / _TWO_64,
    )


def assign(customer_id: str, campaign: str | None, control: ControlGroups) -> Assignment:
    """The customer's arm: global control first, then the campaign's holdout, else treated."""
    if control.global_share > 0 and stable_uniform(control.salt, customer_id) < (
        control.global_share
    ):
        return Assignment.GLOBAL_CONTROL
    if campaign is not None:
        share = control.holdout_share(campaign)
        if share > 0 and stable_uniform(control.salt, campaign, customer_id) < share:
            return Assignment.CAMPAIGN_HOLDOUT
    return Assignment.TREATED


def epsilon_greedy_probabilities(n_options: int, greedy: int, epsilon: float) -> np.ndarray:
    """Probability of each option under epsilon-greedy: ``1 - eps + eps/K`` for the greedy one,
    ``eps/K`` for every other (K options, no_action included)."""
    probabilities = np.full(n_options, epsilon / n_options)
    probabilities[greedy] += 1.0 - epsilon
    return probabilities


def exploration_draw(seed: int, customer_id: str, now_ns: int) -> tuple[float, float]:
    """(whether to explore, which option) draws, reproducible from the decision's inputs."""
    return stable_uniform_pair("explore", seed, customer_id, now_ns)


def decision_id(
    seed: int, customer_id: str, now_ns: int, campaign: str | None, deterministic: bool
) -> str:
    """A uuid4 hex, or, for replays and simulations, a hex id derived from the inputs."""
    if not deterministic:
        return uuid.uuid4().hex
    return _digest("decision", seed, customer_id, now_ns, campaign).hex()
