"""Aliases and Google Groups (issue 30, docs/gmail-differences.md): the verified alias a customer
wrote to answers the ticket; a Group that rewrote the From gives way to the person only when
Gmail's ARC verdict vouches for them. Messages shaped like Google's (Groups' DMARC help)."""

import pytest

from mailbridge.services import mailboxes, sync
from mailbridge.services.outgoing import drafts
from mailbridge.domain import tickets as ticket_views
from tests.helpers import make_mail
from tests.memory.services import connected_mailbox, memory_services

ADDRESS, GROUP, PERSON = "help@acme.example", "support@group.acme.example", "jane@customer.example"


@pytest.fixture
def world():
    services, accounts = memory_services()
    connected_mailbox(services, accounts)
    aliases = accounts.account(ADDRESS)["send_as"]
    aliases.append({"sendAsEmail": "billing@acme.example", "verificationStatus": "accepted"})
    aliases.append({"sendAsEmail": "sales@acme.example", "verificationStatus": "pending"})
    return services, accounts


def only_ticket(services):
    (ticket,) = services.store.list_tickets()
    return ticket


def reply_preview(services, ticket):
    return drafts.preview(drafts.compose(services, ticket, "We are on it."))


def group_mail(arc: str = "pass", original_dmarc: str = "pass", subject: str = "Invoice missing", **headers) -> bytes:
    """A Google Group's relay of Jane's mail, as Gmail delivers it (its MX's header on top)."""
    raw = make_mail(f'"Jane Doe via Support" <{GROUP}>', GROUP, subject, "Where is it?", **headers,
                    Reply_To=f"Jane Doe <{PERSON}>", X_Original_Sender=PERSON,
                    X_Original_From=f"Jane Doe <{PERSON}>", List_Id="<support.group.acme.example>",
                    Precedence="list", Mailing_list="list support@group.acme.example; contact support+owners@group.acme.example",
                    X_Google_Group_Id="812345678901",
                    ARC_Authentication_Results=f"i=1; mx.google.com; dkim=pass header.i=@customer.example; "
                                               f"spf=pass smtp.mailfrom={PERSON}; dmarc={original_dmarc} "
                                               f"(p=REJECT) header.from=customer.example")
    top = (f"Authentication-Results: mx.google.com; dkim=pass header.i=@group.acme.example; arc={arc} "
           f"(i=1 spf=pass spfdomain=customer.example dmarc={original_dmarc} fromdomain=customer.example); "
           f"spf=pass smtp.mailfrom=support+bnc@group.acme.example; dmarc=pass header.from=group.acme.example\r\n")
    return top.encode() + raw


def test_the_verified_alias_the_customer_wrote_to_answers_the_ticket(world):
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", "billing@acme.example", "Refund", Cc="sales@acme.example"))
    sync.poll(services, "help")
    ticket = only_ticket(services)
    assert ticket["reply_from"] == "billing@acme.example"
    assert "billing@acme.example" not in ticket["participants"]
    assert ticket_views.contract_view(ticket_views.ticket_view(ticket))["reply_from"] == "billing@acme.example"
    assert reply_preview(services, ticket)["from"] == "billing@acme.example"


def test_a_pending_alias_does_not_answer_and_an_explicit_send_as_wins(world):
    services, accounts = world
    accounts.deliver(ADDRESS, make_mail("ann@customer.example", "sales@acme.example", "Quote"))
    accounts.deliver(ADDRESS, make_mail("bob@customer.example", "billing@acme.example", "Refund"))
    sync.poll(services, "help")
    by_subject = {t["subject"]: t for t in services.store.list_tickets()}
    assert by_subject["Quote"]["reply_from"] is None
    assert reply_preview(services, by_subject["Quote"])["from"] == ADDRESS
    services.store.update_mailbox("help", {"outgoing.send_as": "help@acme.example"})
    mailbox = services.store.get_mailbox("help")
    assert mailboxes.view(services, mailbox)["outgoing"]["send_as"] == "help@acme.example"
    assert reply_preview(services, by_subject["Refund"])["from"] == ADDRESS


def test_a_group_relay_with_gmails_arc_pass_makes_the_person_the_requester(world):
    services, accounts = world
    accounts.account(ADDRESS)["send_as"].append({"sendAsEmail": GROUP, "verificationStatus": "accepted"})
    accounts.deliver(ADDRESS, group_mail(), authentication="none")
    sync.poll(services, "help")
    ticket = only_ticket(services)
    assert ticket["requester"] == {"email": PERSON, "name": "Jane Doe"}
    assert ticket["via_group"]["address"] == GROUP and ticket["via_group"]["verified"]
    assert GROUP not in ticket["participants"]
    preview = reply_preview(services, ticket)
    assert (preview["from"], preview["to"]) == (GROUP, [PERSON])


@pytest.mark.parametrize("arc, dmarc", [("fail", "pass"), ("pass", "fail"), ("none", "pass")])
def test_a_group_relay_gmail_does_not_vouch_for_keeps_the_group_as_requester(world, arc, dmarc):
    services, accounts = world
    accounts.deliver(ADDRESS, group_mail(arc, dmarc), authentication="none")
    sync.poll(services, "help")
    ticket = only_ticket(services)
    assert ticket["requester"]["email"] == GROUP
    assert ticket["via_group"] == {**ticket["via_group"], "address": GROUP, "verified": False}
    assert PERSON not in ticket["participants"]
    assert [s["email"] for s in ticket["suggested_participants"]] == [PERSON]


def test_a_follow_up_through_the_group_adds_its_cc_for_the_vouched_person_and_never_the_group(world):
    services, accounts = world
    accounts.deliver(ADDRESS, group_mail(), authentication="none")
    sync.poll(services, "help")
    ticket = only_ticket(services)
    follow_up = group_mail(subject="Re: Invoice missing", Cc="colleague@customer.example",
                           In_Reply_To=ticket["message_ids"][0])
    accounts.deliver(ADDRESS, follow_up, authentication="none")
    sync.poll(services, "help")
    ticket = only_ticket(services)
    assert ticket["message_count"] == 2
    assert "colleague@customer.example" in ticket["participants"] and GROUP not in ticket["participants"]


@pytest.mark.parametrize("arc, acknowledged", [("pass", True), ("fail", False)])
def test_a_customer_writing_through_a_support_group_is_acknowledged_only_when_gmail_vouches(world, arc, acknowledged):
    """A support@ Group in front of the mailbox: its list headers are the Group's, not the
    customer's, so the vouched person gets an acknowledgement; an unvouched relay gets none."""
    services, accounts = world
    accounts.deliver(ADDRESS, group_mail(arc), authentication="none")
    sync.poll(services, "help")
    ticket = only_ticket(services)
    record = services.store.get_outbound(f"ack-{ticket['id']}")
    if acknowledged:
        assert record is not None and record["kind"] == "acknowledgement"
        assert ticket["requester"]["email"] == PERSON
    else:
        assert record is None


def test_a_vouched_group_relay_whose_person_asked_for_no_auto_replies_is_not_acknowledged(world):
    services, accounts = world
    accounts.deliver(ADDRESS, group_mail(X_Auto_Response_Suppress="All"), authentication="none")
    sync.poll(services, "help")
    assert services.store.get_outbound(f"ack-{only_ticket(services)['id']}") is None
