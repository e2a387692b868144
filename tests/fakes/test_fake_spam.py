"""The fake's Spam delivery (issue 30, docs/gmail-differences.md "Spam"): a message Gmail files
as spam is in Spam only, hidden from lists unless asked for, and its history record is a
messageAdded carrying SPAM, which a history.list filtered on INBOX never shows; moving it out of
Spam writes label records, not a second messageAdded."""

import pytest
import requests

from tests.fakes.test_fake_google import (ACCOUNT, fake, oauthlib_over_http, rfc822, scene,  # noqa: F401
                                         service)


def test_spam_delivery_writes_a_message_added_record_with_the_spam_label(scene, service):
    start = service.users().getProfile(userId="me").execute()["historyId"]
    delivered = scene.deliver(ACCOUNT, rfc822("Re: your invoice"), "SPAM,UNREAD")
    history = service.users().history()
    unfiltered = history.list(userId="me", startHistoryId=start, historyTypes=["messageAdded"]).execute()
    inbox = history.list(userId="me", startHistoryId=start, historyTypes=["messageAdded"], labelId="INBOX").execute()
    spam = history.list(userId="me", startHistoryId=start, historyTypes=["messageAdded"], labelId="SPAM").execute()
    (record,) = unfiltered["history"]
    assert record["messagesAdded"][0]["message"]["labelIds"] == ["SPAM", "UNREAD"]
    assert "history" not in inbox
    assert spam["history"][0]["messagesAdded"][0]["message"]["id"] == delivered["id"]
    assert service.users().messages().list(userId="me").execute().get("messages") is None
    listed = service.users().messages().list(userId="me", labelIds=["SPAM"]).execute()["messages"]
    assert [m["id"] for m in listed] == [delivered["id"]]


def test_moving_a_message_out_of_spam_adds_label_records_only(scene, service):
    delivered = scene.deliver(ACCOUNT, rfc822("Re: your invoice"), "SPAM,UNREAD")
    service.users().messages().modify(userId="me", id=delivered["id"], body={
        "addLabelIds": ["INBOX"], "removeLabelIds": ["SPAM"]}).execute()
    history = service.users().history().list(userId="me", startHistoryId=delivered["historyId"]).execute()
    kinds = [next(k for k in record if k not in ("id", "messages")) for record in history["history"]]
    assert kinds == ["labelsAdded", "labelsRemoved"]


def test_a_delivery_to_spam_and_the_inbox_at_once_is_refused(scene):
    response = requests.post(scene.url + f"/_fake/users/{ACCOUNT}/messages", params={"labelIds": "SPAM,INBOX"},
                             data=rfc822("both"), timeout=10)
    assert response.status_code == 400
    assert "SPAM" in response.json()["error"]
