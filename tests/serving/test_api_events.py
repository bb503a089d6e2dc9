"""POST /v1/events: idempotent, durable, validated, and visible to the next decision at once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from serving.app import create_app
from tests.serving.conftest import API, event


def test_events_are_acknowledged_with_accepted_and_duplicate_counts(client):
    batch = {"events": [event("x1"), event("x2"), event("x1")]}
    assert client.post("/v1/events", json=batch, headers=API).json() == {
        "accepted": 2,
        "duplicates": 1,
    }
    assert client.post("/v1/events", json=batch, headers=API).json() == {
        "accepted": 0,
        "duplicates": 3,
    }


def test_acknowledged_events_survive_a_restart(settings, follower):
    first = create_app(settings, follower=follower)
    with TestClient(first) as c:
        assert (
            c.post("/v1/events", json={"events": [event("kept")]}, headers=API).json()["accepted"]
            == 1
        )
    second = create_app(settings, follower=follower)
    with TestClient(second) as c:
        again = c.post("/v1/events", json={"events": [event("kept")]}, headers=API).json()
        assert again == {"accepted": 0, "duplicates": 1}
        assert c.app.state.store.customer_events("c1").ts_ns.size == 3  # 2 seeded + 1


def test_an_unsubscribe_applies_to_the_very_next_recommendation(client):
    ask = {"customer_id": "c1", "context": {"channels": ["sms"], "now": "2024-05-01T12:00:00Z"}}
    before = client.post("/v1/recommend", json=ask, headers=API).json()
    assert before["action"]["channel"] == "sms"
    # reported a minute *after* the decision time: an opt-out holds from the moment it arrives
    unsubscribe = event("u1", event_type="unsubscribe", channel="sms", ts="2024-05-01T12:01:00Z")
    assert client.post("/v1/events", json={"events": [unsubscribe]}, headers=API).status_code == 200
    after = client.post("/v1/recommend", json=ask, headers=API).json()
    assert after["action"] == {"type": "no_action"}
    assert after["reasons"] == ["no_candidates"]
    logged = client.app.state.store.get_decision(after["decision_id"]).record
    excluded = {(x["message_id"], x["channel"], x["reason"]) for x in logged["exclusions"]}
    assert ("winback", "sms", "unsubscribed") in excluded


def test_bad_events_get_422_naming_each_field(client):
    batch = {
        "events": [
            event("ok"),
            event("b1", event_type="teleport"),
            event("b2", ts="yesterday"),
            event("b3", ts="2024-05-01T10:00:00"),
            event("b4", value=-3),
            event("b5", channel="fax", color="blue"),
            event("b6", event_type="message_open", message_id=None),
            event("b7", event_type="unsubscribe", channel=None),
            {"customer_id": "c1"},
        ]
    }
    response = client.post("/v1/events", json=batch, headers=API)
    assert response.status_code == 422
    problems = {p["field"]: p["problem"] for p in response.json()["problems"]}
    assert "'page_view'" in problems["events[1].event_type"]
    assert "ISO-8601" in problems["events[2].ts"] or "datetime" in problems["events[2].ts"]
    assert "timezone" in problems["events[3].ts"]
    assert "greater than or equal to 0" in problems["events[4].value"]
    assert "'email'" in problems["events[5].channel"]
    assert problems["events[5].color"] == "unknown field (not part of the schema)"
    assert problems["events[6]"] == "a message_open event needs message_id"
    assert "opted out of" in problems["events[7]"]
    assert problems["events[8].event_id"] == "this field is required"
    # nothing of a rejected batch is stored
    assert client.app.state.store.customer_events("c1").ts_ns.size == 2


def test_an_empty_or_oversized_batch_is_refused(client, settings):
    assert client.post("/v1/events", json={"events": []}, headers=API).status_code == 422
