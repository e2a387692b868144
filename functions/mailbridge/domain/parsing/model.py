"""The parsed form of a message and the defect list every step of parsing writes to."""

from __future__ import annotations

import dataclasses
import re

MAX_DEFECTS = 50


@dataclasses.dataclass(frozen=True)
class Address:
    email: str
    name: str = ""


@dataclasses.dataclass
class Attachment:
    filename: str
    content_type: str
    size: int
    content_id: str | None
    sha256: str
    data: bytes = dataclasses.field(repr=False, default=b"")
    inline: bool = False
    omitted: str | None = None


@dataclasses.dataclass
class ParsedMessage:
    subject: str = ""
    from_: Address | None = None
    to: list[Address] = dataclasses.field(default_factory=list)
    cc: list[Address] = dataclasses.field(default_factory=list)
    reply_to: list[Address] = dataclasses.field(default_factory=list)
    date: str | None = None
    message_id: str = ""
    in_reply_to: list[str] = dataclasses.field(default_factory=list)
    references: list[str] = dataclasses.field(default_factory=list)
    text: str = ""
    full_text: str = ""
    html: str | None = None
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    headers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    defects: list[str] = dataclasses.field(default_factory=list)
    size: int = 0
    is_delivery_report: bool = False
    auto_submitted: str | None = None

    def header(self, name: str) -> str | None:
        """First value of a header (case-insensitive), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None


class Defects(list):
    """A defect list that ignores duplicates and stops growing at MAX_DEFECTS."""

    def add(self, text: str) -> None:
        text = clean_line(text)[:300]
        if text in self:
            return
        if len(self) < MAX_DEFECTS:
            self.append(text)
        elif len(self) == MAX_DEFECTS:
            self.append("more defects not recorded")


SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_FOLDING = re.compile(r"\r?\n(?=[ \t])")


def unfold(value: str) -> str:
    return _FOLDING.sub("", value)


def clean_line(value: str) -> str:
    """One line of text: no control characters, no lone surrogates."""
    value = SURROGATES.sub("\ufffd", str(value))
    value = value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\t", " ")
    return _CONTROL.sub("", value).strip()


def clean_text(value: str) -> str:
    return _CONTROL.sub("", SURROGATES.sub("\ufffd", value).replace("\r\n", "\n").replace("\r", "\n"))


def normalize_text(value: str) -> str:
    return clean_text(value).strip()
