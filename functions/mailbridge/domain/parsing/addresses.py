"""Address headers: split linearly at top-level commas, then each item parsed on its own."""

from __future__ import annotations

import email.utils
import re
from email import policy

from .charsets import decode_words, unescape
from .limits import MAX_ADDRESS_ITEM_CHARS, MAX_RECIPIENTS
from .model import Address, Defects, clean_line


def addresses(values: list[str], name: str, defects: Defects, limit: int = MAX_RECIPIENTS) -> list[Address]:
    found: list[Address] = []
    seen: set[str] = set()
    label = name.title()
    for value in values:
        for item in split_address_list(value):
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
    """Split an address list at top-level commas (quotes, <>, comments and groups respected).

    Parsing items one by one keeps the cost linear; the stdlib parser is superlinear on a
    header with thousands of addresses.
    """
    start = 0
    quoted = escaped = False
    angle = comment = 0
    in_group = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comment += 1
        elif char == ")" and comment:
            comment -= 1
        elif comment:
            continue
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif angle:
            continue
        elif char == ":" and not in_group:
            # "team: a@x, b@y;" — the group's members are listed one by one.
            prefix = value[start:index].strip()
            if prefix and not re.search(r"[@<]", prefix):
                in_group = True
                start = index + 1
        elif char == ";" and in_group:
            item = value[start:index].strip()
            if item:
                yield item
            in_group = False
            start = index + 1
        elif char == ",":
            item = value[start:index].strip()
            if item:
                yield item
            start = index + 1
    item = value[start:].strip().rstrip(";")
    if item:
        yield item


def parse_address_item(name: str, item: str, defects: Defects, label: str) -> list[Address]:
    item = item[:MAX_ADDRESS_ITEM_CHARS]
    parsed: list[tuple[str, str]] = []
    try:
        header = policy.default.header_factory(name, item)
        parsed = [(a.display_name or "", a.addr_spec or "") for a in header.addresses]
        if not parsed:
            raise ValueError("no address")
    except Exception:  # noqa: BLE001 - compat32's parser is more forgiving
        try:
            parsed = [(n, a) for n, a in email.utils.getaddresses([item])]
        except Exception:  # noqa: BLE001
            parsed = []
    addresses = []
    for display_name, addr_spec in parsed:
        address = clean_line(unescape(addr_spec)).strip().strip("<>").lower()[:320]
        if not address:
            continue
        if "@" not in address and name != "from":
            defects.add(f"{label}: address without domain ignored")
            continue
        display = decode_words(display_name, defects, label) if display_name else ""
        addresses.append(Address(email=address, name=display.strip().strip('"').strip()[:200]))
    if not addresses and item.strip():
        defects.add(f"{label}: unreadable address")
    return addresses
