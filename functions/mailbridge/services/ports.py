"""The ports the use cases talk to (store, Gmail, Secret Manager, Cloud Storage, OAuth), implemented by
adapters/ against Google and by the tests' in-memory fakes with dicts (docs/architecture.md). Records are
plain dicts (domain/models.py); `version` values are opaque: a service passes back what a read returned.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from mailbridge.config import Settings


class SettingsRepository(Protocol):
    def settings(self) -> dict: ...
    def set_setting(self, key: str, value) -> None: ...


class MailboxRepository(Protocol):
    def add_mailbox(self, mailbox: dict) -> None: ...            # Conflict if the name exists
    def get_mailbox(self, name: str) -> dict: ...                # NotFound
    def list_mailboxes(self) -> list[dict]: ...
    def find_mailbox_by_address(self, address: str) -> dict | None: ...
    def update_mailbox(self, name: str, updates: dict) -> None: ...
    def add_credential(self, name: str, credential: dict) -> None: ...
    def update_credential(self, name: str, instance: str, changes: dict) -> dict: ...
    def remove_credential(self, name: str, instance: str) -> dict: ...  # the removed set; NotFound
    def delete_mailbox(self, name: str) -> None: ...             # the mailbox and its sync state; NotFound


class SyncRepository(Protocol):
    """Per mailbox and instance: history id, poll status and the poll lease."""

    def get_sync(self, mailbox: str, instance: str) -> dict: ...
    def update_sync(self, mailbox: str, instance: str, changes: dict) -> None: ...
    def reset_sync(self, mailbox: str, instance: str, connected_at: str, history_id=None) -> None: ...
    def acquire_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool: ...
    def release_lease(self, mailbox: str, instance: str, owner: str, changes: dict | None = None) -> None: ...
    # The heartbeat: push the lease `ttl_seconds` ahead; False once another sync holds it.
    def renew_lease(self, mailbox: str, instance: str, owner: str, ttl_seconds: float) -> bool: ...


class LinkRepository(Protocol):
    """Single-use things: OAuth states (with the PKCE verifier) and signed-link nonces."""

    def put_oauth_state(self, state: str, data: dict, ttl_seconds: int) -> None: ...
    def consume_oauth_state(self, state: str) -> dict: ...       # AuthError if unknown/used/expired
    def use_nonce(self, nonce: str, expires_epoch: int) -> None: ...  # AuthError if already used
    def peek_oauth_state(self, state: str) -> dict | None: ...  # read without using it (None if unknown)


class TicketRepository(Protocol):
    def reserve_ticket_numbers(self, count: int) -> list[int]: ...
    def find_ticket(self, ticket_id: str) -> dict | None: ...
    def get_ticket(self, ticket_id: str) -> dict: ...            # NotFound
    def ticket_for_update(self, ticket_id: str) -> tuple[dict, object]: ...  # (ticket, version)
    def update_ticket(self, ticket_id: str, changes: dict) -> None: ...
    def change_ticket(self, ticket_id: str, decide: Callable[[dict], tuple]): ...  # + its event document, one commit
    def add_ticket_references(self, ticket_id: str, message_ids: list[str], thread_keys: list[str],
                              updated_at: str) -> None: ...
    # newest first; limit 0 = all; `before`: only numbers below it (the next page's cursor)
    def list_tickets(self, mailbox: str | None = None, status: str | None = None, limit: int = 200,
                     before: int | None = None) -> list[dict]: ...
    def ticket_messages(self, ticket_id: str) -> list[dict]: ...  # inbound and outbound rows, in order
    def tickets_by_message_ids(self, ids: list[str], sender: str = "") -> dict[str, str]: ...  # threads.preferred_holder
    def find_ticket_by_thread(self, thread_key: str) -> str | None: ...
    def tickets_by_thread_keys(self, keys: list[str]) -> dict[str, str]: ...  # key -> ticket id, for those held


class InboundRepository(Protocol):
    """One row per Gmail message seen: the exactly-once log and the stored message."""

    def get_inbound_rows(self, mailbox: str, gmail_ids: list[str]) -> dict[str, dict]: ...  # rows carry "_update_time"
    # newest first; limit 0 = all; `before`: only rows processed before that time (the next page's cursor)
    def inbound_log(self, mailbox: str, limit: int = 500, before: str | None = None) -> list[dict]: ...
    def inbound_since(self, mailbox: str, since: str) -> list[dict]: ...  # rows processed at or after `since`
    def begin_attempt(self, mailbox: str, gmail_id: str, max_attempts: int, reason: str) -> dict: ...
    def record_failure(self, mailbox: str, gmail_id: str, reason: str, max_attempts: int) -> dict: ...
    def retry_quarantined(self, mailbox: str, gmail_id: str) -> None: ...
    def failed_rows(self, mailbox: str) -> list[str]: ...
    def put_inbound_row(self, mailbox: str, gmail_id: str, row: dict) -> None: ...  # StoreUnavailable
    def commit_inbound_chunk(self, mailbox: str, rows: list[tuple[str, dict, object]],
                             tickets: list[tuple[str, dict, object]], event_document: tuple | None = None) -> int: ...


class OutboundRepository(Protocol):
    """Outgoing mail: records keyed by idempotency key, send budgets, acknowledgement limits."""

    def get_outbound(self, key: str) -> dict | None: ...
    def create_outbound(self, key: str, record: dict) -> bool: ...  # False if the key exists
    def update_outbound(self, key: str, changes: dict) -> None: ...
    def change_outbound(self, key: str, decide: Callable[[dict | None], tuple[object, dict | None]]): ...
    def commit_sent(self, key: str, decide: Callable[[dict | None, dict | None], tuple]): ...  # + ticket, event
    def unsent_outbound(self, limit: int = 500) -> list[dict]: ...
    def send_budget_used(self, mailbox: str, day: str) -> int: ...
    def take_send_budget(self, mailbox: str, day: str, budget: int) -> tuple[bool, int]: ...
    def release_send_budget(self, mailbox: str, day: str) -> None: ...
    def take_acknowledgement_slot(self, recipient: str, hour: str, limit: int) -> bool: ...
    # every (key, limit) counter of the hour, all or none: None when counted, else the full key
    def take_acknowledgement_slots(self, counters: list[tuple[str, int]], hour: str) -> str | None: ...
    # the outbox (services/outbox/): one mailbox's unsent records, its pacing document
    def outbox_records(self, mailbox: str, instance: str, kind: str | None = None,
                       statuses: tuple = ("queued", "pending", "sending", "failed")) -> list[dict]: ...
    def change_send_pacing(self, key: str, decide: Callable[[dict | None], tuple[object, dict | None]]): ...
    def get_send_pacing(self, key: str) -> dict | None: ...


class EventRepository(Protocol):  # the ticket event log (docs/events.md), written by each change's own commit
    def pending_events(self, mailbox: str, limit: int = 200) -> list[dict]: ...  # oldest first, "id", "_update_time"
    def mark_events_published(self, documents: list[dict], published_at: str) -> int: ...  # unchanged ones, once
    # newest first, of `subject`, created at or after `since`; limit 0 = all
    def event_documents(self, subject: str | None = None, since: str | None = None, limit: int = 0) -> list[dict]: ...
    def events_waiting(self, mailbox: str) -> int: ...
    def mailboxes_with_waiting_events(self, before: str, limit: int = 1000) -> list[str]: ...
    def event_message_rows(self, refs: list[dict]) -> dict[str, dict]: ...  # "collection/key" -> row


class OverrideRepository(Protocol):
    def put_override(self, row: dict) -> None: ...
    def delete_override(self, override_id: str) -> bool: ...
    def list_override_rows(self) -> list[dict]: ...
    def overrides_for(self, override_ids: list[str]) -> dict[tuple[str, str], str]: ...


class AdminRepository(Protocol):
    def get_admin_session(self, key: str) -> dict | None: ...
    def put_admin_session(self, key: str, data: dict) -> None: ...
    def update_admin_session(self, key: str, changes: dict) -> None: ...
    def clear_admin_flash(self, key: str) -> None: ...
    def delete_admin_session(self, key: str) -> None: ...
    def delete_all_admin_sessions(self) -> int: ...             # how many were ended
    def find_stored_message(self, message_id: str) -> dict | None: ...


class Store(SettingsRepository, MailboxRepository, SyncRepository, LinkRepository, TicketRepository,
            InboundRepository, OutboundRepository, OverrideRepository, AdminRepository, EventRepository, Protocol):
    """Every repository: adapters/firestore.Store in production, tests/memory in service tests."""


class Gmail(Protocol):
    """One mailbox's Gmail (adapters/gmail.py): retries, quota pacing and batches are inside."""

    retries: int  # calls retried so far (poll summaries report it)
    pacer: object  # .used: quota units spent so far

    def profile(self) -> dict: ...
    def history_ids(self, start_history_id: str, label_id: str = "INBOX") -> Iterator[tuple[list[str], str, bool]]: ...
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


