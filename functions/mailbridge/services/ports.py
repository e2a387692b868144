"""The ports the use cases talk to (store, Gmail, Secret Manager, Cloud Storage, OAuth), implemented by
adapters/ against Google and by the tests' in-memory fakes with dicts (docs/architecture.md). The store's
repository Protocols live in services/repositories.py; each use case's store below combines some of them.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from mailbridge.config import Settings
from mailbridge.services.repositories import (  # noqa: F401  (re-exported: ports.TicketRepository)
    AdminRepository, AuditRepository, EventRepository, InboundRepository, LinkRepository, MailboxRepository,
    OutboundRepository, OverrideRepository, PrivacyRepository, SettingsRepository, Store, SyncRepository,
    TicketRepository)


class Gmail(Protocol):
    """One mailbox's Gmail (adapters/gmail.py): retries, quota pacing and batches are inside."""

    retries: int  # calls retried so far (poll summaries report it)
    pacer: object  # .used: quota units spent so far

    def profile(self) -> dict: ...
    def new_mail(self, start_history_id: str) -> Iterator[tuple[list[str], list[str], str, bool]]: ...  # inbox, spam
    def list_ids(self, query: str) -> Iterator[list[str]]: ...
    def get_raw_many(self, ids: list[str]) -> dict: ...          # id -> {"raw": bytes, ...} or a GmailError
    def modify_many(self, ids: list[str], add: list[str], remove: list[str]) -> None: ...
    def labels(self) -> list[dict]: ...
    def label(self, label_id: str) -> dict: ...
    def create_label(self, name: str) -> dict: ...
    def send(self, raw: bytes, thread_id: str | None = None) -> dict: ...
    def message_metadata(self, message_id: str, names: list[str]) -> dict | None: ...  # {"id","threadId","headers"}
    def send_as_list(self) -> list[dict]: ...                   # settings.sendAs.list resources
    def watch(self, topic: str, label_ids=("INBOX",)) -> dict: ...
    def stop(self) -> None: ...
    def trash(self, message_id: str) -> bool: ...  # messages.trash; False if the message is gone


class WorkQueue(Protocol):
    """The managed work queue (docs/architecture.md, "Queue"): Pub/Sub topic `{prefix}-work`
    whose push subscription delivers every task, at least once, to the `push` function.

    kind: "sync" (synchronize one mailbox, services/push.py) or "send" (services/outbox/).
    attributes: extra string attributes (e.g. "tick", "key"); "kind", "mailbox" and "instance"
    are set by the queue. A duplicate or late delivery must be harmless: handlers are idempotent.
    """

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None: ...
    # Many tasks of one kind in as few requests as the queue allows (the scheduled tick's fan-out).
    def publish_many(self, kind: str, tasks: list[tuple[str, dict | None]]) -> None: ...


class EventTopic(Protocol):  # adapters/pubsub_events.py: CloudEvents, ordering key = subject
    def publish(self, events: list[dict]) -> None: ...  # in order; QueueUnavailable


class EventSubscription(Protocol):  # a pull subscription on the events topic (`events tail`)
    def pull(self, max_messages: int) -> list[tuple[str, dict]]: ...  # (ack id, event), [] when none waits
    def ack(self, ack_ids: list[str]) -> None: ...


class Secrets(Protocol):
    def put(self, secret_id: str, value: str) -> None: ...
    def get(self, secret_id: str) -> str | None: ...
    def destroy_all_versions(self, secret_id: str) -> int: ...
    def destroy_old_versions(self, secret_id: str) -> int: ...   # all but the newest


class Blobs(Protocol):
    def put(self, sha256: str, data: bytes, content_type: str) -> str: ...
    def get(self, sha256: str) -> bytes: ...
    def delete(self, sha256: str) -> bool: ...  # False if it was not there


class OAuth(Protocol):
    """Google sign-in (adapters/google_auth.py)."""

    def consent_url(self, mailbox: dict, instance: str) -> str: ...
    def exchange_code(self, mailbox: dict, cred: dict, state: str, code_verifier: str, code: str): ...
    def credentials_for(self, mailbox: dict, cred: dict): ...
    def mark_revoked(self, mailbox_name: str, instance: str, reason: str) -> None: ...
    def revoke(self, token: str | None) -> None: ...
    def forget(self, mailbox_name: str, instance: str) -> None: ...
    def disconnect(self, mailbox: dict, instance: str) -> dict: ...


class AdminSignIn(Protocol):
    """Sign in with Google for the admin pages (adapters/google_signin.py)."""

    def authorization_url(self, *, state: str, nonce: str, verifier: str, redirect_uri: str,
                          hosted_domain: str = "") -> str: ...
    def exchange(self, *, code: str, verifier: str, redirect_uri: str) -> dict: ...  # verified ID token claims
    def verify(self, token: str, audience: str | None = None) -> dict: ...


