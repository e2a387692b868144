"""Poll: synchronize connected mailboxes and turn each new Gmail message into exactly one
inbound row (and a ticket or ticket update).

Exactly once: each chunk of ≤50 messages commits in ONE Firestore batch whose inbound rows are
`create`d (fail if present) and whose ticket updates carry a last-update-time precondition; a
concurrent writer makes the batch fail and the chunk is re-read and retried. The history id is
stored only after every message it covers has a row; post-processing (labels) runs after the
commit and is re-applied when a crash left it undone.

The modules follow the path of a poll (docs/architecture.md): `fanout` (the tick) → `mailbox`
(one mailbox under its `lease`) → `run` (one run, chunk by chunk): `listing` (find new mail),
`fetch`, `decide` and `match`, `commit`; then `handoffs` (after the commit).
"""

from mailbridge.services.sync.fanout import poll
from mailbridge.services.sync.fetch import BIG_MESSAGE_BYTES
from mailbridge.services.sync.lease import Heartbeat
from mailbridge.services.sync.mailbox import TICK_DONE, make_ticket_from_spam, sync_mailbox
from mailbridge.services.sync.match import StoreLookup
from mailbridge.services.sync.run import CHUNK, MailboxSync, retry_quarantined

__all__ = ["BIG_MESSAGE_BYTES", "CHUNK", "Heartbeat", "MailboxSync", "StoreLookup", "TICK_DONE", "make_ticket_from_spam", "poll",
           "retry_quarantined", "sync_mailbox"]