class ConnectStore(MailboxRepository, SyncRepository, LinkRepository, Protocol): ...


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


class TicketsStore(TicketRepository, MailboxRepository, EventRepository, SettingsRepository, Protocol): ...


class TicketsPorts(EventsPorts, BodiesPorts, Protocol):
    """services/tickets.py: ticket views, fields and participants, each change with its event."""

    store: TicketsStore


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


class MailboxesStore(SettingsRepository, MailboxRepository, SyncRepository, LinkRepository, Protocol): ...


class MailboxesPorts(WatchPorts, Protocol):
    """services/mailboxes.py: mailboxes, credential sets, signed links and settings."""

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


class ComposePorts(InstancePorts, Protocol):
    """services/outgoing/ drafts.py, records.create, acknowledgements.py: compose a message and
    record it in the outbox. Nothing here reaches Gmail or the work queue."""

    store: OutgoingStore
    blobs: Blobs


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


class SyncStore(SettingsRepository, MailboxRepository, SyncRepository, TicketRepository, InboundRepository,
                EventRepository, Protocol):
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


class AcknowledgementPorts(ComposePorts, SendTaskPorts, Protocol):
    """services/sync/handoffs.queue_acknowledgements: a sync's new tickets acknowledged
    (services/outgoing/acknowledgements.py: queued records) and one send task asked for."""

    store: OutgoingStore


class PollStore(SyncStore, LabelsStore, OutgoingStore, Protocol): ...


class PollPorts(SyncPorts, LabelsPorts, WatchPorts, PacingPorts, AcknowledgementPorts, Protocol):
    """The sync's entry points (services/sync: poll, sync_mailbox): the sync and the ports of its steps after
    the commit (services/sync/handoffs.py): labels after processing (LabelsPorts), the Gmail watch
    (WatchPorts), the quota bucket (PacingPorts), acknowledgements and the outboxes' wake-up."""

    store: PollStore


class PushPorts(PollPorts, OutboxPorts, Protocol):
    """services/push.py: a Pub/Sub notification or task → a sync (services/sync/) or a send (services/outbox/)."""


# -- the helpdesk's JSON API ------------------------------------------------------------------
class ApiPorts(OutgoingPorts, TicketsPorts, Protocol):
    """services/api.py: ticket pages and views (services/tickets.py), replies (services/outgoing/),
    attachment content (blobs)."""

    store: OutgoingStore
