"""domain/workspace.py and domain/copies.py on plain data: what counts as a Group relay Gmail
vouches for, which alias a customer wrote to, and which mail is a copy."""

from mailbridge.domain import copies, workspace
from mailbridge.domain.parsing.model import Address

PERSON, GROUP = "jane@customer.example", "support@group.example"
ARC_I1 = "i=1; mx.google.com; dkim=pass header.i=@customer.example; dmarc=pass header.from=customer.example"


def relay_headers(top: str, arc_results=(ARC_I1,), **extra) -> dict:
    headers = {"authentication-results": [top], "arc-authentication-results": list(arc_results),
               "x-original-sender": [PERSON], "list-id": ["<support.group.example>"]}
    headers.update(extra)
    return headers


def test_a_relay_is_verified_only_by_googles_arc_pass_on_top_and_the_groups_dmarc_pass():
    good = relay_headers("mx.google.com; arc=pass (i=1 dmarc=pass fromdomain=customer.example); dmarc=pass")
    assert workspace.group_relay(good, GROUP, []).verified
    forged_top = relay_headers("evil.example; arc=pass")
    assert not workspace.group_relay(forged_top, GROUP, []).verified
    comment_only = relay_headers("mx.google.com; dkim=pass (arc=pass); dmarc=pass")
    assert not workspace.group_relay(comment_only, GROUP, []).verified
    wrong_domain = relay_headers("mx.google.com; arc=pass", [ARC_I1.replace("customer.example", "other.example")])
    assert not workspace.group_relay(wrong_domain, GROUP, []).verified
    later_instance = relay_headers("mx.google.com; arc=pass", [ARC_I1.replace("i=1", "i=2")])
    assert not workspace.group_relay(later_instance, GROUP, []).verified


def test_without_a_list_id_or_with_the_from_as_original_sender_there_is_no_relay():
    headers = relay_headers("mx.google.com; arc=pass")
    assert workspace.group_relay({k: v for k, v in headers.items() if k != "list-id"}, GROUP, []) is None
    assert workspace.group_relay(headers, PERSON, []) is None


def test_the_first_verified_alias_in_delivered_to_to_cc_order_is_written_to():
    headers = {"delivered-to": ["help@acme.example"]}
    to, cc = [Address("other@customer.example"), Address("Billing@acme.example")], [Address("sales@acme.example")]
    assert workspace.written_to(headers, to, cc, {"billing@acme.example", "sales@acme.example"}) == "billing@acme.example"
    assert workspace.written_to(headers, to, cc, set()) is None
    aliases = workspace.verified_aliases([{"sendAsEmail": "help@acme.example"},
                                          {"sendAsEmail": "Billing@acme.example", "verificationStatus": "accepted"},
                                          {"sendAsEmail": "sales@acme.example", "verificationStatus": "pending"}],
                                         "help@acme.example")
    assert aliases == {"billing@acme.example"}


def test_an_explicit_send_as_or_an_override_wins_over_the_tickets_reply_from():
    ticket, mailbox = {"mailbox": "help", "reply_from": "billing@acme.example"}, {"name": "help", "address": "help@acme.example"}
    assert workspace.reply_from(ticket, mailbox, None, "default") == "billing@acme.example"
    assert workspace.reply_from(ticket, mailbox, "desk@acme.example", "default") == "desk@acme.example"
    assert workspace.reply_from(ticket, mailbox, None, "ticket_override") == "help@acme.example"
    assert workspace.reply_from(ticket, {"name": "sales", "address": "sales@acme.example"}, None, "x") == "sales@acme.example"


def test_a_copy_key_needs_message_id_sender_and_date_and_tells_authentication_apart():
    key = copies.copy_key("<a@x>", "Ann@Customer.example", "2026-01-01T00:00:00+00:00", True)
    assert key == copies.copy_key("<a@x>", "ann@customer.example", "2026-01-01T00:00:00+00:00", True)
    assert key != copies.copy_key("<a@x>", "ann@customer.example", "2026-01-01T00:00:00+00:00", False)
    assert key != copies.copy_key("<a@x>", "bob@customer.example", "2026-01-01T00:00:00+00:00", True)
    assert copies.copy_key("<a@x>", "ann@customer.example", None, True) is None
    assert not copies.may_reach_other_mailboxes(["Help@acme.example"], "help@acme.example")
    assert copies.may_reach_other_mailboxes(["help@acme.example", "sales@acme.example"], "help@acme.example")
    assert copies.may_reach_other_mailboxes(["group@acme.example"], "help@acme.example")
