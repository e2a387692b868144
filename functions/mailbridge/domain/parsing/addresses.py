"""Address headers: split linearly at top-level commas, then each item parsed on its own."""

from __future__ import annotations

import dataclasses
import email.utils
import re
from email import policy

from .charsets import decode_words, unescape
from .limits import MAX_ADDRESS_ITEM_CHARS, MAX_RECIPIENTS
from .model import Address, Defects, clean_line

# Items read per header, readable or not: junk items never count towards MAX_RECIPIENTS.
MAX_ADDRESS_ITEMS = 2 * MAX_RECIPIENTS
_ENCODED_WORD = re.compile(r"=\?[^?\s]{1,75}\?[bBqQ]\?[^?\s]{0,998}\?=")
# An addr-spec as mail really has it: no white space or list punctuation, one "@" (a dot at
# the end of the domain is removed afterwards).
_ARCHIVED = re.compile(r"[^\s@<>()]{1,64} at [a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){1,5}", re.IGNORECASE)
_ADDR_SPEC = re.compile(r'[^\s<>"(),;:\\@]+@[^\s<>"(),;:\\@]+')


def addresses(values: list[str], name: str, defects: Defects, limit: int = MAX_RECIPIENTS) -> list[Address]:
    found: list[Address] = []
    seen: set[str] = set()
    label = name.title()
    tried = 0
    for value in values:
        for item in split_address_list(value):
            tried += 1
            if tried > MAX_ADDRESS_ITEMS:
                defects.add(f"more than {MAX_ADDRESS_ITEMS} {label} items; the rest were not read")
                return found
            for address in parse_address_item(name, item, defects, label):
                if address.email in seen:
                    continue
                if len(found) >= limit:
                    if limit > 1:
                        defects.add(f"more than {limit} {label} addresses; kept the first {limit}")
                    return found
                seen.add(address.email)
                found.append(address)
    return found


def split_address_list(value: str):
    """Split an address list at top-level commas (quotes, <>, comments, groups and encoded
    words respected: `=?iso-8859-1?Q?B=FCrling,=20Andreas?=` is one display name).

    One pass over the value: parsing items one by one keeps the cost linear, where the stdlib
    parser is superlinear on a header with thousands of addresses.
    """
    scan = _ListScan()
    index, length = 0, len(value)
    while index < length:
        char = value[index]
        if char not in _LIST_SPECIALS:
            scan.escaped = False  # all an ordinary character can change
        elif not scan.quoting(char):
            word = _ENCODED_WORD.match(value, index) if char == "=" and value.startswith("=?", index) else None
            if word:
                index = word.end()
                continue
            item = scan.delimit(value, index, char)
            if item:
                yield item
        index += 1
    item = value[scan.start :].strip().rstrip(";")
    if item:
        yield item


# The characters that can change where split_address_list stands.
_LIST_SPECIALS = frozenset('\\"()=<>@:;,')


@dataclasses.dataclass
class _ListScan:
    """Where split_address_list's one pass stands."""

    start: int = 0  # where the current item began
    quoted: bool = False
    escaped: bool = False
    angle: int = 0
    comment: int = 0
    in_group: bool = False
    address_seen: bool = False  # an "@" or "<" since the item began: then a ":" starts no group

    def quoting(self, char: str) -> bool:
        """Escapes, quoted strings and comments: True when `char` belongs to them."""
        if self.escaped:
            self.escaped = False
        elif char == "\\":
            self.escaped = True
        elif self.quoted:
            self.quoted = char != '"'
        elif char == '"':
            self.quoted = True
        elif char == "(":
            self.comment += 1
        elif char == ")" and self.comment:
            self.comment -= 1
        else:
            return self.comment > 0
        return True

    def delimit(self, value: str, index: int, char: str) -> str | None:
        """Angle brackets, groups and commas: the item that `char` ends, if it ends one."""
        if char == "<":
            self.angle += 1
            self.address_seen = True
        elif char == ">" and self.angle:
            self.angle -= 1
        elif self.angle:
            pass
        elif char == "@":
            self.address_seen = True
        elif char == ":" and not self.in_group and not self.address_seen:
            # "team: a@x, b@y;" — the group's members are listed one by one.
            if value[self.start : index].strip():
                self.in_group = True
                self.start = index + 1
        elif char == ";" and self.in_group or char == ",":
            item = value[self.start : index].strip()
            self.start = index + 1
            self.address_seen = False
            self.in_group = self.in_group and char == ","
            return item
        return None


