"""Issue 28, pure rules: which ticket a reference means (item 5), who may steer a reply (item 2)
and how a message's verdict is shown (item 4)."""

from mailbridge.domain import threads
from mailbridge.domain import tickets as ticket_views
from mailbridge.services.outgoing.drafts import trusted


def ticket(number, *participants, requester=""):
    return {"id": str(number), "number": number, "participants": list(participants),
            "requester": {"email": requester, "name": ""}}


def test_of_several_holders_the_oldest_by_number_wins_compared_as_numbers():
    assert threads.preferred_holder([ticket(10), ticket(4), ticket(9)]) == "4"


def test_of_several_holders_the_one_the_sender_takes_part_in_wins():
    holders = [ticket(4, "mallory@evil.test"), ticket(10, "dana@customer.example")]
    assert threads.preferred_holder(holders, "Dana@Customer.example") == "10"
    assert threads.preferred_holder(list(reversed(holders)), "nobody@x.example") == "4"
    assert threads.preferred_holder([ticket(7, requester="dana@customer.example"), ticket(3)], "dana@customer.example") == "7"
    assert threads.preferred_holder([]) is None


def test_a_message_id_held_by_another_senders_ticket_cannot_be_claimed():
    assert not threads.claimable_message_id("<q1@x>", [ticket(4, "dana@customer.example")], "mallory@evil.test")
    assert threads.claimable_message_id("<q1@x>", [ticket(4, "dana@customer.example")], "dana@customer.example")
    assert threads.claimable_message_id("<new@x>", [], "mallory@evil.test")
    assert not threads.claimable_message_id("", [], "dana@customer.example")


def test_only_sent_or_authenticated_messages_steer_a_reply():
    assert trusted({"message": {"direction": "out"}})
    assert trusted({"message": {}, "authentication": {"verdict": "pass"}})
    assert not trusted({"message": {}, "authentication": {"verdict": "fail"}})
    assert not trusted({"message": {}})  # stored before verdicts were recorded: nobody vouches for it


def test_the_verdict_view_of_a_message():
    assert ticket_views.authentication_view({"message": {"direction": "out"}}) is None
    assert ticket_views.authentication_view({"message": {}}) == {"verdict": "none", "dmarc": "none", "spf": "none",
                                                                 "dkim": "none"}
    row = {"message": {}, "authentication": {"verdict": "pass", "dmarc": "pass", "spf": "pass", "dkim": "fail",
                                             "aligned": True}}
    assert ticket_views.authentication_view(row) == {"verdict": "pass", "dmarc": "pass", "spf": "pass", "dkim": "fail"}


def test_the_reply_form_warns_until_the_requester_was_authenticated():
    view = {"requester": {"email": "ceo@bank.example"}, "messages": [
        {"direction": "in", "from": {"email": "ceo@bank.example"}, "authentication": {"verdict": "fail"}},
        {"direction": "in", "from": {"email": "x@y.example"}, "authentication": {"verdict": "pass"}}]}
    assert not ticket_views.requester_authenticated(view)
    view["messages"].append({"direction": "in", "from": {"email": "CEO@bank.example"}, "authentication": {"verdict": "pass"}})
    assert ticket_views.requester_authenticated(view)
