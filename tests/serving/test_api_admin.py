"""Admin scope: privacy deletion everywhere, model reload, and the key checks around them."""

from __future__ import annotations

import sqlite3

from tests.serving.conftest import ADMIN, API, event
from tests.serving.tiny_models import tiny_scorer


def test_delete_customer_erases_profile_events_decisions_and_outcomes(client):
    store = client.app.state.store
    client.post("/v1/events", json={"events": [event("extra")]}, headers=API)
    decided = client.post("/v1/recommend", json={"customer_id": "c1"}, headers=API).json()
    client.post(
        "/v1/feedback",
        headers=API,
        json={
            "decision_id": decided["decision_id"],
            "outcome": "opened",
            "ts": "2030-01-01T00:00:00Z",
        },
    )
    response = client.delete("/admin/customers/c1", headers=ADMIN)
    assert response.status_code == 200
    assert response.json() == {
        "customer_id": "c1",
        "deleted": {"customers": 1, "events": 3, "decisions": 1, "outcomes": 1},
    }
    with sqlite3.connect(store.path) as raw:
        for table in ("customers", "events", "decisions"):
            ids = {r[0] for r in raw.execute(f"SELECT customer_id FROM {table}")}
            assert "c1" not in ids, table
        assert raw.execute("SELECT COUNT(*) FROM outcomes").fetchone() == (0,)
    after = client.post("/v1/recommend", json={"customer_id": "c1"}, headers=API).json()
    assert after["cold_start"] is True


def test_admin_endpoints_need_an_admin_key(client):
    assert client.delete("/admin/customers/c1").status_code == 401
    wrong = client.delete("/admin/customers/c1", headers={"X-API-Key": "guess"})
    assert wrong.status_code == 401 and wrong.json()["message"] == "invalid X-API-Key"
    api_only = client.post("/admin/reload", headers=API)
    assert api_only.status_code == 403
    assert api_only.json() == {
        "error": "forbidden",
        "message": "this API key lacks the admin scope",
        "problems": [],
    }


def test_v1_endpoints_need_a_key_and_admin_keys_work_there_too(client):
    missing = client.post("/v1/recommend", json={"customer_id": "c1"})
    assert missing.status_code == 401
    assert missing.json()["message"] == "missing X-API-Key header"
    assert missing.headers["www-authenticate"] == "ApiKey"
    assert (
        client.post("/v1/recommend", json={"customer_id": "c1"}, headers=ADMIN).status_code == 200
    )


def test_reload_swaps_in_a_moved_alias_and_keeps_the_old_set_on_failure(client, registry, spec):
    registry.register("2", tiny_scorer(seed=2, spec=spec))
    registry.point("2")
    moved = client.post("/admin/reload", headers=ADMIN).json()
    assert moved["status"] == "loaded" and moved["serving"]["churn"] == "2"
    decided = client.post("/v1/recommend", json={"customer_id": "c1"}, headers=API).json()
    assert decided["model_versions"]["conversion"] == "2"

    registry.register("3", tiny_scorer(seed=3, spec=spec))
    registry.broken.add(("channel", "3"))
    registry.point("3")
    failed = client.post("/admin/reload", headers=ADMIN).json()
    assert failed["status"] == "failed" and failed["serving"]["channel"] == "2"
    assert "nextbest-channel version 3" in failed["error"]
    ready = client.get("/ready").json()
    assert ready["ready"] is True and ready["models"]["versions"]["channel"] == "2"
    assert "artifact of channel v3 is missing" in ready["models"]["last_reload_error"]
    metrics = client.get("/metrics").text
    assert "nextbest_model_reload_error 1.0" in metrics
    assert 'nextbest_model_load_failures_total{task="channel"} 1.0' in metrics
    assert 'nextbest_model_version_info{alias="champion",task="channel",version="2"} 1.0' in metrics

    registry.broken.clear()
    assert client.post("/admin/reload", headers=ADMIN).json()["status"] == "skipped"
    forced = client.post("/admin/reload?force=true", headers=ADMIN).json()
    assert forced["status"] == "loaded" and forced["serving"]["channel"] == "3"
    assert "nextbest_model_reload_error 0.0" in client.get("/metrics").text
