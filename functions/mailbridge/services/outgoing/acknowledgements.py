"""Acknowledgements: the automatic answer to a new ticket (RFC 3834 auto-reply), queued in the
outbox during a sync and sent by it after any queued reply (docs/outbox.md). Nothing is sent here.
"""

from __future__ import annotations

from datetime import datetime, timezone
import time

from mailbridge.domain import compose as mime
from mailbridge.domain import language, mail_providers, models, rules
from mailbridge.errors import InvalidInput
from mailbridge.logs import log_event
from mailbridge.services.outgoing import budget, drafts, records
from mailbridge.services.ports import AcknowledgementPorts


def _hour_key(now: float | None = None) -> str:
    return datetime.fromtimestamp(now or time.time(), timezone.utc).strftime("%Y%m%d%H")


# Sync modes whose mail is not new: an admin's or a connection's backfill, a full re-sync after
# Gmail's history expired (services/sync/listing.py). Their tickets are never acknowledged.
OLD_MAIL_MODES = {"backfill": "the message came in through a backfill of older mail",
                  "full": "the message came in through a full re-sync of the mailbox"}


def not_new_mail(outgoing: dict, sync_mode: str, received_at: str | None, now: float | None = None) -> str | None:
    """Why a new ticket's message is not new mail (no acknowledgement), or None when it is:
    listed by a backfill or a full re-sync, or received by Gmail (internalDate) more than
    `outgoing.acknowledge_max_age_hours` ago."""
    if sync_mode in OLD_MAIL_MODES:
        return OLD_MAIL_MODES[sync_mode]
    max_age_h = float(outgoing.get("acknowledge_max_age_hours") or models.DEFAULT_OUTGOING["acknowledge_max_age_hours"])
    if not received_at:
        return None
    try:
        received = datetime.fromisoformat(received_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    if received.tzinfo is None:
        received = received.replace(tzinfo=timezone.utc)
    age_h = ((now or time.time()) - received.timestamp()) / 3600
    if age_h > max_age_h:
        return (f"Gmail received the message {age_h:.0f} hours ago, more than "
                f"outgoing.acknowledge_max_age_hours ({max_age_h:g})")
    return None


def limit_counters(mailbox: dict, outgoing: dict, recipient: str) -> list[tuple[str, int]]:
    """The hour's counters one acknowledgement to `recipient` takes: the address's (across the
    deployment), and its domain's in this mailbox unless the domain is a public mailbox
    provider's or the mailbox's own (domain/mail_providers.py; docs/outbox.md)."""
    counters = [(recipient, int(outgoing.get("acknowledgement_limit_per_hour") or 0))]
    domain = mail_providers.domain_of(recipient)
    own = mail_providers.domain_of(mailbox.get("address") or "")
    if domain and domain != own and not mail_providers.is_public_provider(domain):
        counters.append((f"{mailbox['name']} @{domain}",
                         int(outgoing.get("acknowledgement_limit_per_domain_per_hour") or 0)))
    return counters


def choose_template(outgoing: dict, parsed) -> tuple[str, language.Choice]:
    """The acknowledgement template in the customer's language (domain/language.py): the
    message's Content-Language, else the detected language of its text, else the default."""
    choice = language.choose(outgoing.get("acknowledgement_templates") or {}, parsed.header("content-language"),
                             parsed.text or parsed.full_text or "")
    default = outgoing.get("acknowledgement_template") or models.DEFAULT_OUTGOING["acknowledgement_template"]
    return choice.template or default, choice


def record_language(services: AcknowledgementPorts, mailbox: dict, gmail_id: str | None, choice) -> None:
    """The inbound row of the acknowledged message says which language answered it."""
    if not gmail_id:
        return
    services.store.put_inbound_row(mailbox["name"], gmail_id, {"acknowledgement_language": {
        "language": choice.language, "source": choice.source}})


def acknowledge(services: AcknowledgementPorts, mailbox: dict, ticket: dict, parsed, verdict,
                gmail_id: str | None = None, *, sync_mode: str = "incremental", received_at: str | None = None) -> dict:
    """Queue the acknowledgement of a new ticket (RFC 3834 auto-reply) to an authenticated sender
    of new mail (not_new_mail), at most N per recipient and M per recipient domain and mailbox per
    hour (limit_counters), repeating its subject only when harmless (rules.acknowledgement_refusal,
    rules.repeatable_subject; docs/reliability.md); the outbox sends it after any queued reply.
    Nothing is sent here. Mail that is not new: the inbound row `gmail_id` says why."""

    outgoing = models.outgoing_settings(mailbox)
    recipient = ((ticket.get("requester") or {}).get("email") or "").strip().lower()

    def skip(reason):
        log_event("INFO", "acknowledgement skipped", ticket=ticket.get("id"), mailbox=mailbox["name"], reason=reason)
        return {"status": "skipped", "reason": reason, "ticket": ticket.get("id")}

    if not outgoing.get("acknowledge_new", True):
        return skip("acknowledgements are off for this mailbox (outgoing.acknowledge_new=false)")
    store = services.store
    old = not_new_mail(outgoing, sync_mode, received_at)
    if old:
        if gmail_id:
            store.put_inbound_row(mailbox["name"], gmail_id, {"acknowledgement": {"status": "skipped", "reason": old}})
        return skip(old)
    marker = rules.loop_marker(services.settings.prefix)
    refusal = rules.acknowledgement_refusal(parsed, verdict, recipient)
    if refusal:
        return skip(refusal)
    key = f"ack-{ticket['id']}"
    existing = store.get_outbound(key)
    if existing is not None:
        return records.result(existing)
    counters = limit_counters(mailbox, outgoing, recipient)
    full = store.take_acknowledgement_slots(counters, _hour_key())
    if full is not None:
        limit = dict(counters)[full]
        return skip(f"{full} already got {limit} acknowledgements this hour" if full == recipient else
                    f"{full.partition(' ')[2]} already got {limit} acknowledgements of mailbox {mailbox['name']} this "
                    "hour (outgoing.acknowledgement_limit_per_domain_per_hour)")
    settings = store.settings()
    fmt = settings.get("ticket_tag_format") or models.DEFAULT_SETTINGS["ticket_tag_format"]
    subject = rules.repeatable_subject(ticket.get("subject", ""))
    template, choice = choose_template(outgoing, parsed)
    text = mime.acknowledgement_text(template, mime.format_tag(ticket["number"], fmt), ticket["number"], subject)
    try:
        draft = drafts.compose(services, {**ticket, "subject": subject}, text, extra_headers=mime.auto_headers(marker),
                               only_to=recipient, kind="acknowledgement")
    except InvalidInput as e:
        return skip(f"acknowledgement could not be composed: {e}")
    daily_budget, _share = budget.daily_limits(draft.mailbox)
    # the share is the receiving mailbox's setting; the budget is the sending mailbox's
    ack_budget = daily_budget * int(outgoing.get("acknowledgement_share_percent") or 0) // 100
    used = store.send_budget_used(draft.mailbox["name"], budget.today())
    if used >= ack_budget:
        return skip(budget.acknowledgement_share_spent(daily_budget, ack_budget, used))
    if not records.create(services, key, draft):
        return records.result(store.get_outbound(key))
    record_language(services, mailbox, gmail_id, choice)
    return records.result(store.get_outbound(key))  # queued: the caller publishes one send task per sync
