"""MemoryStore: every store repository of services/ports.py over dicts, one module per aggregate
as in adapters/firestore/ (same module and class names), composed here over one set of documents.
base.py holds what they share and the rules of Firestore every write keeps (document versions for
the exactly-once preconditions, the 1 MiB limit, no array inside an array). The same contract
cases run on this store and on the Firestore adapter (tests/integration/test_store_contract.py).

Layout (collection/doc), as adapters/firestore/store.py:
  settings/global                              settings.py
  mailboxes/{name}                             mailboxes.py
  sync/{name}~{instance}                       sync.py
  oauth_states/{state}, nonces/{nonce}         links.py
  counters/tickets, tickets/{number}           tickets.py
  inbound/{name}~{gmail_id}                    inbound.py
  outbound, send_budget, send_pacing, ack_limits  outbound.py
  overrides/{scope}~{key}                      overrides.py
  admin_sessions/{digest}                      admin.py
  events/{first event id}                      events.py
  erasures/{person hash}                       privacy.py
  audit/{at}~{random}                          audit.py
"""

from __future__ import annotations

import threading

from tests.memory.store.admin import AdminRepository
from tests.memory.store.audit import AuditRepository
from tests.memory.store.events import EventRepository
from tests.memory.store.inbound import InboundRepository
from tests.memory.store.links import LinkRepository
from tests.memory.store.mailboxes import MailboxRepository
from tests.memory.store.outbound import OutboundRepository
from tests.memory.store.overrides import OverrideRepository
from tests.memory.store.privacy import PrivacyRepository
from tests.memory.store.settings import SettingsRepository
from tests.memory.store.sync import SyncRepository
from tests.memory.store.tickets import TicketRepository


class MemoryStore(SettingsRepository, MailboxRepository, SyncRepository, LinkRepository, TicketRepository,
                  InboundRepository, OutboundRepository, OverrideRepository, AdminRepository, EventRepository,
                  PrivacyRepository, AuditRepository):
    """Every repository over one dict of documents."""

    def __init__(self):
        self.docs: dict[tuple[str, str], dict] = {}  # (collection, document id) -> fields
        self.versions: dict[tuple[str, str], int] = {}  # the same key -> the write that made it
        self._clock = 0
        self.write_count = 0
        self._lock = threading.RLock()


__all__ = ["MemoryStore"]
