"""POST /v1/recommend(/batch): the decision engine on the served models, over the store."""

from __future__ import annotations

import pytest

from serving.schemas.recommend import Recommendation, RecommendBatchResponse
from tests.serving.conftest import API


def test_a_known_customer_gets_a_decision_in_its_own_timezone_outside_quiet_hours(client):
    client.put(
        "/v1/customers/c3",
        headers=API,
        json={
            "timezone": "Asia/Tokyo",
            "signup_ts": "2024-01-01T00:00:00Z",
            "consents": {"push": True},
            "attributes": {"segment": "gold"},
        },
    )
    # 12:00 UTC is 21:00 in Tokyo: quiet hours (21:00-08:00) move the send to 08:00 local
    body = {"customer_id": "c3", "context": {"now": "2024-05-01T12:00:00Z", "campaign": "spring"}}
    response = client.post("/v1/recommend", json=body, headers=API)
    decision = Recommendation.model_validate(response.json()).model_dump(mode="json")
    assert decision["cold_start"] is False
    assert decision["action"] == {
        "type": "send",
        "message_id": "welcome-email",
        "channel": "push",
        "send_at_utc": "2024-05-01T23:00:00Z",
        "send_at_local": "2024-05-02T08:00:00+09:00",
        "timezone": "Asia/Tokyo",
    }
    assert decision["reasons"] == ["highest_expected_value", "quiet_hours_shifted"]
    assert decision["model_versions"] == dict.fromkeys(
        ("conversion", "churn", "channel", "sendtime"), "1"
    )
    scores = decision["scores"]
    assert scores["uplift"] == scores["conversion"] - scores["conversion_without_action"] > 0
    assert decision["propensity"] == 1.0  # no exploration configured
    assert decision["n_candidates"] == 3  # one (message, channel) pair, its 3 best slots
    assert [a["reasons"] for a in decision["alternatives"]] == [["lower_expected_value"]]

    logged = client.app.state.store.get_decision(decision["decision_id"])
    assert logged.campaign == "spring" and logged.message_id == "welcome-email"
    record = logged.record
    assert record["ts"] == "2024-05-01T12:00:00+00:00" and record["timezone"] == "Asia/Tokyo"
    assert record["consents"] == {"email": False, "sms": False, "push": True,
                                  "in_app": False, "web": False}  # fmt: skip
    assert record["stage"] == "churned" and record["model_versions"] == decision["model_versions"]
    assert len(record["features"]) == len(client.app.state.recommender.decider.prepare(
        client.app.state.follower.current).features.spec.names)  # fmt: skip


def test_an_unknown_customer_is_a_cold_start_on_channels_that_need_no_opt_in(client):
    response = client.post("/v1/recommend", json={"customer_id": "stranger"}, headers=API)
    assert response.status_code == 200
    decision = response.json()
    assert decision["cold_start"] is True and "cold_start" in decision["reasons"]
    # nothing known: a new customer in UTC, reachable in-app and on site only (settings)
    logged = client.app.state.store.get_decision(decision["decision_id"]).record
    assert logged["stage"] == "new" and logged["timezone"] == "UTC"
    assert {c for c, ok in logged["consents"].items() if ok} == {"in_app", "web"}
    # the catalog puts no message on those channels: nothing to send
    assert decision["action"] == {"type": "no_action"}


def test_the_decision_sees_the_stored_history_and_the_context(client):
    body = {
        "customer_id": "c1",
        "context": {"message_ids": ["winback"], "channels": ["sms"], "top_k": 0},
    }
    decision = client.post("/v1/recommend", json=body, headers=API).json()
    assert (decision["action"]["message_id"], decision["action"]["channel"]) == ("winback", "sms")
    assert decision["alternatives"] == []
    record = client.app.state.store.get_decision(decision["decision_id"]).record
    assert record["candidate_message_ids"] == ["winback"] and record["allowed_channels"] == ["sms"]
    # the seeded delivery of c1 is in the replay record (page views are not policy events)
    assert record["history"]["event_type"] == ["message_delivered"]


def test_an_unknown_message_in_the_context_is_a_422_naming_it(client):
    body = {"customer_id": "c1", "context": {"message_ids": ["nope"]}}
    response = client.post("/v1/recommend", json=body, headers=API)
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == "context.message_ids" and "'nope'" in problem["problem"]
    batch = {"requests": [{"customer_id": "c1"}, body]}
    response = client.post("/v1/recommend/batch", json=batch, headers=API)
    assert response.json()["problems"][0]["field"] == "requests[1].context.message_ids"


def test_batch_answers_in_order_like_single_calls_and_logs_every_decision(client):
    now = {"now": "2024-05-01T12:00:00Z"}
    requests = [{"customer_id": c, "context": now} for c in ("c1", "unknown", "c2", "c1")]
    response = client.post("/v1/recommend/batch", json={"requests": requests}, headers=API)
    decisions = RecommendBatchResponse.model_validate(response.json()).decisions
    assert [d.customer_id for d in decisions] == ["c1", "unknown", "c2", "c1"]
    assert [d.cold_start for d in decisions] == [False, True, False, False]
    assert len({d.decision_id for d in decisions}) == 4
    singles = [client.post("/v1/recommend", json=r, headers=API).json() for r in requests]
    store = client.app.state.store
    for one, single in zip(decisions, singles, strict=True):
        assert one.action.model_dump(mode="json") == single["action"]
        # The same model inputs; the scorer's matrix product may round the last bit
        # differently for a 4-row and a 1-row call.
        assert (
            store.get_decision(one.decision_id).record["features"]
            == store.get_decision(single["decision_id"]).record["features"]
        )
        assert one.expected_value == pytest.approx(single["expected_value"], rel=1e-12)
    for d in decisions:
        assert client.app.state.store.get_decision(d.decision_id) is not None
    metrics = client.get("/metrics").text
    assert 'nextbest_decisions_total{action="send",channel="sms",cold_start="false"} 4.0' in metrics
    assert 'route="/v1/recommend/batch"' in metrics


def test_customer_profiles_can_be_read_back_and_unknown_ones_are_404(client):
    assert client.get("/v1/customers/c1", headers=API).json()["timezone"] == "Europe/Paris"
    missing = client.get("/v1/customers/zz", headers=API)
    assert missing.status_code == 404 and "zz" in missing.json()["message"]
    bad = client.put(
        "/v1/customers/c9",
        headers=API,
        json={
            "timezone": "Mars/Olympus",
            "signup_ts": "2024-01-01T00:00:00Z",
            "consents": {"fax": True},
        },
    )
    problems = {p["field"]: p["problem"] for p in bad.json()["problems"]}
    assert problems["timezone"] == "expected an IANA timezone such as Europe/Paris"
    assert any(field.startswith("consents.fax") for field in problems)
