"""The outbox: every outgoing message is a durable outbound record first (services/outgoing/),
then sent by the "send" task of the managed queue (docs/outbox.md) — never by ingestion or a
push notification's sync.

| module | holds |
|---|---|
| `pacing` | the rolling minute of Gmail units shared with ingestion (pure arithmetic), `record_ingestion` |
| `drain` | `handle_send_task`: one drainer per mailbox, replies first, paced, budgeted; wake-ups; `InlineQueue` |
| `operators` | what operators see and do: `status`, `list_records`, `retry`, `drop` |
"""

from mailbridge.services.outbox.drain import InlineQueue, RetryLater, handle_send_task, kick_if_waiting, publish
from mailbridge.services.outbox.operators import drop, list_records, retry, status
from mailbridge.services.outbox.pacing import record_ingestion

__all__ = ["InlineQueue", "RetryLater", "drop", "handle_send_task", "kick_if_waiting", "list_records", "publish",
           "record_ingestion", "retry", "status"]
