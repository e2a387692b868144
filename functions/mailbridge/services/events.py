"""Ticket events leave the box (docs/events.md). Every change stores its event in its own commit
(the transactional outbox, domain/events.py); here they are published to the events topic, in
each ticket's order, and marked published; listed and replayed from the log; tailed.

Publishing: right after a commit that wrote events, the writer publishes every event of that
mailbox still waiting (its own and any a crashed or slower writer left), oldest first, each
subject by sequence, in one request: a ticket's later event is never received before an earlier
one that was still waiting, because whoever publishes it publishes the earlier one first. A
publish that fails asks the work queue for an "events" task (Pub/Sub redelivers it with backoff),
and the scheduled tick's sweep queues one for any mailbox whose events still wait: an event may
be published twice, never lost, and keeps its id (consumers de-duplicate on it).
"""

from __future__ import annotations

from datetime import datetime, timezone
import time

from mailbridge.domain import events, models
from mailbridge.errors import ConfigError, InvalidInput
from mailbridge.logs import log_event
from mailbridge.services.ports import EventFeedPorts, EventsPorts

PENDING_BATCH = 200          # event documents one publish reads
SWEEP_AGE_S = 30.0           # waiting longer than this, a mailbox's events get an "events" task
PULL_MAX = 100               # events one pull of `events tail` asks for
PULL_IDLE_S = 0.5            # between pulls that found nothing


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def _ref_key(event: dict) -> str | None:
    ref = event.get("message_ref")
    return events.ref_path(ref) if ref else None


def render(services: EventsPorts, stored: list[dict], known: dict[str, dict] | None = None) -> list[dict]:
    """CloudEvents of stored events, their messages read from the rows they name; `known`: rows
    the caller wrote itself ("collection/key" -> row), not read again."""
    known = known or {}
    refs = [e["message_ref"] for e in stored if e.get("message_ref") and _ref_key(e) not in known]
    rows = {**known, **(services.store.event_message_rows(refs) if refs else {})}
    source = events.source(services.settings.project, services.settings.instance)
    return [events.cloudevent(e, source, rows.get(_ref_key(e))) for e in stored]


def publish_pending(services: EventsPorts, mailbox: str) -> int:
    """Publish a mailbox's waiting events in order and mark their documents published; returns
    how many were published (0 without an events topic: they keep waiting)."""
    topic = services.event_topic
    if topic is None:
        return 0
    published = 0
    while True:
        documents = services.store.pending_events(mailbox, PENDING_BATCH)
        if not documents:
            return published
        stored = events.in_order([e for document in documents for e in document["events"]])
        topic.publish(render(services, stored))
        services.store.mark_events_published(documents, models.now_iso())
        published += len(stored)
        if len(documents) < PENDING_BATCH:
            return published


def after_commit(services: EventsPorts, mailbox: str | None) -> None:
    """What a writer does once its change (and its event) is committed: publish. The change
    stands whatever happens here; a failed publish leaves the event waiting for the queue."""
    if mailbox and services.event_topic is not None:
        _publish_or_queue(services, mailbox, lambda: publish_pending(services, mailbox))


def publish_fresh(services: EventsPorts, mailbox: str, documents: list[tuple[str, dict]],
                  rows: dict[str, dict] | None = None) -> None:
    """after_commit for a sync's event documents that each concern only tickets their commit
    created (domain/events.fresh_only): no older event can wait for those tickets, so they are
    published as committed and marked, without the look-up for waiting documents (a query the
    emulator answers by scanning every event document; docs/benchmarks.md). Others' leftovers
    wait for their own writer's retry, an events task or the tick's sweep (docs/events.md).
    `rows`: the rows those commits wrote, so their messages are not read back."""
    if not documents or services.event_topic is None:
        return

    def publish() -> None:
        stored = events.in_order([e for _id, fields in documents for e in fields["events"]])
        services.event_topic.publish(render(services, stored, rows))
        # No version to compare: a concurrent publisher marking it too only repeats the mark.
        services.store.mark_events_published([{**fields, "id": doc_id, "_update_time": None}
                                              for doc_id, fields in documents], models.now_iso())

    _publish_or_queue(services, mailbox, publish)


