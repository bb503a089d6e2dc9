"""End to end: models trained on a small simulation into a temporary MLflow store, the real
``nextbest serve`` process on a free port, every endpoint over HTTP.

The service runs on a private copy of the session's trained store (``trained_store``), so this
module can register versions and move aliases. Tests run in file order against one server:
decisions, events and feedback first, then model swaps, then deletion.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from features.contract import CONSENT_COLUMNS, Channel, Col, EventType, Table
from features.io import find_table_file, load_table
from models.policy import DecisionEngine, load_arbitration, load_contact_policy
from models.policy import ModelSet as PolicyModels
from models.policy.logrecord import request_from_log_record
from models.registry import TASKS, load_estimator
from serving.app import create_app
from serving.model_follower import ModelFollower
from serving.schemas.recommend import Recommendation, RecommendBatchResponse
from serving.settings import Settings
from serving.stores.sqlite import SQLiteStore
from tests.serving.e2e_support import (
    ADMIN_KEY,
    API_KEY,
    Send,
    Service,
    contact_rule_violations,
    copy_registry,
    point_alias,
    register_copies,
    register_corrupt,
    running_service,
)

pytestmark = pytest.mark.slow

API = {"X-API-Key": API_KEY}
ADMIN = {"X-API-Key": ADMIN_KEY}
_ids = itertools.count()


@pytest.fixture(scope="module")
def service(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("e2e")
    tracking_uri = copy_registry(trained_store.tracking_uri, root / "registry")
    with running_service(root, trained_store.data_dir, tracking_uri) as running:
        yield running


@pytest.fixture(scope="module")
def journeys(service: Service) -> dict[str, pd.DataFrame]:
    tables = {}
    for table in (Table.CUSTOMERS, Table.CATALOG, Table.EVENTS):
        tables[table.value] = load_table(find_table_file(service.data_dir, table), table)
    return tables


@pytest.fixture(scope="module")
def start(journeys: dict[str, pd.DataFrame]) -> datetime:
    """An hour after the simulated journeys end: customers are in realistic states."""
    return (journeys["events"][Col.TS].max() + pd.Timedelta(hours=1)).floor("min").to_pydatetime()


@pytest.fixture(scope="module")
def reachable(journeys: dict[str, pd.DataFrame]) -> list[str]:
    """Customers consenting to every channel."""
    customers = journeys["customers"]
    return list(customers[customers[list(CONSENT_COLUMNS)].all(axis=1)][Col.CUSTOMER_ID])


@pytest.fixture(scope="module")
def store(service: Service) -> Iterator[SQLiteStore]:
    """The service's own store file, read from the test process."""
    opened = SQLiteStore(service.store_path)
    opened.open()
    yield opened
    opened.close()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def recommend(service: Service, customer_id: str, now: datetime, **context: Any) -> dict[str, Any]:
    body = {"customer_id": customer_id, "context": {"now": iso(now), **context}}
    response = service.http.post("/v1/recommend", json=body, headers=API)
    assert response.status_code == 200, response.text
    return Recommendation.model_validate(response.json()).model_dump(mode="json")


def post_events(service: Service, *events: dict[str, Any]) -> dict[str, int]:
    response = service.http.post("/v1/events", json={"events": list(events)}, headers=API)
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


def delivered(customer_id: str, decision: dict[str, Any]) -> dict[str, Any]:
    action = decision["action"]
    return {
        "event_id": f"e2e-{next(_ids)}",
        "customer_id": customer_id,
        "ts": action["send_at_utc"],
        "event_type": EventType.MESSAGE_DELIVERED.value,
        "channel": action["channel"],
        "message_id": action["message_id"],
        "decision_id": decision["decision_id"],
    }


def test_health_ready_and_metrics_report_the_champion_models(service):
    assert service.http.get("/health").json() == {"status": "ok"}
    ready = service.http.get("/ready").json()
    assert ready["ready"] is True and ready["decision_engine"] is True
    assert ready["models"]["versions"] == dict.fromkeys(TASKS, "1")
    assert ready["models"]["last_reload_error"] is None
    metrics = service.http.get("/metrics").text
    assert "nextbest_models_loaded 1.0" in metrics
    assert 'nextbest_model_version_info{alias="champion",task="conversion",version="1"} 1.0' in (
        metrics
    )


