"""The fake Gmail account: labels, messages, threads and the history log.

Everything here runs under the server's single state lock (see app.FakeGoogle.lock), so the
classes are plain data structures with no locking of their own.
"""

from __future__ import annotations

import bisect
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .errors import GoogleApiError, bad_request, not_found
from .mime import ParsedMessage, normalize_subject, parse

CATEGORY_LABELS = (
    "CATEGORY_PERSONAL",
    "CATEGORY_SOCIAL",
    "CATEGORY_PROMOTIONS",
    "CATEGORY_UPDATES",
    "CATEGORY_FORUMS",
)
SYSTEM_LABELS = (
    "INBOX", "SENT", "DRAFT", "TRASH", "SPAM", "UNREAD", "STARRED", "IMPORTANT", "CHAT",
) + CATEGORY_LABELS
# System labels shown in the label list with Gmail's visibilities (others carry only id/name/type).
_SYSTEM_VISIBILITY = {
    "INBOX": ("labelShow", "hide"),
    "SENT": ("labelShow", "hide"),
    "DRAFT": ("labelShow", "hide"),
    "TRASH": ("labelHide", "hide"),
    "SPAM": ("labelHide", "hide"),
    "STARRED": ("labelShow", "hide"),
    "IMPORTANT": ("labelShow", "hide"),
}
# Labels a client may not add or remove through modify/insert (Gmail manages them itself).
UNAPPLIABLE_LABELS = frozenset({"SENT", "DRAFT", "CHAT"})
# Names a user label may not take (case-insensitive): the system names and Gmail's folders.
RESERVED_LABEL_NAMES = frozenset(
    name.casefold() for name in SYSTEM_LABELS + ("DRAFTS", "ALL MAIL", "CHATS", "MUTED", "OUTBOX",
                                                 "SCHEDULED", "SNOOZED", "ALL", "NONE")
)
HISTORY_TYPES = ("messageAdded", "messageDeleted", "labelAdded", "labelRemoved")

# Gmail ids are 16 hex digits; a process-wide counter keeps them unique even across resets so
# a test holding a stale id never sees it reused for another message.
_message_numbers = itertools.count(0x18F3A00000000000)
_MESSAGE_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")


def new_message_id() -> str:
    return format(next(_message_numbers), "x")


def valid_message_id(value: str) -> bool:
    return bool(_MESSAGE_ID_PATTERN.match(value or ""))


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class StoredMessage:
    id: str
    thread_id: str
    raw: bytes
    parsed: ParsedMessage
    label_ids: list[str]
    internal_date: int
    history_id: int


@dataclass(frozen=True)
class HistoryRecord:
    id: int
    kind: str  # one of HISTORY_TYPES
    message_id: str
    thread_id: str
    label_ids: tuple[str, ...]  # the message's labels right after the change
    changed_labels: tuple[str, ...] = ()  # for labelAdded / labelRemoved

    def touches_label(self, label_id: str) -> bool:
        return label_id in self.label_ids or label_id in self.changed_labels


@dataclass
class Watch:
    topic_name: str
    label_ids: tuple[str, ...]
    include: bool  # labelFilterBehavior include (default) or exclude
    expiration_ms: int

    def wants(self, record: HistoryRecord, labels_before: Iterable[str]) -> bool:
        if now_ms() >= self.expiration_ms:
            return False
        if not self.label_ids:
            return True
        touched = set(record.label_ids) | set(labels_before) | set(record.changed_labels)
        hit = bool(touched & set(self.label_ids))
        return hit if self.include else not hit


