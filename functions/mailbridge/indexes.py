"""Composite Firestore indexes the store's queries need (terraform/firestore.tf declares them;
tests/unit/test_terraform.py checks both agree). Equality-only queries need none."""

COMPOSITE_INDEXES = [
    {"collection": "tickets", "fields": [("mailbox", "ASCENDING"), ("number", "DESCENDING")]},
    {"collection": "tickets", "fields": [("status", "ASCENDING"), ("number", "DESCENDING")]},
    {"collection": "tickets", "fields": [("mailbox", "ASCENDING"), ("status", "ASCENDING"), ("number", "DESCENDING")]},
    {"collection": "inbound", "fields": [("mailbox", "ASCENDING"), ("processed_at", "DESCENDING")]},
]