def test_a_decision_is_logged_with_a_record_that_replays_it(service, store, start, reachable):
    decision = recommend(service, reachable[0], start, top_k=5)
    assert decision["model_versions"] == dict.fromkeys(TASKS, "1")
    assert decision["n_candidates"] > 0 and 0 < decision["propensity"] <= 1
    assert 0 <= decision["scores"]["churn_risk"] <= 1
    record = store.get_decision(decision["decision_id"]).record

    # the engine on the same champion models, policy files and seed decides the same again
    catalog = load_table(find_table_file(service.data_dir, Table.CATALOG), Table.CATALOG)
    estimators = {t: load_estimator(t, "1", tracking_uri=service.tracking_uri) for t in TASKS}
    models = PolicyModels(
        estimators["conversion"], estimators["churn"], estimators["channel"],
        estimators["sendtime"], versions=dict.fromkeys(TASKS, "1"),
    )  # fmt: skip
    engine = DecisionEngine(catalog, load_contact_policy(), load_arbitration(), models, seed=0)
    request = request_from_log_record(record, list(catalog[Col.MESSAGE_ID]))
    again = engine.decide(request).to_log_record()
    for field in ("message_id", "channel", "send_at", "propensity", "expected_value", "reasons",
                  "alternatives", "exclusions", "n_candidates", "assignment"):  # fmt: skip
        assert again[field] == record[field], field


def test_an_unknown_customer_gets_a_cold_start_decision(service, start):
    decision = recommend(service, "never-seen-before", start)
    assert decision["cold_start"] is True and "cold_start" in decision["reasons"]
    if decision["action"]["type"] == "send":
        assert decision["action"]["channel"] in ("in_app", "web")
        assert decision["action"]["timezone"] == "UTC"


def test_a_batch_decides_like_single_calls(service, start, reachable):
    customers = [*reachable[:20], "never-seen-before", reachable[0]]
    body = {"requests": [{"customer_id": c, "context": {"now": iso(start)}} for c in customers]}
    response = service.http.post("/v1/recommend/batch", json=body, headers=API)
    assert response.status_code == 200, response.text
    batch = RecommendBatchResponse.model_validate(response.json()).model_dump(mode="json")
    assert [d["customer_id"] for d in batch["decisions"]] == customers
    for one in batch["decisions"]:
        single = recommend(service, one["customer_id"], start)
        for field in ("action", "expected_value", "propensity", "reasons", "n_candidates"):
            assert one[field] == single[field], (one["customer_id"], field)


def test_events_are_idempotent_and_on_disk_once_acknowledged(service, store, start, reachable):
    customer = reachable[1]
    before = len(store.customer_events(customer))
    visit = {"event_id": f"e2e-{next(_ids)}", "customer_id": customer, "ts": iso(start),
             "event_type": "page_view", "channel": "web"}  # fmt: skip
    cart = {**visit, "event_id": f"e2e-{next(_ids)}", "event_type": "add_to_cart", "value": 30.0}
    assert post_events(service, visit, cart, visit) == {"accepted": 2, "duplicates": 1}
    assert post_events(service, visit, cart) == {"accepted": 0, "duplicates": 2}
    assert len(store.customer_events(customer)) == before + 2  # read by another connection
    # the next decision sees the open cart (as of a minute later)
    decision = recommend(service, customer, start + timedelta(minutes=1))
    assert store.get_decision(decision["decision_id"]).record["has_open_cart"] is True


