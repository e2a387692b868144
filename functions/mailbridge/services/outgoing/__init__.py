"""Outgoing mail: which mailbox answers a ticket, threaded replies, acknowledgements, each sent
exactly once (docs/outbox.md; docs/architecture.md, "The path of a reply").

| module | holds |
|---|---|
| `overrides` | the override rules and `resolve_outgoing`: which mailbox answers a ticket, explained |
| `drafts` | `compose`: the message (recipients, subject, References, Gmail thread), `preview` |
| `records` | the outbound record written before Gmail is called, `enqueue_send` (the "send" task) |
| `budget` | the daily send budget and the acknowledgements' share of it |
| `delivery` | `deliver`: claim a record, look for an earlier send, call Gmail, record the outcome |
| `replies` | `send_reply`: an agent's reply, queued, optionally waited for |
| `acknowledgements` | `acknowledge`: a new ticket's auto-reply, queued during a sync |

The pure rules live in domain/routing.py (which mailbox) and domain/compose.py (the message);
the outbox (services/outbox/) sends the queued records through `delivery.deliver`.
"""

from mailbridge.services.outgoing.acknowledgements import acknowledge
from mailbridge.services.outgoing.delivery import RateLimited, deliver
from mailbridge.services.outgoing.drafts import Draft, compose, preview
from mailbridge.services.outgoing.overrides import list_overrides, remove_override, resolve_outgoing, set_override
from mailbridge.services.outgoing.records import WAKE_FALLBACK_SECONDS, enqueue_send
from mailbridge.services.outgoing.replies import send_reply, wait_for_send

__all__ = ["WAKE_FALLBACK_SECONDS", "Draft", "RateLimited", "acknowledge", "compose", "deliver", "enqueue_send", "list_overrides",
           "preview", "remove_override", "resolve_outgoing", "send_reply", "set_override", "wait_for_send"]