def _publish_or_queue(services: EventsPorts, mailbox: str, publish) -> None:
    try:
        publish()
    except Exception as e:  # noqa: BLE001 - committed: the event waits in the log, never lost
        log_event("WARNING", "ticket events not published yet; an events task will retry", mailbox=mailbox,
                  error=f"{e.__class__.__name__}: {str(e)[:200]}")
        try:
            services.queue.publish("events", mailbox, {"reason": "publish failed"})
        except Exception as queue_error:  # noqa: BLE001 - the tick's sweep is the last net
            log_event("WARNING", "events task not queued; the scheduled sweep will publish them", mailbox=mailbox,
                      error=f"{queue_error.__class__.__name__}: {str(queue_error)[:200]}")


def handle_events_task(services: EventsPorts, mailbox: str) -> int:
    """The "events" task of the work queue (services/push.py): publish what waits; an error
    makes Pub/Sub redeliver the task with backoff."""
    return publish_pending(services, mailbox)


def sweep(services: EventsPorts) -> list[str]:
    """The scheduled tick's safety net: an "events" task for every mailbox whose events have
    waited over SWEEP_AGE_S (their writer died between commit and publish, or Pub/Sub refused)."""
    if services.event_topic is None:
        return []
    names = services.store.mailboxes_with_waiting_events(_iso(time.time() - SWEEP_AGE_S))
    if names:
        services.queue.publish_many("events", [(name, {"reason": "sweep"}) for name in names])
        log_event("INFO", "ticket events waiting; events tasks queued", mailboxes=len(names))
    return names


def waiting(services: EventsPorts, mailbox: str) -> int:
    """How many of a mailbox's events wait to be published (`mailbox show`, the admin page)."""
    return services.store.events_waiting(mailbox)


# ------------------------------------------------------------------ the log
def _subject(ticket: str | None) -> str | None:
    if ticket is None:
        return None
    subject = str(ticket).strip().lstrip("#")
    if not subject.isdigit():
        raise InvalidInput(f"--ticket must be a ticket number, got {ticket!r}")
    return subject


def _stored(services: EventsPorts, ticket: str | None, since: float | None, limit: int) -> tuple[list[dict], bool]:
    """Stored events (of a ticket, since a time), oldest first: the newest `limit` (0: all),
    and whether older ones exist beyond it."""
    if limit < 0:
        raise InvalidInput("--limit must be 0 (all) or more")
    subject = _subject(ticket)
    since_iso = _iso(since) if since is not None else None
    # every document holds at least one event: limit + 1 documents hold limit + 1 events
    documents = services.store.event_documents(subject, since_iso, limit + 1 if limit else 0)
    found = [e for document in documents for e in document["events"]
             if (subject is None or e["subject"] == subject) and (since_iso is None or e["time"] >= since_iso)]
    found.sort(key=lambda e: (e["time"], e["subject"], e["sequence"]))
    if limit and len(found) > limit:
        return found[-limit:], True
    return found, False


def list_events(services: EventsPorts, ticket: str | None = None, since: float | None = None,
                limit: int = 100) -> tuple[list[dict], bool]:
    """CloudEvents from the log, oldest first (the newest `limit`; 0 = all), and whether more exist."""
    stored, more = _stored(services, ticket, since, limit)
    return render(services, stored), more


def replay(services: EventsPorts, since: float, ticket: str | None = None) -> int:
    """Publish the logged events since `since` (of one ticket) again, with their ids: consumers
    that de-duplicate ignore those they had. Returns how many were published."""
    topic = services.event_topic
    if topic is None:
        raise ConfigError("MAILBRIDGE_EVENTS_TOPIC is not set: there is no topic to replay to")
    stored, _more = _stored(services, ticket, since, 0)
    rendered = render(services, events.in_order(stored))
    if rendered:
        topic.publish(rendered)
    log_event("INFO", "ticket events replayed", count=len(rendered), ticket=ticket,
              since=_iso(since) if since is not None else None)
    return len(rendered)


def tail(services: EventFeedPorts, on_event, count: int | None = None, timeout_s: float | None = None) -> int:
    """Hand each event arriving on the events subscription to `on_event`, then acknowledge it;
    stop after `count` events or `timeout_s` seconds (else run until interrupted)."""
    subscription = services.event_subscription
    deadline = time.monotonic() + timeout_s if timeout_s is not None else None
    seen = 0
    while (count is None or seen < count) and (deadline is None or time.monotonic() < deadline):
        pulled = subscription.pull(min(PULL_MAX, count - seen) if count is not None else PULL_MAX)
        for _ack_id, event in pulled:
            on_event(event)
        subscription.ack([ack_id for ack_id, _event in pulled])
        seen += len(pulled)
        if not pulled:
            time.sleep(PULL_IDLE_S)  # pulls answer at once: an empty subscription is not polled hot
    return seen