def parse_address_item(name: str, item: str, defects: Defects, label: str) -> list[Address]:
    item = item[:MAX_ADDRESS_ITEM_CHARS]
    parsed = _common_form(item)
    if parsed is None:
        parsed = _stdlib_form(name, item)
    elif " at " in item and "@" not in item and parsed:
        defects.add(f"{label}: address written as 'user at host' read as {parsed[0][1][:80]}")
    addresses = []
    for display_name, addr_spec in parsed:
        address = clean_line(unescape(addr_spec)).strip().strip("<>").lower()[:320]
        if not address:
            continue
        if address.endswith(".") and "@" in address:
            address = address.rstrip(".")
            defects.add(f"{label}: trailing dot removed from the domain of {address}")
        if not has_domain(address):
            if name != "from":
                defects.add(f"{label}: address without domain ignored")
                continue
            if any(char.isspace() or char == '"' for char in address):
                defects.add(f"From: {address[:80]!r} is a name without an address")
                continue
            defects.add(f"From: {address[:80]!r} is not an address with a domain")
        display = decode_words(display_name, defects, label) if display_name else ""
        addresses.append(Address(email=address, name=display.strip().strip('"').strip()[:200]))
    if not addresses and item.strip():
        defects.add(f"{label}: unreadable address")
    return addresses


def has_domain(address: str) -> bool:
    """True for `local@domain` with both parts present and no white space."""
    local, at, domain = address.rpartition("@")
    return bool(at and local and domain) and not any(ch.isspace() for ch in domain)


def _common_form(item: str) -> list[tuple[str, str]] | None:
    """`Name <a@b>`, `"Name" <a@b>`, `a@b (Name)` and `a@b` read by hand, in linear time;
    None for anything else (the stdlib's parser then reads it). Display names may hold what
    RFC 5322 reserves (`Max Kohl | [example.com] <kohl@example.com>`), as real mailers write."""
    item = item.strip()
    if item.endswith(">"):
        opening = item.rfind("<")
        if opening < 0 or "<" in item[:opening] or ">" in item[:opening]:
            return None
        name = item[:opening].strip()
        address = item[opening + 1 : -1].strip()
        if "(" in name or ")" in name:
            return None
        if '"' in name:
            if not (len(name) >= 2 and name[0] == name[-1] == '"' and '"' not in name[1:-1].replace('\\"', "")):
                return None
            name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    elif item.endswith(")"):
        opening = item.find("(")
        if opening < 0:
            return None
        address, name = item[:opening].strip(), item[opening + 1 : -1].strip()
        if "(" in name or ")" in name:
            return None
    else:
        address, name = item, ""
    if " at " in address and _ARCHIVED.fullmatch(address):
        address = address.replace(" at ", "@")  # list archives (pipermail) write "user at host"
    return [(name, address)] if _ADDR_SPEC.fullmatch(address) else None


def _stdlib_form(name: str, item: str) -> list[tuple[str, str]]:
    try:
        header = policy.default.header_factory(name, item)
        parsed = [(a.display_name or "", a.addr_spec or "") for a in header.addresses]
        if parsed:
            return parsed
    except Exception:  # noqa: BLE001 - compat32's parser is more forgiving
        pass
    try:
        return [(n, a) for n, a in email.utils.getaddresses([item])]
    except Exception:  # noqa: BLE001
        return []
