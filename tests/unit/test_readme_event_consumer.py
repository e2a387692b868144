"""The twenty-line consumer of README.md ("Ticket events") does what it says: it refuses a push
whose OIDC token Google's library rejects or that another account signed, and applies each event
id once however often Pub/Sub redelivers or `events replay` sends it again. google-auth's token
check is replaced at its boundary (it would fetch Google's keys)."""

from __future__ import annotations

from pathlib import Path
import re

from google.oauth2 import id_token
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
ENDPOINT = "https://desk.example/mailbridge-events"
PUSHER = "mb-events-push@acme-prod.iam.gserviceaccount.com"
TOKENS = {"good": {"email": PUSHER, "email_verified": True},
          "other-account": {"email": "someone@acme-prod.iam.gserviceaccount.com", "email_verified": True}}


def consumer_source() -> str:
    section = README.read_text().split("## Ticket events", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    return code


@pytest.fixture
def consumer(monkeypatch):
    def verify(token, request, audience=None):
        if audience != ENDPOINT or token not in TOKENS:
            raise ValueError("Could not verify token")
        return TOKENS[token]

    monkeypatch.setattr(id_token, "verify_oauth2_token", verify)
    monkeypatch.setenv("EVENTS_ENDPOINT", ENDPOINT)
    monkeypatch.setenv("EVENTS_PUSHER", PUSHER)
    applied = []
    namespace = {"__name__": "readme_consumer", "apply": applied.append}
    exec(compile(consumer_source(), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    return namespace["app"].test_client(), applied


def push(client, token: str, event: dict):
    return client.post("/mailbridge-events", json=event, headers={"Authorization": f"Bearer {token}"})


def test_the_readme_consumer_stays_about_twenty_lines():
    assert len(consumer_source().strip().splitlines()) <= 26


def test_the_readme_consumer_applies_each_event_id_once(consumer):
    client, applied = consumer
    event = {"id": "help~g1", "type": "ticket.created", "subject": "1", "sequence": 1}
    assert push(client, "good", event).status_code == 204
    assert push(client, "good", event).status_code == 204  # a redelivery or a replay
    assert push(client, "good", {**event, "id": "help~g2", "sequence": 2}).status_code == 204
    assert [e["id"] for e in applied] == ["help~g1", "help~g2"]


@pytest.mark.parametrize(("token", "status"), [("forged", 401), ("", 401), ("other-account", 403)])
def test_the_readme_consumer_refuses_a_push_without_the_pushers_token(consumer, token, status):
    client, applied = consumer
    assert push(client, token, {"id": "help~g1"}).status_code == status
    assert applied == []