def test_feedback_is_joined_to_the_decision_log(service, store, start, reachable):
    decision = recommend(service, reachable[2], start)
    feedback = {"decision_id": decision["decision_id"], "outcome": "converted",
                "ts": iso(start + timedelta(hours=5)), "revenue": 42.0}  # fmt: skip
    first = service.http.post("/v1/feedback", json=feedback, headers=API)
    assert first.status_code == 200 and first.json()["recorded"] is True
    assert service.http.post("/v1/feedback", json=feedback, headers=API).json()["recorded"] is False
    unknown = service.http.post("/v1/feedback", json={**feedback, "decision_id": "nope"},
                                headers=API)  # fmt: skip
    assert unknown.status_code == 404
    outcomes = store.outcomes(decision["decision_id"])
    assert [(o.outcome.value, o.revenue) for o in outcomes] == [("converted", 42.0)]
    assert store.get_decision(decision["decision_id"]).customer_id == reachable[2]


def test_an_sms_unsubscribe_stops_sms_from_the_next_decision_on(service, store, start, reachable):
    customer, first = None, None
    for candidate in reachable[3:40]:
        first = recommend(service, candidate, start, channels=["sms"])
        if first["action"]["type"] == "send":
            customer = candidate
            break
    assert customer is not None and first is not None, "no customer was sent an SMS"
    assert first["action"]["channel"] == "sms"
    unsubscribe = {"event_id": f"e2e-{next(_ids)}", "customer_id": customer,
                   "ts": iso(start - timedelta(minutes=1)), "event_type": "unsubscribe",
                   "channel": "sms"}  # fmt: skip
    assert post_events(service, unsubscribe)["accepted"] == 1

    sms_only = recommend(service, customer, start, channels=["sms"])
    assert sms_only["action"] == {"type": "no_action"}
    record = store.get_decision(sms_only["decision_id"]).record
    assert record["consents"]["sms"] is False
    # every SMS candidate fails a rule checked before consent, most of them "unsubscribed"
    sms_reasons = {e["reason"] for e in record["exclusions"] if e["channel"] == "sms"}
    assert "unsubscribed" in sms_reasons
    assert sms_reasons <= {"unsubscribed", "stage_not_eligible", "requires_cart"}
    for step in range(8):
        later = recommend(service, customer, start + timedelta(hours=7 * step))
        assert later["action"].get("channel") != "sms", later
        if later["action"]["type"] == "send":
            post_events(service, delivered(customer, later))


def test_caps_cooldowns_and_quiet_hours_hold_over_a_sequence(service, start, reachable, journeys):
    customer = reachable[-1]
    profile = journeys["customers"].set_index(Col.CUSTOMER_ID).loc[customer]
    events = journeys["events"]
    mine = events[(events[Col.CUSTOMER_ID] == customer)
                  & (events[Col.EVENT_TYPE] == EventType.MESSAGE_DELIVERED)]  # fmt: skip
    sends = [Send(ts.to_pydatetime(), Channel(ch), str(m), new=False)
             for ts, ch, m in zip(mine[Col.TS], mine[Col.CHANNEL], mine[Col.MESSAGE_ID],
                                  strict=True)]  # fmt: skip
    answers = []
    for step in range(30):  # every 4 hours for 5 days; each send is reported back as delivered
        now = start + timedelta(hours=4 * step)
        decision = recommend(service, customer, now)
        answers.append(decision)
        if decision["action"]["type"] == "send":
            action = decision["action"]
            sent_at = datetime.fromisoformat(action["send_at_utc"].replace("Z", "+00:00"))
            assert sent_at >= now
            sends.append(Send(sent_at, Channel(action["channel"]), action["message_id"], True))
            assert post_events(service, delivered(customer, decision))["accepted"] == 1
    new = [s for s in sends if s.new]
    assert len(new) >= 2, [a["reasons"] for a in answers]
    catalog = journeys["catalog"]
    cooldowns = dict(zip(catalog[Col.MESSAGE_ID], catalog[Col.COOLDOWN_HOURS].astype(float),
                         strict=True))  # fmt: skip
    policy = load_contact_policy()
    assert contact_rule_violations(sends, policy, cooldowns, str(profile[Col.TIMEZONE])) == []
    # the caps bind: once the week's quota is used up, the service says no_action
    assert any("no_candidates" in a["reasons"] or "below_no_action" in a["reasons"]
               for a in answers)  # fmt: skip


