"""Settings from NEXTBEST_* variables, and seeding the store from a journey data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from features.contract import Channel, Col
from features.io import DataValidationError
from serving.seed import seed_store
from serving.settings import Settings
from serving.stores.sqlite import SQLiteStore
from tests.serving.conftest import MESSAGES, write_data_dir


def test_settings_come_from_prefixed_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("NEXTBEST_API_KEYS", " k1, k2 ,,")
    monkeypatch.setenv("NEXTBEST_ADMIN_KEYS", "root")
    monkeypatch.setenv("NEXTBEST_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("NEXTBEST_BATCH_MAX", "50")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == ["k1", "k2"]
    assert "k1" not in repr(settings)  # keys never show up in logs
    assert settings.batch_max == 50 and settings.model_alias == "champion"
    assert settings.resolved_store_url() == f"sqlite:///{tmp_path.resolve()}/nextbest.db"
    assert settings.resolved_tracking_uri() == f"sqlite:///{os.getcwd()}/mlflow.db"


def test_serving_without_keys_must_be_asked_for_explicitly(monkeypatch):
    for name in ("NEXTBEST_API_KEYS", "NEXTBEST_ADMIN_KEYS", "NEXTBEST_AUTH_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError, match="NEXTBEST_AUTH_DISABLED=true explicitly"):
        Settings()
    assert Settings(auth_disabled=True).auth_disabled is True


def test_out_of_range_settings_are_refused():
    with pytest.raises(ValidationError, match="exploration_epsilon"):
        Settings(auth_disabled=True, exploration_epsilon=1.5)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings(auth_disabled=True, batch_maximum=3)


def test_seeding_loads_profiles_catalog_and_events_once(tmp_path):
    data = write_data_dir(tmp_path / "data")
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    report = seed_store(store, data)
    assert (report.customers, report.messages, report.events_accepted) == (3, 3, 3)
    profile = store.get_customer("c1")
    assert profile.timezone == "Europe/Paris" and profile.attributes == {"segment": "gold"}
    assert profile.consents[Channel.SMS] is True
    assert [r[Col.MESSAGE_ID] for r in store.catalog()] == list(MESSAGES)
    assert len(store.customer_events("c1")) == 2
    assert seed_store(store, data) is None  # unchanged folder: nothing to do
    store.close()


def test_invalid_seed_data_names_file_row_and_column(tmp_path):
    data = write_data_dir(tmp_path / "data", with_events=False)
    customers = pd.read_csv(data / "customers.csv", dtype=str)
    customers.loc[1, Col.TIMEZONE] = "Mars/Olympus"
    customers.to_csv(data / "customers.csv", index=False)
    store = SQLiteStore(tmp_path / "s.db")
    store.open()
    with pytest.raises(DataValidationError, match=r"customers.csv, row 2, column 'timezone'"):
        seed_store(store, data)
    store.close()


def test_the_serving_docs_list_every_setting():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    missing = [n for n in Settings.model_fields if f"`NEXTBEST_{n.upper()}`" not in docs]
    assert missing == []
