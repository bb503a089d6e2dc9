"""Uplift metrics on small examples computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.uplift import (
    auuc,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)

# Six customers in score order: treated 1, treated 0, control 1, control 0, treated 1, control 0.
OUTCOME = np.array([1, 0, 1, 0, 1, 0])
TREATMENT = np.array([1, 1, 0, 0, 1, 0])
SCORE = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])


def test_qini_curve_matches_hand_computation() -> None:
    curve = qini_curve(OUTCOME, TREATMENT, SCORE)
    # Q(k) = Y_T - Y_C * N_T / N_C: 1, 1, 1 - 1*2/1, 1 - 1*2/2, 2 - 1*3/2, 2 - 1*3/3
    np.testing.assert_allclose(curve.values * 6, [0, 1, 1, -1, 0, 0.5, 1])
    np.testing.assert_allclose(curve.fraction, np.arange(7) / 6)
    assert curve.area == pytest.approx(1 / 18)
    assert curve.random_area == pytest.approx(1 / 12)
    assert qini_coefficient(OUTCOME, TREATMENT, SCORE) == pytest.approx(1 / 18 - 1 / 12)


def test_uplift_curve_and_auuc_match_hand_computation() -> None:
    curve = uplift_curve(OUTCOME, TREATMENT, SCORE)
    # U(k) = (Y_T/N_T - Y_C/N_C) * k, zero until both groups are present.
    np.testing.assert_allclose(curve.values * 6, [0, 0, 0, -1.5, 0, 5 / 6, 2])
    assert auuc(OUTCOME, TREATMENT, SCORE) == pytest.approx(1 / 108)
    # The overall uplift at full targeting: 2/3 treated minus 1/3 control.
    assert curve.values[-1] == pytest.approx(1 / 3)


def test_uplift_at_k_overall_and_by_group() -> None:
    # Top 3 overall: treated (1, 0) vs control (1) -> 0.5 - 1.
    assert uplift_at_k(OUTCOME, TREATMENT, SCORE, k=0.5) == pytest.approx(-0.5)
    # Top half of each group: treated [1] vs control [1] -> 0.
    assert uplift_at_k(OUTCOME, TREATMENT, SCORE, k=0.5, strategy="by_group") == 0.0
    assert uplift_at_k(OUTCOME, TREATMENT, SCORE, k=1.0) == pytest.approx(1 / 3)


def test_a_score_that_ranks_responders_first_beats_random_targeting() -> None:
    rng = np.random.default_rng(0)
    n = 4_000
    treated = rng.integers(0, 2, n)
    responsive = rng.random(n) < 0.3  # only these react to the treatment
    outcome = (rng.random(n) < 0.1 + 0.4 * (responsive & (treated == 1))).astype(int)
    good = qini_coefficient(outcome, treated, responsive + rng.random(n) * 0.1)
    random = qini_coefficient(outcome, treated, rng.random(n))
    assert good > 0.02 > abs(random)
    assert uplift_at_k(outcome, treated, responsive + rng.random(n) * 0.1, k=0.3) > 0.3


def test_tied_scores_are_targeted_together_whatever_the_row_order() -> None:
    tied = np.zeros(6)
    curve = qini_curve(OUTCOME, TREATMENT, tied)
    reversed_curve = qini_curve(OUTCOME[::-1], TREATMENT[::-1], tied)
    np.testing.assert_allclose(curve.fraction, [0, 1])
    np.testing.assert_allclose(curve.values, reversed_curve.values)


@pytest.mark.parametrize(
    ("treatment", "message"),
    [
        (np.array([1, 1, 1, 1, 1, 1]), "both treated"),
        (np.array([1, 2, 0, 0, 1, 0]), "0 \\(control\\) or 1"),
    ],
)
def test_bad_treatment_is_a_clear_error(treatment: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        qini_curve(OUTCOME, treatment, SCORE)


def test_top_k_without_controls_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="only treated rows"):
        uplift_at_k(OUTCOME, TREATMENT, SCORE, k=0.34)