class Services(Protocol):
    """The whole container (bootstrap.Services), as the edges (http/, cli/) hold it. A use case
    never asks for it: it declares one of the ports below, which name only what it uses."""

    settings: Settings
    store: Store
    secrets: Secrets
    blobs: Blobs
    google: OAuth
    admin_signin: AdminSignIn

    def gmail_for(self, mailbox: dict, credential: dict) -> Gmail: ...
    def gmail_with(self, credentials) -> Gmail: ...

    @property
    def queue(self) -> WorkQueue: ...

    event_topic: EventTopic | None  # None: no MAILBRIDGE_EVENTS_TOPIC
    event_subscription: EventSubscription


# -- the ports of each use case ----------------------------------------------------------------
# A service function's `services` parameter is annotated with the port of its module (or a
# narrower one); it touches only what that port names, and hands `services` on only to functions
# whose port is part of its own. tests/unit/test_service_ports.py reads services/ and enforces it.
# bootstrap.Services satisfies every one of them; a test may pass anything narrower.


class InstancePorts(Protocol):
    """Only which instance this deployment is (services/mailboxes.own_credential)."""

    settings: Settings


class WatchPorts(Protocol):
    """services/watch.py: start or renew the Gmail watch, recorded in the sync state."""

    settings: Settings
    store: SyncRepository


class AdminAccessStore(SettingsRepository, LinkRepository, AdminRepository, Protocol): ...


class AdminAccessPorts(Protocol):
    """services/admin_access.py: who may sign in to the admin pages, and their sessions."""

    settings: Settings
    store: AdminAccessStore
    admin_signin: AdminSignIn


class ConnectStore(MailboxRepository, SyncRepository, LinkRepository, InboundRepository, Protocol): ...


class ConnectPorts(WatchPorts, Protocol):
    """services/connect.py: finish a mailbox's Google sign-in (token to Secret Manager, watch)."""

    store: ConnectStore
    secrets: Secrets
    google: OAuth
    admin_signin: AdminSignIn

    def gmail_with(self, credentials) -> Gmail: ...


class EventsStore(EventRepository, SettingsRepository, Protocol): ...


class BodiesPorts(Protocol):
    """services/stored_bodies.py: message parts too large for a Firestore document."""

    blobs: Blobs


class EventsPorts(Protocol):
    """services/events.py: publish (or queue an "events" task), list, replay (docs/events.md)."""

    settings: Settings
    store: EventsStore
    event_topic: EventTopic | None
    queue: WorkQueue


class EventFeedPorts(Protocol):  # services/events.tail
    event_subscription: EventSubscription


class AuditStore(AuditRepository, SettingsRepository, Protocol): ...


class AuditPorts(Protocol):
    """services/audit.py: the append-only audit log."""

    store: AuditStore


class RetentionStore(PrivacyRepository, TicketRepository, MailboxRepository, SettingsRepository, Protocol): ...


class RetentionPorts(Protocol):
    """services/retention.py: when a closed ticket's data expires, legal hold, deleting it at once."""

    store: RetentionStore
    blobs: Blobs


class TicketsStore(TicketRepository, MailboxRepository, EventRepository, SettingsRepository, PrivacyRepository,
                   Protocol): ...


class TicketsPorts(EventsPorts, BodiesPorts, RetentionPorts, Protocol):
    """services/tickets.py: ticket views, fields and participants, each change with its event
    (a closed ticket's expiry: services/retention.py)."""

    store: TicketsStore


class PrivacyStore(RetentionStore, AuditStore, InboundRepository, Protocol): ...


class PrivacyPorts(RetentionPorts, AuditPorts, Protocol):
    """services/privacy.py: a person's export and erasure, and a mailbox's purge."""

    settings: Settings
    store: PrivacyStore

    def gmail_for(self, mailbox: dict, credential: dict) -> Gmail: ...


class IntakePorts(Protocol):
    """services/mailboxes.recent_intake: a count over the inbound log, nothing else."""

    store: InboundRepository


class OverrideTargetPorts(InstancePorts, Protocol):
    """services/mailboxes.check_override_target: the ticket and the mailbox an override names."""

    store: TicketsStore


class LabelsStore(MailboxRepository, SyncRepository, Protocol): ...


class LabelsPorts(InstancePorts, Protocol):
    """services/labels.py: a mailbox's Gmail labels, and the labels processing adds."""

    store: LabelsStore

    def gmail_for(self, mailbox: dict, credential: dict) -> Gmail: ...


class MailboxesStore(SettingsRepository, MailboxRepository, SyncRepository, LinkRepository, EventRepository,
                     Protocol): ...


class MailboxesPorts(WatchPorts, EventsPorts, Protocol):
    """services/mailboxes.py: mailboxes, credential sets, signed links and settings; a set that
    stops being connected publishes its mailbox.disconnected event at once."""

    store: MailboxesStore
    secrets: Secrets
    google: OAuth

    def gmail_for(self, mailbox: dict, credential: dict) -> Gmail: ...


