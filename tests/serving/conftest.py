"""Fixtures of the serving tests: a small journey data folder, settings, an in-memory model
registry of tiny real scorers carrying the data's feature spec, and a running app (TestClient)
with the real decision engine."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from features.contract import CHANNELS, Col, Table, consent_column
from features.definitions import FeatureSpec
from features.io import find_table_file, load_table
from models.registry import TASKS
from serving.app import create_app
from serving.model_follower import ModelFollower
from serving.settings import Settings
from tests.serving.tiny_models import tiny_scorer

API_KEY = "test-api-key"
ADMIN_KEY = "test-admin-key"
API = {"X-API-Key": API_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MESSAGES = ("welcome-email", "cart-reminder", "winback")


def write_data_dir(path: Path, with_events: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    customers = pd.DataFrame(
        {
            Col.CUSTOMER_ID: ["c1", "c2", "c3"],
            Col.TIMEZONE: ["Europe/Paris", "America/New_York", "Asia/Tokyo"],
            Col.SIGNUP_TS: ["2024-01-01T00:00:00Z"] * 3,
            **{consent_column(c): ["true", "true", "false"] for c in CHANNELS},
            "segment": ["gold", "silver", "bronze"],
        }
    )
    customers.to_csv(path / "customers.csv", index=False)
    catalog = pd.DataFrame(
        {
            Col.MESSAGE_ID: list(MESSAGES),
            Col.OBJECTIVE: ["welcome", "cart_recovery", "win_back"],
            Col.CATEGORY: ["general", "cart", "general"],
            Col.CHANNELS: ["email|push", "email|sms", "email|sms"],
            Col.VALUE: [5.0, 20.0, 10.0],
            **{f"cost_{c.value}": [0.01] * 3 for c in CHANNELS},
            Col.ELIGIBLE_STAGES: ["*", "carted", "lapsing|churned"],
            Col.REQUIRES_CART: ["false", "true", "false"],
            Col.COOLDOWN_HOURS: [24, 12, 72],
        }
    )
    catalog.to_csv(path / "catalog.csv", index=False)
    if with_events:
        events = pd.DataFrame(
            {
                Col.EVENT_ID: ["e1", "e2", "e3"],
                Col.CUSTOMER_ID: ["c1", "c1", "c2"],
                Col.TS: ["2024-04-01T10:00:00Z", "2024-04-02T10:00:00Z", "2024-04-03T10:00:00Z"],
                Col.EVENT_TYPE: ["page_view", "message_delivered", "purchase"],
                Col.CHANNEL: ["web", "email", "web"],
                Col.MESSAGE_ID: ["", "welcome-email", ""],
                Col.DECISION_ID: ["", "", ""],
                Col.VALUE: ["0", "0", "42.5"],
            }
        )
        events.to_csv(path / "events.csv", index=False)
    return path


class MemoryRegistry:
    """Versions per task and which one the alias points at, like a tiny model registry."""

    def __init__(self) -> None:
        self.models: dict[tuple[str, str], Any] = {}
        self.alias: dict[str, str] = {}
        self.broken: set[tuple[str, str]] = set()

    def register(self, version: str, estimator: Any, tasks: tuple[str, ...] = TASKS) -> None:
        for task in tasks:
            self.models[(task, version)] = estimator

    def point(self, version: str, tasks: tuple[str, ...] = TASKS) -> None:
        for task in tasks:
            self.alias[task] = version

    def resolve(self, task: str) -> str | None:
        return self.alias.get(task)

    def load(self, task: str, version: str) -> Any:
        if (task, version) in self.broken:
            raise OSError(f"artifact of {task} v{version} is missing")
        return self.models[(task, version)]


def spec_of(data_dir: Path) -> FeatureSpec:
    """The feature spec a model trained on ``write_data_dir``'s journeys would carry."""
    catalog = load_table(find_table_file(data_dir, Table.CATALOG), Table.CATALOG)
    customers = load_table(find_table_file(data_dir, Table.CUSTOMERS), Table.CUSTOMERS)
    # with the catalog's categories, so the served models read per-category shares
    return FeatureSpec.from_journeys(customers, catalog)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return write_data_dir(tmp_path / "data")


@pytest.fixture
def settings(tmp_path: Path, data_dir: Path) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        data_dir=data_dir,
        api_keys=API_KEY,  # type: ignore[arg-type]  # a comma list, as from the environment
        admin_keys=ADMIN_KEY,  # type: ignore[arg-type]
        poll_interval_seconds=3600,
        # deterministic decisions: no exploration, nobody in the control group
        exploration_epsilon=0.0,
        control_share=0.0,
    )


@pytest.fixture
def spec(data_dir: Path) -> FeatureSpec:
    return spec_of(data_dir)


@pytest.fixture
def registry(spec: FeatureSpec) -> MemoryRegistry:
    registry = MemoryRegistry()
    registry.register("1", tiny_scorer(seed=1, spec=spec))
    registry.point("1")
    return registry


@pytest.fixture
def follower(registry: MemoryRegistry) -> ModelFollower:
    return ModelFollower(registry.resolve, registry.load, poll_interval=3600)


@pytest.fixture
def client(settings: Settings, follower: ModelFollower) -> Iterator[TestClient]:
    app = create_app(settings, follower=follower)
    with TestClient(app) as test_client:
        yield test_client


def event(event_id: str, customer_id: str = "c1", **fields: Any) -> dict[str, Any]:
    body = {
        "event_id": event_id,
        "customer_id": customer_id,
        "ts": "2024-04-30T10:00:00Z",
        "event_type": "page_view",
        "channel": "web",
    }
    body.update(fields)
    return body
