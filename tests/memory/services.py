"""memory_services(): a bootstrap.Services for service tests — the same container, with the
in-memory store, Gmail, secrets and blobs passed as overrides."""

from __future__ import annotations

from mailbridge import bootstrap
from mailbridge.config import Settings
from mailbridge.domain import models
from tests.memory.events import MemoryEventSubscription, MemoryEventTopic
from tests.memory.gmail import MemoryMailboxes
from tests.memory.queue import MemoryQueue
from tests.memory.store import MemoryStore


class MemorySecrets:
    def __init__(self):
        self.values: dict[str, str] = {}

    def put(self, secret_id: str, value: str) -> None:
        self.values[secret_id] = value

    def get(self, secret_id: str) -> str | None:
        return self.values.get(secret_id)

    def destroy_all_versions(self, secret_id: str) -> int:
        return 1 if self.values.pop(secret_id, None) is not None else 0

    def destroy_old_versions(self, secret_id: str) -> int:
        return 0  # one value per secret: there are no older versions


class MemoryBlobs:
    def __init__(self):
        self.blobs: dict[str, bytes] = {}

    def put(self, sha256: str, data: bytes, content_type: str) -> str:
        self.blobs[sha256] = bytes(data)
        return sha256

    def get(self, sha256: str) -> bytes:
        return self.blobs[sha256]

    def delete(self, sha256: str) -> bool:
        return self.blobs.pop(sha256, None) is not None


class MemoryOAuth:
    def __init__(self, store=None, secrets=None):
        self.revoked: list[tuple[str, str, str]] = []
        self.revoked_tokens: list[str] = []  # tokens sent to Google's revoke endpoint
        self.store, self.secrets = store, secrets

    def mark_revoked(self, mailbox_name: str, instance: str, reason: str) -> None:
        """As adapters/google_auth.py: the credential set is marked disconnected, with the reason."""
        self.revoked.append((mailbox_name, instance, reason))
        if self.store is not None:
            self.store.update_credential(mailbox_name, instance, {
                "status": "disconnected", "last_error": reason, "disconnected_at": models.now_iso()})

    def revoke(self, token: str | None) -> None:
        if token:
            self.revoked_tokens.append(token)

    def forget(self, mailbox_name: str, instance: str) -> None:
        pass  # no token cache here

    def disconnect(self, mailbox: dict, instance: str) -> dict:
        """As adapters/google_auth.py: revoke, destroy the refresh token, mark not connected."""
        cred = models.require_credential(mailbox, instance)
        if cred.get("refresh_token_secret"):
            self.revoke(self.secrets.get(cred["refresh_token_secret"]))
            self.secrets.destroy_all_versions(cred["refresh_token_secret"])
        return self.store.update_credential(mailbox["name"], instance, {
            "status": "not_connected", "connected_email": None, "connected_at": None,
            "refresh_token_secret": None, "last_error": None, "disconnected_at": models.now_iso()})


def memory_services(**settings):
    """(services, gmail accounts): a container whose ports are all in memory; tasks wait in the
    MemoryQueue until a test delivers them (`services.queue.deliver(services, kinds=...)`); ticket
    events are published to `services.event_topic` (a MemoryEventTopic)."""
    accounts = MemoryMailboxes()
    store, secrets = MemoryStore(), MemorySecrets()
    topic = MemoryEventTopic()
    services = bootstrap.bootstrap(
        Settings(project="memory", signing_key="k" * 32, attachments_bucket="memory", **settings),
        store=store, secrets=secrets, blobs=MemoryBlobs(), google=MemoryOAuth(store, secrets),
        queue=MemoryQueue(settings.get("instance", "production")),
        event_topic=topic, event_subscription=MemoryEventSubscription(topic),
        gmail_factory=lambda mailbox, credential: accounts.gmail(mailbox["address"]))
    return services, accounts


def connected_mailbox(services, accounts, name: str = "help", address: str = "help@acme.example", **settings) -> dict:
    """A mailbox connected for this instance, its history starting now."""
    mailbox = models.new_mailbox(name, address)
    for section, values in settings.items():
        mailbox.setdefault(section, {}).update(values)
    mailbox["credentials"] = [{"instance": services.settings.instance, "client_id": "id.apps.googleusercontent.com",
                               "client_secret_secret": "s", "status": "connected", "connected_email": address,
                               "refresh_token_secret": "r", "connected_at": models.now_iso()}]
    services.store.add_mailbox(mailbox)
    services.store.reset_sync(name, services.settings.instance, models.now_iso(),
                              history_id=accounts.account(address)["history_id"])
    return mailbox
