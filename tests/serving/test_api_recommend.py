"""POST /v1/recommend(/batch): the serving seam around the decision function."""

from __future__ import annotations

from tests.serving.conftest import API


def test_a_known_customer_gets_a_decision_in_its_own_timezone(client):
    body = {"customer_id": "c3", "context": {"now": "2024-05-01T12:00:00Z", "campaign": "spring"}}
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
    decision = client.post("/v1/recommend", json=body, headers=API).json()
    assert decision["cold_start"] is False
    assert decision["action"] == {
        "type": "send",
        "message_id": "welcome-email",
        "channel": "push",
        "send_at_utc": "2024-05-01T13:00:00Z",
        "send_at_local": "2024-05-01T22:00:00+09:00",
        "timezone": "Asia/Tokyo",
    }
    assert decision["model_versions"] == {
        "conversion": "1",
        "churn": "1",
        "channel": "1",
        "sendtime": "1",
    }
    assert 0 <= decision["scores"]["conversion"] <= 1
    logged = client.app.state.store.get_decision(decision["decision_id"])
    assert logged.campaign == "spring" and logged.message_id == "welcome-email"
    assert logged.record["context"]["now"] == "2024-05-01T12:00:00+00:00"
    assert logged.record["state"]["profile"]["attributes"] == {"segment": "gold"}


def test_an_unknown_customer_is_a_cold_start_not_an_error(client):
    decision = client.post("/v1/recommend", json={"customer_id": "stranger"}, headers=API)
    assert decision.status_code == 200
    assert decision.json()["cold_start"] is True
    assert decision.json()["action"]["timezone"] == "UTC"


def test_the_decision_function_sees_the_stored_history_and_the_context(client):
    body = {"customer_id": "c1", "context": {"message_ids": ["winback"], "channels": ["push"]}}
    decision = client.post("/v1/recommend", json=body, headers=API).json()
    assert (decision["action"]["message_id"], decision["action"]["channel"]) == ("winback", "push")
    logged = client.app.state.store.get_decision(decision["decision_id"])
    assert logged.record["details"] == {"n_events": 2}


def test_batch_answers_in_order_and_logs_every_decision(client):
    requests = [{"customer_id": c} for c in ("c1", "unknown", "c2", "c1")]
    response = client.post("/v1/recommend/batch", json={"requests": requests}, headers=API)
    decisions = response.json()["decisions"]
    assert [d["customer_id"] for d in decisions] == ["c1", "unknown", "c2", "c1"]
    assert [d["cold_start"] for d in decisions] == [False, True, False, False]
    assert len({d["decision_id"] for d in decisions}) == 4
    for d in decisions:
        assert client.app.state.store.get_decision(d["decision_id"]) is not None
    metrics = client.get("/metrics").text
    assert (
        'nextbest_decisions_total{action="send",channel="email",cold_start="false"} 3.0' in metrics
    )
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
