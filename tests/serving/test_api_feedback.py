"""POST /v1/feedback: outcomes join the decision log; unknown decisions are a clear 404."""

from __future__ import annotations

from tests.serving.conftest import API


def _decide(client) -> str:
    body = {"customer_id": "c2", "context": {"now": "2024-05-01T12:00:00Z"}}
    return client.post("/v1/recommend", json=body, headers=API).json()["decision_id"]


def test_feedback_is_joined_to_the_logged_decision(client):
    decision_id = _decide(client)
    converted = {
        "decision_id": decision_id,
        "outcome": "converted",
        "ts": "2024-05-02T08:00:00Z",
        "revenue": 49.9,
    }
    response = client.post("/v1/feedback", json=converted, headers=API)
    assert response.status_code == 200
    assert response.json() == {"decision_id": decision_id, "outcome": "converted", "recorded": True}
    assert client.post("/v1/feedback", json=converted, headers=API).json()["recorded"] is False
    stored = client.app.state.store.outcomes(decision_id)
    assert [(o.outcome.value, o.revenue) for o in stored] == [("converted", 49.9)]
    logged = client.app.state.store.get_decision(decision_id)
    assert logged.customer_id == "c2" and logged.record["decision_id"] == decision_id


def test_feedback_for_an_unknown_decision_is_404_with_a_clear_message(client):
    body = {"decision_id": "never-made", "outcome": "opened", "ts": "2024-05-02T08:00:00Z"}
    response = client.post("/v1/feedback", json=body, headers=API)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "never-made" in response.json()["message"]


def test_revenue_belongs_to_conversions_only(client):
    decision_id = _decide(client)
    body = {
        "decision_id": decision_id,
        "outcome": "opened",
        "ts": "2024-05-02T08:00:00Z",
        "revenue": 3,
    }
    response = client.post("/v1/feedback", json=body, headers=API)
    assert response.status_code == 422
    assert "only reported with outcome 'converted'" in response.json()["problems"][0]["problem"]
