"""Labels: list/create, resolve a deletion label from any form an admin has, apply post-processing."""

from __future__ import annotations

from mailbridge.domain import labels as label_rules
from mailbridge.domain import models
from mailbridge.errors import Conflict, GmailError, InvalidInput
from mailbridge.logs import log_event
from mailbridge.services import mailboxes
from mailbridge.services.ports import LabelsPorts


def _gmail(services: LabelsPorts, name: str):
    mailbox = services.store.get_mailbox(name)
    cred = mailboxes.own_credential(services, mailbox)
    if not cred or cred.get("status") != "connected":
        raise InvalidInput(f"mailbox {name!r} is not connected for instance {services.settings.instance!r}: sign in first")
    return mailbox, services.gmail_for(mailbox, cred)


def list_labels(services: LabelsPorts, name: str) -> list[dict]:
    _mailbox, gmail = _gmail(services, name)
    labels = [label_rules.label_view(l) for l in gmail.labels()]
    labels.sort(key=lambda l: (l["type"] != "system", l["name"].lower()))
    return labels


def create_label(services: LabelsPorts, name: str, label_name: str) -> dict:
    label_name = (label_name or "").strip()
    if not label_name or len(label_name) > 225:
        raise InvalidInput("label name must be 1-225 characters")
    if label_name.upper() in label_rules.SYSTEM_IDS:
        raise InvalidInput(f"{label_name!r} is a reserved system label name")
    _mailbox, gmail = _gmail(services, name)
    try:
        return label_rules.label_view(gmail.create_label(label_name))
    except GmailError as e:
        if e.status == 409:
            raise Conflict(f"a label named {label_name!r} already exists") from None
        if e.status == 400:
            raise InvalidInput(f"Gmail refused the label name {label_name!r}: {e}") from None
        raise


def resolve_label(gmail, value: str) -> dict:
    kind, candidate = label_rules.normalize_label_input(value)
    if kind == "id":
        if candidate in label_rules.UNAPPLIABLE:
            raise InvalidInput(f"{candidate} cannot be used: {label_rules.UNAPPLIABLE[candidate]}")
        try:
            return gmail.label(candidate)
        except GmailError as e:
            if e.status in (400, 404):
                raise InvalidInput(f"no label with id {candidate!r} in this mailbox") from None
            raise
    labels = gmail.labels()
    exact = [l for l in labels if l.get("name") == candidate]
    folded = [l for l in labels if l.get("name", "").lower() == candidate.lower()]
    found = exact or folded
    if not found:
        raise InvalidInput(f"no label named {candidate!r} in this mailbox (create it first with `labels create`)")
    if len(found) > 1:
        raise InvalidInput(f"several labels match {candidate!r}: use its id ({', '.join(l['id'] for l in found)})")
    label = found[0]
    if label["id"] in label_rules.UNAPPLIABLE:
        raise InvalidInput(f"{label['id']} cannot be used: {label_rules.UNAPPLIABLE[label['id']]}")
    return gmail.label(label["id"])  # validated against the live label


def resolve(services: LabelsPorts, name: str, value: str) -> dict:
    """The label a user's input names in mailbox `name` (id, display name or UI id)."""
    return label_rules.label_view(resolve_label(_gmail(services, name)[1], value))


def set_deletion_label(services: LabelsPorts, name: str, value: str) -> dict:
    _mailbox, gmail = _gmail(services, name)
    label = resolve_label(gmail, value)
    if label["id"] in label_rules.NOT_FOR_DELETION:
        raise InvalidInput(f"{label['id']} cannot be the deletion label: {label_rules.NOT_FOR_DELETION[label['id']]}")
    services.store.update_mailbox(name, {"incoming.deletion_label": label["id"],
                                         "incoming.deletion_label_name": label.get("name", label["id"]),
                                         "incoming.label_error": None})
    result = {"mailbox": name, "id": label["id"], "name": label.get("name", label["id"]),
              "type": label.get("type", "user"), "warning": None}
    if label["id"] == "TRASH":
        result["warning"] = label_rules.TRASH_WARNING
    return result


def _processed_label_id(services: LabelsPorts, mailbox: dict, gmail, incoming: dict) -> str | None:
    name = (incoming.get("processed_label") or "").strip()
    if not name or name.lower() in ("false", "no", "off", "none"):
        return None
    if name.lower() in ("true", "yes", "on", "default"):
        name = label_rules.DEFAULT_PROCESSED_LABEL
    if incoming.get("processed_label_id") and incoming.get("processed_label_resolved") == name:
        return incoming["processed_label_id"]
    label = _label_named(gmail.labels(), name)
    if label is None:
        try:
            label = gmail.create_label(name)  # created on first use
        except GmailError as e:
            if e.status != 409:  # 409: another poll created it, or one differing only in case exists
                raise
            label = _label_named(gmail.labels(), name)
            if label is None:
                raise GmailError(f"Gmail says a label like {name!r} exists (409) but lists none by that name",
                                 409, e.reason) from None
    services.store.update_mailbox(mailbox["name"], {"incoming.processed_label_id": label["id"],
                                                    "incoming.processed_label_resolved": name})
    return label["id"]


DATA_ERRORS = (LookupError, StopIteration, TypeError, ValueError, AttributeError)


def _label_named(labels: list[dict], name: str) -> dict | None:
    """The label called `name`, as Gmail's uniqueness sees names: case-insensitively (an exact
    match first)."""
    exact = [l for l in labels if l.get("name") == name and l.get("id")]
    folded = [l for l in labels if str(l.get("name", "")).casefold() == name.casefold() and l.get("id")]
    return (exact or folded or [None])[0]


def apply_after_processing(services: LabelsPorts, mailbox: dict, gmail, ids: list[str]) -> None:
    """Label processed mail. A malformed Gmail answer or a missing label (StopIteration, KeyError,
    TypeError…) leaves as a GmailError, which the poll records without stopping (the history id
    still advances); a crash of the process stays a crash."""
    try:
        _apply_after_processing(services, mailbox, gmail, ids)
    except DATA_ERRORS as e:
        raise GmailError(f"post-processing failed: {e.__class__.__name__}: {str(e)[:200]}") from None


def _apply_after_processing(services: LabelsPorts, mailbox: dict, gmail, ids: list[str]) -> None:
    incoming = models.incoming_settings(mailbox)
    add, remove = label_rules.label_changes(incoming)
    processed = _processed_label_id(services, mailbox, gmail, incoming)
    if processed:
        add = add + [processed]
    if not add and not remove:
        return
    try:
        gmail.modify_many(ids, add, remove)
    except GmailError as e:
        if e.status not in (400, 404) or not add:
            raise
        missing = []
        for label_id in add:
            try:
                gmail.label(label_id)
            except GmailError as inner:
                if inner.status in (400, 404):
                    missing.append(label_id)
                else:
                    raise
        if not missing:
            raise
        reason = (f"label {', '.join(missing)} no longer exists in Gmail; processed mail was left in place. "
                  "Choose another with `labels set-deletion`")
        services.store.update_sync(mailbox["name"], services.settings.instance, {"label_error": reason})
        services.store.update_mailbox(mailbox["name"], {"incoming.label_error": reason})
        log_event("WARNING", "label missing; mail left in place", mailbox=mailbox["name"], labels=missing)
        return