def test_a_moved_alias_is_served_without_a_restart(service, start, reachable):
    version = register_copies(service.tracking_uri, of_version="1")
    point_alias(service.tracking_uri, version)
    reload = service.http.post("/admin/reload", headers=ADMIN).json()
    assert reload["status"] == "loaded" and reload["serving"] == dict.fromkeys(TASKS, version)
    assert recommend(service, reachable[0], start)["model_versions"] == dict.fromkeys(
        TASKS, version
    )
    assert f'task="churn",version="{version}"}} 1.0' in service.http.get("/metrics").text


def test_a_broken_version_never_replaces_the_served_one(service, start, reachable, tmp_path):
    served = service.http.get("/ready").json()["models"]["versions"]
    broken = register_corrupt(service.tracking_uri, "churn", served["churn"], tmp_path)
    point_alias(service.tracking_uri, broken, tasks=["churn"])
    reload = service.http.post("/admin/reload", headers=ADMIN).json()
    assert reload["status"] == "failed" and reload["serving"] == served
    assert f"nextbest-churn version {broken}" in reload["error"]
    ready = service.http.get("/ready")
    assert ready.status_code == 200 and ready.json()["models"]["versions"] == served
    assert "cannot be loaded" in ready.json()["models"]["last_reload_error"]
    metrics = service.http.get("/metrics").text
    assert "nextbest_model_reload_error 1.0" in metrics
    assert 'nextbest_model_load_failures_total{task="churn"} 1.0' in metrics
    assert recommend(service, reachable[0], start)["model_versions"] == served

    point_alias(service.tracking_uri, served["churn"], tasks=["churn"])
    assert service.http.post("/admin/reload", headers=ADMIN).json()["status"] == "unchanged"
    assert service.http.get("/ready").json()["models"]["last_reload_error"] is None


def test_deleting_a_customer_forgets_it_everywhere(service, store, start, reachable):
    customer = reachable[2]  # has decisions, an outcome and events by now
    assert service.http.delete(f"/admin/customers/{customer}", headers=API).status_code == 403
    deleted = service.http.delete(f"/admin/customers/{customer}", headers=ADMIN).json()["deleted"]
    assert deleted["customers"] == 1 and deleted["decisions"] >= 1 and deleted["outcomes"] == 1
    assert deleted["events"] > 0
    assert store.get_customer(customer) is None and len(store.customer_events(customer)) == 0
    assert recommend(service, customer, start)["cold_start"] is True


def test_recommend_rejects_what_the_catalog_does_not_hold(service, start, reachable):
    body = {"customer_id": reachable[0], "context": {"now": iso(start), "message_ids": ["x"]}}
    response = service.http.post("/v1/recommend", json=body, headers=API)
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "context.message_ids"


# ---------------------------------------------------------------- the schema, over real HTTP

# The schema is the app factory's (it does not depend on settings or models); the first test
# checks that the running service serves exactly this one. The coverage phase is off to keep the
# suite fast (tests/serving/test_schemathesis.py says what it found and where that is tested).
OPENAPI = create_app(
    Settings(auth_disabled=True), follower=ModelFollower(lambda t: None, lambda t, v: None)
).openapi()
schema = schemathesis.openapi.from_dict(
    OPENAPI,
    config=SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
    ),
)


def test_the_service_serves_the_schema_under_test(service):
    assert service.http.get("/openapi.json").json() == json.loads(json.dumps(OPENAPI))


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_the_wired_api_conforms_to_its_schema_over_http(case, service):
    kwargs = case.as_transport_kwargs(base_url=str(service.http.base_url))
    headers = dict(kwargs.get("headers") or {})
    if "X-API-Key" in headers:  # a generated key would only ever test the 401 path
        headers["X-API-Key"] = ADMIN_KEY
    kwargs["headers"] = headers
    response = service.http.request(**{k: v for k, v in kwargs.items() if v is not None})
    assert response.status_code < 500, response.text
    case.validate_response(
        response, excluded_checks=[checks.ignored_auth, checks.positive_data_acceptance]
    )
