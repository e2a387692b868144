"""Gmail labels as rules: which labels may be used for what, the forms an admin may type a label
in (id, UI id `^x_N`, system name, display name), and which labels processing adds or removes."""

from __future__ import annotations

import re

from mailbridge.errors import InvalidInput

NOT_FOR_DELETION = {"INBOX": "processed mail would stay in the inbox; pick the label it should move to"}
UNAPPLIABLE = {"SENT": "Gmail sets SENT itself; it cannot be applied",
               "DRAFT": "DRAFT marks drafts; it cannot be applied to received mail",
               "CHAT": "CHAT belongs to chat history; it cannot be applied"}
SYSTEM_IDS = {"INBOX", "SENT", "DRAFT", "TRASH", "SPAM", "UNREAD", "STARRED", "IMPORTANT", "CHAT",
              "CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS", "CATEGORY_UPDATES", "CATEGORY_FORUMS"}
USER_ID = re.compile(r"^Label_\d+$")
UI_ID = re.compile(r"^\^x_(\d+)$")
DEFAULT_PROCESSED_LABEL = "mailbridge/processed"
TRASH_WARNING = "TRASH empties itself after 30 days: processed mail will then be gone from Gmail"


def label_view(label: dict) -> dict:
    return {"id": label["id"], "name": label.get("name", label["id"]), "type": label.get("type", "user"),
            "visibility": label.get("labelListVisibility", "labelShow"),
            "message_visibility": label.get("messageListVisibility", "show"),
            "appliable": label["id"] not in UNAPPLIABLE}


def normalize_label_input(value: str) -> tuple[str, str]:
    """Return (kind, candidate id or name): kind is 'id' or 'name'."""
    value = (value or "").strip()
    if not value:
        raise InvalidInput("label is empty")
    match = UI_ID.match(value)
    if match:
        return "id", f"Label_{match.group(1)}"
    if USER_ID.match(value):
        return "id", value
    if value.upper() in SYSTEM_IDS:
        return "id", value.upper()
    return "name", value


def label_changes(incoming: dict) -> tuple[list[str], list[str]]:
    action = incoming.get("after_processing", "mark_read")
    add, remove = [], []
    if action == "mark_read":
        remove = ["UNREAD"]
    elif action == "archive":
        remove = ["INBOX"]
    elif action == "delete":
        label = incoming.get("deletion_label")
        if label:
            add = [label]
            remove = ["INBOX"] + (["UNREAD"] if incoming.get("remove_unread_on_delete", True) else [])
    return add, remove
