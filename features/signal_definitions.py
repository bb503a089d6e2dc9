"""Definitions of the journey-signal features: visit hours, response to past contact, purchase
rhythm and catalog-category shares (computed in ``features.signals`` and
``features.pointintime``). Part of ``features.definitions.base_definitions``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Final

from features.definitions import (
    ACTIVITY_PROFILE_DAYS,
    CLICK_RATE_PRIOR,
    ENGAGEMENT_DAYS,
    OPEN_RATE_PRIOR,
    RATE_PRIOR_WEIGHT,
    FeatureDefinition,
    FeatureDtype,
    FeatureGroup,
    slug,
)

#: Category shares of product views look back this far (purchases: the whole history).
CATEGORY_VIEW_DAYS: Final = 90
#: A purchase or support contact this soon after a delivered message counts as following it.
AFTER_SEND_HOURS: Final = 168
#: Harmonics of the hour-of-day profile of site visits (page views) kept as features.
HOUR_HARMONICS: Final = (1, 2)


def category_view_share_name(category: str) -> str:
    return f"view_share_{slug(category)}"


def category_purchase_share_name(category: str) -> str:
    return f"purchase_share_{slug(category)}"


def _hour_features() -> Iterator[FeatureDefinition]:
    f, g = FeatureDtype.FLOAT, FeatureGroup.ACTIVITY_TIME
    for k in HOUR_HARMONICS:
        for trig in ("cos", "sin"):
            yield FeatureDefinition(
                f"visit_hour_{trig}_{k}", f,
                f"Mean {trig}({k} x 2 pi x local hour / 24) of the last {ACTIVITY_PROFILE_DAYS} "
                "days' site visits (page views): a smooth hour-of-day profile; NaN without any.",
                g)
    yield FeatureDefinition(
        "visit_peak_hour", f,
        "Local hour (0-23) where the smoothed hour-of-day profile of site visits peaks.", g)
    yield FeatureDefinition(
        "visit_peak_strength", f,
        "The smoothed visit density at the peak hour relative to a flat day (1 = no peak).", g)


def _response_features() -> Iterator[FeatureDefinition]:
    f, c, g = FeatureDtype.FLOAT, FeatureDtype.COUNT, FeatureGroup.CONTACT_RESPONSE
    yield FeatureDefinition(
        "open_rate_all", f,
        f"Opens / deliveries on every channel over {ENGAGEMENT_DAYS} days, shrunk toward "
        f"{OPEN_RATE_PRIOR} with the weight of {RATE_PRIOR_WEIGHT:g} deliveries.", g)
    yield FeatureDefinition(
        "click_rate_all", f,
        f"Clicks / deliveries on every channel over {ENGAGEMENT_DAYS} days, shrunk toward "
        f"{CLICK_RATE_PRIOR} with the weight of {RATE_PRIOR_WEIGHT:g} deliveries.", g)
    yield FeatureDefinition("deliveries_total", c, "Messages delivered ever (any channel).", g)
    yield FeatureDefinition(
        "purchases_after_send_total", c,
        f"Purchases within {AFTER_SEND_HOURS} h after a delivered message, ever.", g)
    yield FeatureDefinition(
        "purchases_after_send_rate", f,
        "purchases_after_send_total / deliveries_total; NaN without deliveries.", g)
    yield FeatureDefinition(
        "organic_purchases_total", c,
        f"Purchases with no delivered message in the {AFTER_SEND_HOURS} h before, ever.", g)
    yield FeatureDefinition(
        "support_after_send_total", c,
        f"Support contacts within {AFTER_SEND_HOURS} h after a delivered message, ever.", g)


def _replenish_features() -> Iterator[FeatureDefinition]:
    f, g = FeatureDtype.FLOAT, FeatureGroup.REPLENISH
    yield FeatureDefinition(
        "purchase_interval_days", f,
        "Mean days between purchases (first to last over their number - 1); NaN with fewer "
        "than two purchases.", g)
    yield FeatureDefinition(
        "purchase_cycle_position", f,
        "days_since_purchase / purchase_interval_days (1 = due by the customer's own rhythm).", g)


def _category_features(categories: Sequence[str]) -> Iterator[FeatureDefinition]:
    f, g = FeatureDtype.FLOAT, FeatureGroup.CATEGORY
    for category in categories:
        yield FeatureDefinition(
            category_view_share_name(category), f,
            f"Share of the last {CATEGORY_VIEW_DAYS} days' product views in category "
            f"{category!r}; NaN without product views (or without event categories).", g)
        yield FeatureDefinition(
            category_purchase_share_name(category), f,
            f"Share of all purchases in category {category!r}; NaN without purchases (or "
            "without event categories).", g)


def signal_definitions(categories: Sequence[str]) -> list[FeatureDefinition]:
    """The journey-signal features, in matrix column order, for the catalog's categories."""
    return [*_hour_features(), *_response_features(), *_replenish_features(),
            *_category_features(categories)]
