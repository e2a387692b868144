"""Firestore adapter: every repository of services/ports.py over one client, one module per
aggregate in adapters/firestore/ (docs/architecture.md, "The store as a port").

Layout (collection/doc):
  settings/global            backend switches and global defaults                 settings.py
  mailboxes/{name}           mailbox, its settings and credential sets (no secrets) mailboxes.py
  sync/{name}~{instance}     history id, lease and poll status of one credential set  sync.py
  oauth_states/{state}       PKCE verifier bound to mailbox + set, single use, expiring  links.py
  nonces/{nonce}             used signed links (single use)                        links.py
  counters/tickets           ticket numbers, reserved in blocks                    tickets.py
  tickets/{number}           ticket header: subject, status, participants, Message-IDs, threads  tickets.py
  inbound/{name}~{gmail_id}  one row per Gmail message seen: the log AND the stored message  inbound.py
  outbound/{id}              messages we sent (or will send), keyed by idempotency key  outbound.py
  send_budget, send_pacing, ack_limits   counters of outgoing mail               outbound.py
  overrides/{scope}~{key}    outgoing mailbox per ticket, ticket type, team or client  overrides.py
  admin_sessions/{digest}    admin page sessions                                  admin.py
  events/{first event id}    ticket events of one commit, written with its change (TTL)  events.py
  erasures/{person hash}     what an erasure did, keyed by the person's HMAC (docs/privacy.md)  privacy.py
  audit/{at}~{random}        the audit log: one record per admin action (TTL)      audit.py
"""

from __future__ import annotations

from google.cloud import firestore

from mailbridge.adapters.firestore import accounting, numbers
from mailbridge.adapters.firestore.admin import AdminRepository
from mailbridge.adapters.firestore.audit import AuditRepository
from mailbridge.adapters.firestore.events import EventRepository
from mailbridge.adapters.firestore.inbound import InboundRepository
from mailbridge.adapters.firestore.links import LinkRepository
from mailbridge.adapters.firestore.mailboxes import MailboxRepository
from mailbridge.adapters.firestore.outbound import OutboundRepository
from mailbridge.adapters.firestore.overrides import OverrideRepository
from mailbridge.adapters.firestore.privacy import PrivacyRepository
from mailbridge.adapters.firestore.settings import SettingsRepository
from mailbridge.adapters.firestore.sync import SyncRepository
from mailbridge.adapters.firestore.tickets import TicketRepository


class Store(SettingsRepository, MailboxRepository, SyncRepository, LinkRepository, TicketRepository,
            InboundRepository, OutboundRepository, OverrideRepository, AdminRepository, EventRepository,
            PrivacyRepository, AuditRepository):
    """Every repository over one Firestore client."""

    def __init__(self, client: "firestore.Client", write_log: str = ""):
        self.db = client
        if write_log:  # tests and the bench: the strictness layer reads every process's writes
            accounting.WRITES.log_path = write_log
        self.write_count = 0  # documents written by this process (benchmarks read it)
        self.number_pool = numbers.NumberPool(self._increment_ticket_counter)  # ticket numbers (numbers.py)
