"""Mail as Google Workspace delivers it (docs/gmail-differences.md): the address a customer
wrote to (a verified send-as alias answers for it), and mail relayed by a Google Group that
rewrote its From (the person is the requester only when Gmail's ARC verdict says so)."""

from __future__ import annotations

import dataclasses
import email.utils

from mailbridge.domain.authentication import GOOGLE_AUTHSERV_ID, HEADER, parse

ARC_HEADER = "arc-authentication-results"


# -- aliases ------------------------------------------------------------------------------------
def verified_aliases(send_as: list[dict], primary: str) -> set[str]:
    """The addresses a mailbox may answer from besides its own: settings.sendAs entries whose
    verification Gmail accepted (the primary address has no verification and is left out)."""
    primary = (primary or "").lower()
    return {str(a.get("sendAsEmail", "")).lower() for a in send_as
            if a.get("verificationStatus") == "accepted" and str(a.get("sendAsEmail", "")).lower() != primary}


def addresses_written_to(headers: dict[str, list[str]], to: list, cc: list) -> list[str]:
    """Delivered-To, then To, then Cc, in lower case, without repeats."""
    delivered = [addr for _name, addr in email.utils.getaddresses(headers.get("delivered-to") or []) if addr]
    found = [a.lower() for a in delivered] + [a.email.lower() for a in list(to) + list(cc) if a and a.email]
    return list(dict.fromkeys(found))


def written_to(headers: dict[str, list[str]], to: list, cc: list, aliases: set[str]) -> str | None:
    """The first address the customer wrote to that is one of the mailbox's verified aliases."""
    return next((a for a in addresses_written_to(headers, to, cc) if a in aliases), None)


def reply_from(ticket: dict, mailbox: dict, send_as: str | None, rule: str) -> str:
    """The From of a reply: the mailbox's explicit send_as, else the ticket's reply_from when the
    ticket's own mailbox answers (an override to another mailbox uses that one's address), else
    the mailbox's address."""
    if send_as:
        return send_as
    if ticket.get("reply_from") and mailbox.get("name") == ticket.get("mailbox") and "override" not in (rule or ""):
        return ticket["reply_from"]
    return mailbox["address"]


# -- Google Groups ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Relay:
    group: str  # the group's address (the rewritten From)
    person: str  # the original sender (X-Original-Sender, else Reply-To)
    person_name: str
    verified: bool  # Gmail's ARC verdict vouches for the person: the requester is the person
    note: str


def group_relay(headers: dict[str, list[str]], from_email: str, reply_to: list) -> Relay | None:
    """The Group relay of a message whose From a Google Group rewrote (`X-Original-Sender` or
    `X-Original-From` present, a `List-Id`, and a person other than the From), or None. Verified
    when the topmost Authentication-Results is Google's with `arc=pass` and the first
    ARC-Authentication-Results (i=1, the Group's record of the original message) says
    `dmarc=pass` for the person's domain."""
    original = _first_address(headers.get("x-original-sender")) or _first_address(headers.get("x-original-from"))
    if not original or not headers.get("list-id"):
        return None
    person = original[1] or (reply_to[0].email if reply_to else "")
    name = original[0] or (reply_to[0].name if reply_to else "")
    group = (from_email or "").lower()
    if not person or person == group:
        return None
    verified, note = _arc_vouches(headers, person)
    return Relay(group, person, name, verified, note)


def _first_address(values: list[str] | None) -> tuple[str, str] | None:
    for name, addr in email.utils.getaddresses(values or []):
        if addr and "@" in addr:
            return name, addr.lower()
    return None


def _arc_vouches(headers: dict[str, list[str]], person: str) -> tuple[bool, str]:
    top = (headers.get(HEADER) or [""])[0]
    authserv_id, results = parse(top)
    if authserv_id != GOOGLE_AUTHSERV_ID or ("arc", "pass") not in {(m, r) for m, r, _d in results}:
        return False, "Gmail did not validate the Group's ARC chain (no arc=pass from mx.google.com)"
    first = _arc_instance_one(headers.get(ARC_HEADER) or [])
    if first is None:
        return False, "no ARC-Authentication-Results of instance 1"
    domain = person.rpartition("@")[2]
    _authserv, original = parse(first)
    if any(m == "dmarc" and r == "pass" and (d == domain or domain.endswith("." + d)) for m, r, d in original):
        return True, f"Gmail validated the ARC chain and the Group recorded dmarc=pass for {domain}"
    return False, f"the Group did not record dmarc=pass for {domain}"


def _arc_instance_one(values: list[str]) -> str | None:
    """The ARC-Authentication-Results of instance 1 (`i=1; authserv-id; results`), as the
    authentication parser reads it: without the instance tag."""
    for value in values:
        head, _sep, rest = value.partition(";")
        if head.strip().replace(" ", "") == "i=1":
            return rest
    return None
