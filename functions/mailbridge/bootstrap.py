"""The one place adapters are wired: built lazily, once per instance; tests pass overrides."""

from __future__ import annotations

import threading

from mailbridge.config import Settings

_lock = threading.Lock()
_services: "Services | None" = None


class Services:
    def __init__(self, settings: Settings, **overrides):
        self.settings = settings
        self._overrides = overrides
        self._lock = threading.Lock()

    def _get(self, name, factory):
        if name in self._overrides:
            return self._overrides[name]
        with self._lock:
            if name not in self._overrides:
                self._overrides[name] = factory()
        return self._overrides[name]

    @property
    def store(self):
        def make():
            from google.cloud import firestore

            from mailbridge.adapters.firestore.store import Store

            return Store(firestore.Client(project=self.settings.project), write_log=self.settings.write_log)

        return self._get("store", make)

    @property
    def secrets(self):
        def make():
            from google.cloud import secretmanager

            from mailbridge.adapters.secret_manager import Secrets

            if self.settings.secret_manager_url:
                from google.auth.credentials import AnonymousCredentials

                client = secretmanager.SecretManagerServiceClient(
                    credentials=AnonymousCredentials(), transport="rest",
                    client_options={"api_endpoint": self.settings.secret_manager_url},
                )
            else:
                client = secretmanager.SecretManagerServiceClient()
            return Secrets(client, self.settings.project)

        return self._get("secrets", make)

    @property
    def blobs(self):
        def make():
            from mailbridge.adapters.storage import Blobs

            return Blobs(self.settings)

        return self._get("blobs", make)

    @property
    def google(self):
        def make():
            from mailbridge.adapters.google_auth import GoogleAuth

            return GoogleAuth(self)

        return self._get("google", make)

    @property
    def invoker_verifier(self):
        """Checks Google-signed OIDC tokens on poll and push (http/invoker.py)."""

        def make():
            from mailbridge.adapters.oidc import OidcVerifier

            return OidcVerifier(self.settings.oauth_certs_url)

        return self._get("invoker_verifier", make)

    @property
    def queue(self):
        """The work queue (services/ports.WorkQueue): Pub/Sub when MAILBRIDGE_WORK_TOPIC is set;
        otherwise "send" tasks run in the caller (services/outbox.InlineQueue, docs/outbox.md)."""
        def make():
            if not self.settings.work_topic:
                from mailbridge.services.outbox import InlineQueue

                return InlineQueue(self)
            from mailbridge.adapters.pubsub import PubSubQueue

            return PubSubQueue(self.settings)

        return self._get("queue", make)

    @property
    def event_topic(self):
        """The ticket events topic (adapters/pubsub_events.py), or None without
        MAILBRIDGE_EVENTS_TOPIC: events are then stored and listed but wait (docs/events.md)."""
        def make():
            if not self.settings.events_topic:
                return None
            from mailbridge.adapters.pubsub_events import EventTopic

            return EventTopic(self.settings)

        return self._get("event_topic", make)

    @property
    def event_subscription(self):
        """The pull subscription `events tail` reads (MAILBRIDGE_EVENTS_SUBSCRIPTION)."""
        def make():
            from mailbridge.adapters.pubsub_events import EventSubscription

            return EventSubscription(self.settings)

        return self._get("event_subscription", make)

    @property
    def admin_signin(self):
        """Sign in with Google for the admin pages (adapters/google_signin.py)."""
        def make():
            from mailbridge.adapters.google_signin import GoogleSignIn

            return GoogleSignIn(self)

        return self._get("admin_signin", make)

    def call_function(self, name: str, body: dict) -> dict:
        """POST to one of this deployment's functions; returns its JSON answer."""
        from mailbridge.adapters import functions_client

        return functions_client.post(self.settings, name, body)

    def gmail_with(self, credentials):
        """A Gmail client for google.oauth2 credentials just obtained (the sign-in's own check)."""
        from mailbridge.adapters.gmail import Gmail

        return Gmail(self.settings, credentials)

    def gmail_for(self, mailbox: dict, credential: dict):
        """A Gmail client for one credential set (raises TokenRevoked on invalid_grant)."""
        factory = self._overrides.get("gmail_factory")
        if factory:
            return factory(mailbox, credential)
        from mailbridge.adapters.gmail import Gmail

        return Gmail(self.settings, self.google.credentials_for(mailbox, credential))


def doctor():
    """The project checker of `scripts/mailbridge doctor` (adapters/doctor/)."""
    from mailbridge.adapters import doctor as module

    return module


def bootstrap(settings: Settings | None = None, **overrides) -> Services:
    """Return the process-wide Services, building them on first use."""
    global _services
    if settings is not None or overrides:
        return Services(settings or Settings.from_env(), **overrides)
    with _lock:
        if _services is None:
            _services = Services(Settings.from_env())
    return _services


def reset() -> None:
    global _services
    with _lock:
        _services = None