class Mailbox:
    """One Gmail account of the fake."""

    def __init__(self, email: str, name: str, history_base: int,
                 on_history: Callable[["Mailbox", HistoryRecord, tuple], None] | None = None):
        self.email = email
        self.name = name
        self.labels: dict[str, dict[str, Any]] = {}
        for label_id in SYSTEM_LABELS:
            label: dict[str, Any] = {"id": label_id, "name": label_id, "type": "system"}
            if label_id in _SYSTEM_VISIBILITY:
                label_list, message_list = _SYSTEM_VISIBILITY[label_id]
                label["labelListVisibility"] = label_list
                label["messageListVisibility"] = message_list
            self.labels[label_id] = label
        self._next_label_number = 1
        self.messages: dict[str, StoredMessage] = {}
        self.threads: dict[str, list[str]] = {}
        self._by_rfc_message_id: dict[str, list[str]] = {}
        self.history: list[HistoryRecord] = []
        self._history_ids: list[int] = []  # parallel to history, for bisect
        self.history_id = history_base
        self.history_floor = 0  # startHistoryId below this answers 404 (expired)
        self.sent_ids: list[str] = []
        self.watch: Watch | None = None
        self._on_history = on_history
        # The Workspace domain ("hd") of id_tokens: derived from the address unless set.
        self.hd_set = False
        self.hd: str | None = None
        # Custom "from" aliases (settings.sendAs), keyed by lower-cased address.
        self.send_as: dict[str, dict[str, Any]] = {}

    # ----- send-as aliases --------------------------------------------------------------------

    def send_as_list(self) -> list[dict[str, Any]]:
        primary = {"sendAsEmail": self.email, "displayName": self.name, "replyToAddress": "",
                   "signature": "", "isPrimary": True, "isDefault": True}
        return [primary] + [dict(alias) for alias in self.send_as.values()]

    def send_as_get(self, address: str) -> dict[str, Any]:
        for alias in self.send_as_list():
            if alias["sendAsEmail"].lower() == address.lower():
                return alias
        raise not_found()

    def add_send_as(self, address: str, status: str, display_name: str = "") -> dict[str, Any]:
        alias = {"sendAsEmail": address, "displayName": display_name, "replyToAddress": "",
                 "signature": "", "isPrimary": False, "isDefault": False, "treatAsAlias": True,
                 "verificationStatus": status}
        self.send_as[address.lower()] = alias
        return dict(alias)

    def may_send_as(self, address: str) -> bool:
        """The primary address or an alias whose verification was accepted."""
        alias = self.send_as.get(address.lower())
        return address.lower() == self.email or (
            alias is not None and alias["verificationStatus"] == "accepted")

    # ----- labels -----------------------------------------------------------------------------

    def label(self, label_id: str) -> dict[str, Any]:
        label = self.labels.get(label_id)
        if label is None:
            raise not_found()
        return label

    def label_by_name(self, name: str) -> dict[str, Any] | None:
        wanted = name.casefold()
        for label in self.labels.values():
            if label["name"].casefold() == wanted:
                return label
        return None

    def _check_label_name(self, name: Any, exclude_id: str | None = None) -> str:
        if not isinstance(name, str) or not name.strip():
            raise bad_request("Invalid label name")
        name = name.strip()
        if name.casefold() in RESERVED_LABEL_NAMES or name.upper().startswith("CATEGORY_"):
            raise bad_request("Invalid label name")
        existing = self.label_by_name(name)
        if existing is not None and existing["id"] != exclude_id:
            raise GoogleApiError(409, "Label name exists or conflicts", reason="duplicate")
        return name

    def create_label(self, body: dict[str, Any]) -> dict[str, Any]:
        name = self._check_label_name(body.get("name"))
        label_id = f"Label_{self._next_label_number}"
        self._next_label_number += 1
        label = {
            "id": label_id,
            "name": name,
            "messageListVisibility": body.get("messageListVisibility", "show"),
            "labelListVisibility": body.get("labelListVisibility", "labelShow"),
            "type": "user",
        }
        if body.get("color"):
            label["color"] = dict(body["color"])
        self.labels[label_id] = label
        return label

    def update_label(self, label_id: str, body: dict[str, Any], partial: bool) -> dict[str, Any]:
        label = self.label(label_id)
        if label["type"] == "system":
            raise bad_request("Invalid update request")
        if "name" in body or not partial:
            label["name"] = self._check_label_name(body.get("name"), exclude_id=label_id)
        for key in ("messageListVisibility", "labelListVisibility", "color"):
            if key in body:
                label[key] = body[key]
            elif not partial and key == "color":
                label.pop("color", None)
        return label

    def delete_label(self, label_id: str) -> None:
        label = self.label(label_id)
        if label["type"] == "system":
            raise bad_request("Invalid delete request")
        del self.labels[label_id]
        for message in self.messages.values():
            if label_id in message.label_ids:
                message.label_ids.remove(label_id)

    def label_counts(self, label_id: str) -> dict[str, int]:
        messages = [m for m in self.messages.values() if label_id in m.label_ids]
        unread = [m for m in messages if "UNREAD" in m.label_ids]
        return {
            "messagesTotal": len(messages),
            "messagesUnread": len(unread),
            "threadsTotal": len({m.thread_id for m in messages}),
            "threadsUnread": len({m.thread_id for m in unread}),
        }

    def check_label_ids(self, label_ids: Iterable[str], applying: bool = True) -> list[str]:
        """Validate label ids a client wants to set; keeps order, drops duplicates."""
        checked: list[str] = []
        for label_id in label_ids:
            if label_id not in self.labels:
                raise bad_request(f"Invalid label: {label_id}")
            if applying and label_id in UNAPPLIABLE_LABELS:
                raise bad_request(f"Invalid label: {label_id}")
            if label_id not in checked:
                checked.append(label_id)
        return checked

    # ----- messages ---------------------------------------------------------------------------

    def message(self, message_id: str) -> StoredMessage:
        if not valid_message_id(message_id):
            raise bad_request("Invalid id value")
        message = self.messages.get(message_id)
        if message is None:
            raise not_found()
        return message

    def find_thread(self, parsed: ParsedMessage) -> str | None:
        """Gmail's rule: a referenced message of this account with the same normalized subject."""
        subject = normalize_subject(parsed.subject)
        for reference in list(reversed(parsed.in_reply_to)) + list(reversed(parsed.references)):
            for candidate_id in self._by_rfc_message_id.get(reference, []):
                candidate = self.messages.get(candidate_id)
                if candidate and normalize_subject(candidate.parsed.subject) == subject:
                    return candidate.thread_id
        return None

    def thread_accepts(self, thread_id: str, parsed: ParsedMessage) -> bool:
        """The discovery document's rule for joining `thread_id` on send: References or
        In-Reply-To set, and the Subject matching the thread's (prefixes stripped)."""
        members = sorted((self.messages[i] for i in self.threads.get(thread_id, [])),
                         key=lambda m: (m.internal_date, m.id))
        if not members or not (parsed.in_reply_to or parsed.references):
            return False
        return normalize_subject(parsed.subject) == normalize_subject(members[0].parsed.subject)

    def delete_thread(self, thread_id: str) -> list[str]:
        """Remove a thread and all its messages, as after TRASH is emptied."""
        ids = list(self.threads.get(thread_id, []))
        if not ids:
            raise not_found()
        for message_id in ids:
            self.delete_message(self.messages[message_id])
        return ids

    def add_message(
        self,
        raw: bytes,
        label_ids: list[str],
        internal_date: int | None = None,
        thread_id: str | None = None,
        parsed: ParsedMessage | None = None,
        auto_thread: bool = True,
    ) -> StoredMessage:
        """Store a message; without `thread_id` it joins the thread of a referenced message with
        the same subject (auto_thread, as delivery does) or starts its own."""
        parsed = parsed or parse(raw)
        if thread_id is not None and thread_id not in self.threads:
            raise not_found()
        message_id = new_message_id()
        found = self.find_thread(parsed) if auto_thread and not thread_id else None
        thread_id = thread_id or found or message_id
        message = StoredMessage(
            id=message_id,
            thread_id=thread_id,
            raw=raw,
            parsed=parsed,
            label_ids=list(label_ids),
            internal_date=internal_date if internal_date is not None else now_ms(),
            history_id=0,
        )
        self.messages[message_id] = message
        self.threads.setdefault(thread_id, []).append(message_id)
        if parsed.message_id:
            self._by_rfc_message_id.setdefault(parsed.message_id, []).append(message_id)
        self._record("messageAdded", message, labels_before=())
        return message

    def modify(self, message: StoredMessage, add: Iterable[str], remove: Iterable[str]) -> None:
        before = tuple(message.label_ids)
        added = [label for label in add if label not in message.label_ids]
        removed = [label for label in remove if label in message.label_ids and label not in added]
        message.label_ids.extend(added)
        for label in removed:
            message.label_ids.remove(label)
        if added:
            self._record("labelAdded", message, labels_before=before, changed=tuple(added))
        if removed:
            self._record("labelRemoved", message, labels_before=before, changed=tuple(removed))

    def delete_message(self, message: StoredMessage) -> None:
        del self.messages[message.id]
        thread = self.threads.get(message.thread_id, [])
        if message.id in thread:
            thread.remove(message.id)
        if not thread:
            self.threads.pop(message.thread_id, None)
        if message.parsed.message_id:
            ids = self._by_rfc_message_id.get(message.parsed.message_id, [])
            if message.id in ids:
                ids.remove(message.id)
        if message.id in self.sent_ids:
            self.sent_ids.remove(message.id)
        self._record("messageDeleted", message, labels_before=tuple(message.label_ids))

    def newest_first(self) -> list[StoredMessage]:
        return sorted(self.messages.values(), key=lambda m: (m.internal_date, m.id), reverse=True)

    # ----- history ----------------------------------------------------------------------------

    def _record(self, kind: str, message: StoredMessage, labels_before: tuple,
                changed: tuple[str, ...] = ()) -> None:
        self.history_id += 1
        record = HistoryRecord(
            id=self.history_id,
            kind=kind,
            message_id=message.id,
            thread_id=message.thread_id,
            label_ids=tuple(message.label_ids),
            changed_labels=changed,
        )
        message.history_id = self.history_id
        self.history.append(record)
        self._history_ids.append(record.id)
        if self._on_history is not None:
            self._on_history(self, record, labels_before)

    def expire_history(self) -> int:
        """Every startHistoryId older than the current one now answers 404, as after a week."""
        self.history_floor = self.history_id
        return self.history_id

    def history_after(self, start_history_id: int) -> list[HistoryRecord]:
        if start_history_id < self.history_floor:
            raise not_found()
        index = bisect.bisect_right(self._history_ids, start_history_id)
        return self.history[index:]

    # ----- profile ----------------------------------------------------------------------------

    def profile(self) -> dict[str, Any]:
        return {
            "emailAddress": self.email,
            "messagesTotal": len(self.messages),
            "threadsTotal": len(self.threads),
            "historyId": str(self.history_id),
        }
