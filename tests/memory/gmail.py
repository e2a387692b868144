"""MemoryGmail: the Gmail port over a dict of mailboxes (history, threads, labels, sends)."""

from __future__ import annotations

import itertools
import time
import types
import uuid

from mailbridge.errors import GmailError, HistoryExpired


class MemoryMailboxes:
    """Every fake Gmail account of a test: deliver mail, see what was sent or relabelled."""

    def __init__(self):
        self.accounts: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self.fail_send: list[GmailError] = []
        self.send_calls = 0

    def account(self, address: str) -> dict:
        return self.accounts.setdefault(address.lower(), {
            "messages": {}, "history": [], "history_id": 100, "oldest_history": 100,
            "labels": {"INBOX": {"id": "INBOX", "name": "INBOX", "type": "system"},
                       "UNREAD": {"id": "UNREAD", "name": "UNREAD", "type": "system"},
                       "TRASH": {"id": "TRASH", "name": "TRASH", "type": "system"},
                       "SPAM": {"id": "SPAM", "name": "SPAM", "type": "system"}},
            "sent": [], "watching": None, "send_as": []})

    def deliver(self, address: str, raw: bytes, thread_id: str | None = None, labels=("INBOX", "UNREAD"),
                authentication: str = "pass", internal_date_ms: int | None = None) -> str:
        """Deliver `raw`; like the fake's delivery route, Google's Authentication-Results for the
        From domain goes on top (pass|fail), or nothing (none). A new thread takes the id of its
        first message, as in Gmail; Gmail's receive time (internalDate) is now unless given."""
        if authentication != "none":
            from tests.fakes.control import authentication_results
            from tests.fakes.mime import prepend_header

            raw = prepend_header(raw, "Authentication-Results", authentication_results(raw, authentication))
        box = self.account(address)
        gmail_id = f"m{next(self._ids):05d}"
        box["messages"][gmail_id] = {"raw": raw, "threadId": thread_id or gmail_id,
                                     "labelIds": list(labels), "internalDate": str(internal_date_ms or int(time.time() * 1000))}
        box["history_id"] += 1
        box["history"].append((box["history_id"], gmail_id))
        return gmail_id

    def expire_history(self, address: str) -> None:
        box = self.account(address)
        box["oldest_history"] = box["history_id"] + 1

    def gmail(self, address: str) -> "MemoryGmail":
        return MemoryGmail(self, address)


class MemoryGmail:
    def __init__(self, mailboxes: MemoryMailboxes, address: str):
        self.mailboxes, self.address = mailboxes, address.lower()
        self.box = mailboxes.account(address)
        self.fail_fetch: set[str] = set()  # ids whose messages.get answers 500
        self.fail_send = mailboxes.fail_send  # errors the next sends raise, in order (nothing is sent)
        self.pacer = types.SimpleNamespace(used=0)  # quota units spent (none in memory)
        self.retries = 0

    def profile(self) -> dict:
        return {"emailAddress": self.address, "historyId": str(self.box["history_id"])}

    def new_mail(self, start_history_id: str):
        """As adapters/gmail.py: one history listing split into inbox and spam ids."""
        if int(start_history_id) < self.box["oldest_history"]:
            raise HistoryExpired("history id expired", 404, "notFound")
        added = [(gid, self.box["messages"].get(gid, {}).get("labelIds", [])) for hid, gid in self.box["history"]
                 if hid > int(start_history_id)]
        yield ([gid for gid, labels in added if "INBOX" in labels],
               [gid for gid, labels in added if "SPAM" in labels and "INBOX" not in labels],
               str(self.box["history_id"]), True)

    def list_ids(self, query: str):
        if "rfc822msgid:" in query or "in:sent" in query:
            yield self._search_sent(query)
            return
        label = "SPAM" if "in:spam" in query else "INBOX"
        inbox = [gid for gid, m in self.box["messages"].items() if label in m["labelIds"]]
        yield list(reversed(inbox))  # newest first, like messages.list

    def get_raw_many(self, ids: list[str]) -> dict:
        results = {}
        for gid in ids:
            message = self.box["messages"].get(gid)
            if gid in self.fail_fetch:
                results[gid] = GmailError("messages.get failed: 500 backendError", 500, "backendError")
            elif message is None:
                results[gid] = GmailError("messages.get failed: 404 notFound", 404, "notFound")
            else:
                results[gid] = {k: v for k, v in message.items()}
        return results

    def modify_many(self, ids: list[str], add: list[str], remove: list[str]) -> None:
        for gid in ids:
            if gid not in self.box["messages"]:
                continue  # gone from Gmail meanwhile: skipped, as the adapter does
            labels = self.box["messages"][gid]["labelIds"]
            labels[:] = [label for label in labels if label not in remove] + [a for a in add if a not in labels]

    def labels(self) -> list[dict]:
        return list(self.box["labels"].values())

    def label(self, label_id: str) -> dict:
        if label_id not in self.box["labels"]:
            raise GmailError(f"labels.get failed: 404 {label_id}", 404, "notFound")
        return self.box["labels"][label_id]

    def create_label(self, name: str) -> dict:
        label = {"id": f"Label_{len(self.box['labels'])}", "name": name, "type": "user"}
        self.box["labels"][label["id"]] = label
        return label

    def _search_sent(self, query: str) -> list[str]:
        """The two searches the send path makes: rfc822msgid:ID (any message) and in:sent."""
        import email

        found = []
        wanted = query.split("rfc822msgid:", 1)[1].split()[0].strip("<>") if "rfc822msgid:" in query else None
        pool = [(m["id"], m) for m in self.box["sent"]]
        if wanted is not None:
            pool += list(self.box["messages"].items())
        for gid, message in pool:
            message_id = (email.message_from_bytes(message["raw"]).get("Message-ID") or "").strip().strip("<>")
            if wanted is None or message_id == wanted:
                found.append(gid)
        return list(reversed(found))

    def send_as_list(self) -> list[dict]:
        primary = {"sendAsEmail": self.address, "isPrimary": True, "isDefault": True}
        return [primary] + [dict(alias) for alias in self.box["send_as"]]

    def message_metadata(self, message_id: str, names: list[str]) -> dict | None:
        import email
        from email import policy

        found = next((m for m in self.box["sent"] if m["id"] == message_id), None) or self.box["messages"].get(message_id)
        if found is None:
            return None
        parsed = email.message_from_bytes(found["raw"], policy=policy.compat32)
        return {"id": message_id, "threadId": found.get("threadId"),
                "headers": {name: str(parsed[name]) for name in names if parsed[name] is not None}}

    def send(self, raw: bytes, thread_id: str | None = None) -> dict:
        self.mailboxes.send_calls += 1
        if self.fail_send:
            raise self.fail_send.pop(0)
        gmail_id = f"s{uuid.uuid4().hex[:8]}"
        self.box["sent"].append({"id": gmail_id, "raw": raw, "threadId": thread_id or gmail_id})
        return {"id": gmail_id, "threadId": thread_id or gmail_id}

    def watch(self, topic: str, label_ids=("INBOX",)) -> dict:
        self.box["watching"] = topic
        return {"historyId": str(self.box["history_id"]), "expiration": "1764600000000"}

    def stop(self) -> None:
        self.box["watching"] = None

    def trash(self, message_id: str) -> bool:
        message = self.box["messages"].get(message_id)
        if message is None:
            return False
        message["labelIds"][:] = [label for label in message["labelIds"] if label != "INBOX"] + ["TRASH"]
        return True
