"""Field-by-field reading of the real-world corpus by mailbridge, by the bare stdlib and by
mail-parser (PyPI), against the hand-checked manifest; prints the table of docs/parsing.md.

    PYTHONPATH=functions:. .venv/bin/python -m tests.realworld.compare   # mail-parser importable

The test (tests/integration/test_realworld_corpus.py) uses only `mailbridge_fields` and `agrees`.
"""

from __future__ import annotations

import email
import json
import re
import sys
from email import policy
from pathlib import Path

MANIFEST = Path(__file__).with_name("manifest.json")
FIELDS = ("sender", "subject", "body", "attachments")
# Names mailbridge gives parts that have none; they are not declared attachment names.
_GENERATED = re.compile(r"^(attachment-\d+\.[\w-]+|message\.eml|delivery-status\.txt|headers\.txt)$")
_SPACE = re.compile(r"\s+")


def squash(text: str) -> str:
    return _SPACE.sub(" ", text or "").strip()


def mailbridge_fields(raw: bytes) -> dict:
    from mailbridge.domain.parsing import parse_message

    parsed = parse_message(raw)
    return {
        "sender": parsed.from_.email if parsed.from_ else "",
        "subject": parsed.subject,
        "body": parsed.text,
        "attachments": sorted(a.filename for a in parsed.attachments if not _GENERATED.match(a.filename)),
    }


def stdlib_fields(raw: bytes) -> dict:
    fields = {"sender": "", "subject": "", "body": "", "attachments": []}
    try:
        message = email.message_from_bytes(raw, policy=policy.default)
    except Exception:  # noqa: BLE001
        return fields
    try:
        fields["sender"] = message["from"].addresses[0].addr_spec.lower()
    except Exception:  # noqa: BLE001
        pass
    try:
        fields["subject"] = str(message["subject"] or "")
    except Exception:  # noqa: BLE001
        pass
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        fields["body"] = body.get_content() if body is not None else ""
    except Exception:  # noqa: BLE001
        pass
    try:
        fields["attachments"] = sorted(str(part.get_filename()) for part in message.iter_attachments()
                                       if part.get_filename())
    except Exception:  # noqa: BLE001
        pass
    return fields


def mailparser_fields(raw: bytes) -> dict:
    import mailparser

    fields = {"sender": "", "subject": "", "body": "", "attachments": []}
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception:  # noqa: BLE001
        return fields
    try:
        fields["sender"] = (mail.from_[0][1] or "").lower() if mail.from_ else ""
    except Exception:  # noqa: BLE001
        pass
    try:
        fields["subject"] = mail.subject or ""
    except Exception:  # noqa: BLE001
        pass
    try:
        fields["body"] = "\n".join(mail.text_plain) or re.sub(r"<[^>]*>", " ", "\n".join(mail.text_html))
    except Exception:  # noqa: BLE001
        pass
    try:
        fields["attachments"] = sorted(a["filename"] for a in mail.attachments if a.get("filename"))
    except Exception:  # noqa: BLE001
        pass
    return fields


def agrees(field: str, expected, got) -> bool:
    if field == "sender":
        return (got or "").strip().lower() == expected
    if field == "subject":
        return squash(got) == squash(expected)
    if field == "body":
        return squash(expected) in squash(got)
    return sorted(got) == sorted(expected)


def load_manifest() -> dict:
    """`package/path` → expected fields (the manifest's "messages")."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))["messages"]


def table(corpus: dict[str, bytes], manifest: dict, readers: dict | None = None) -> str:
    readers = readers or {"mailbridge": mailbridge_fields, "stdlib": stdlib_fields, "mail-parser 4.8.0": mailparser_fields}
    counts = {name: dict.fromkeys(FIELDS, 0) for name in readers}
    for key, expected in manifest.items():
        raw = corpus[key]
        for name, reader in readers.items():
            got = reader(raw)
            for field in FIELDS:
                counts[name][field] += agrees(field, expected[field], got[field])
    total = len(manifest)
    lines = ["| reader | " + " | ".join(FIELDS) + " |", "| --- |" + " --- |" * len(FIELDS)]
    for name, by_field in counts.items():
        cells = [f"{by_field[field]}/{total} ({100 * by_field[field] / total:.0f}%)" for field in FIELDS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    from tests.realworld import sources

    print(table(sources.load(), load_manifest()))
    sys.exit(0)