class OverridesStore(SettingsRepository, MailboxRepository, OverrideRepository, Protocol): ...


class OverridesPorts(InstancePorts, Protocol):
    """services/outgoing/overrides.py: the override rules, and which mailbox answers a ticket."""

    store: OverridesStore


class OutgoingStore(SettingsRepository, MailboxRepository, TicketRepository, OutboundRepository, OverrideRepository,
                    EventRepository, Protocol): ...


class OwnAddressesPorts(Protocol):
    """services/own_addresses.py: every mailbox's address, cached on the container for a minute."""

    store: MailboxRepository
    _own_addresses_cache: tuple[float, set[str]]


class ComposePorts(InstancePorts, Protocol):
    """services/outgoing/ drafts.py, records.create, acknowledgements.py: compose a message and
    record it in the outbox. Nothing here reaches Gmail or the work queue."""

    store: OutgoingStore
    blobs: Blobs
    _own_addresses_cache: tuple[float, set[str]]  # an acknowledgement's own addresses (own_addresses.py)


class SendTaskPorts(Protocol):
    """Ask the work queue for a mailbox's "send" task and set its wake-up time
    (services/outgoing/records.enqueue_send, services/outbox/drain.publish and kick_if_waiting)."""

    store: MailboxRepository

    @property
    def queue(self) -> WorkQueue: ...


class OutgoingPorts(ComposePorts, EventsPorts, SendTaskPorts, Protocol):
    """services/outgoing/: what composing and recording need, plus delivery through Gmail
    (delivery.py) and replies that ask for their send task and wait for it (replies.py)."""

    store: OutgoingStore
    google: OAuth

    def gmail_for(self, mailbox: dict, credential: dict) -> Gmail: ...


class PacingPorts(InstancePorts, Protocol):
    """services/outbox/pacing.record_ingestion: a sync's Gmail units into the mailbox's rolling minute."""

    store: OutboundRepository


class OutboxPorts(OutgoingPorts, Protocol):
    """services/outbox/: drain one mailbox's outbox, paced (through services/outgoing/delivery.py); status, retry, drop."""


class AttemptsStore(InboundRepository, SettingsRepository, Protocol):
    """services/sync/fetch.Attempts: a message's attempts and final row (kept retention.inbound_log_days)."""


class SyncStore(SettingsRepository, MailboxRepository, SyncRepository, TicketRepository, InboundRepository,
                EventRepository, PrivacyRepository, Protocol):
    """What the sync itself reads and writes: the switches and the ticket tag format, the mailboxes
    (loop protection), the sync state and lease, the tickets, the inbound log, the ticket events."""


class SyncPorts(InstancePorts, EventsPorts, Protocol):
    """services/sync/: find new mail, fetch, decide, commit (one mailbox, exactly once), and the
    sync's own tasks (a continuation, the tick's fan-out). Its hand-offs after the commit are
    named steps with their own ports (services/sync/handoffs.py): PollPorts joins them."""

    store: SyncStore
    blobs: Blobs  # attachments
    google: OAuth  # a revoked token is recorded (mark_revoked)
    # own_addresses() caches the deployment's addresses on the container for a minute
    _own_addresses_cache: tuple[float, set[str]]

    def gmail_for(self, mailbox: dict, credential: dict) -> Gmail: ...

    @property
    def queue(self) -> WorkQueue: ...


class AcknowledgementStore(OutgoingStore, InboundRepository, Protocol): ...


class AcknowledgementPorts(ComposePorts, SendTaskPorts, Protocol):
    """services/sync/handoffs.queue_acknowledgements: a sync's new tickets acknowledged
    (services/outgoing/acknowledgements.py: queued records, the language noted on the inbound
    row) and one send task asked for."""

    store: AcknowledgementStore


class PollStore(SyncStore, LabelsStore, OutgoingStore, Protocol): ...


class PollPorts(SyncPorts, LabelsPorts, WatchPorts, PacingPorts, AcknowledgementPorts, Protocol):
    """The sync's entry points (services/sync: poll, sync_mailbox): the sync and the ports of its steps after
    the commit (services/sync/handoffs.py): labels after processing (LabelsPorts), the Gmail watch
    (WatchPorts), the quota bucket (PacingPorts), acknowledgements and the outboxes' wake-up."""

    store: PollStore


class PushPorts(PollPorts, OutboxPorts, Protocol):
    """services/push.py: a Pub/Sub notification or task → a sync (services/sync/) or a send (services/outbox/)."""


# -- the helpdesk's JSON API ------------------------------------------------------------------
class ApiStore(OutgoingStore, PrivacyRepository, Protocol): ...


class ApiPorts(OutgoingPorts, TicketsPorts, Protocol):
    """services/api.py: ticket pages and views (services/tickets.py), replies (services/outgoing/),
    attachment content (blobs)."""

    store: ApiStore
