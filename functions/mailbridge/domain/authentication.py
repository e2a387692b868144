"""Whether Gmail vouches for the sender of a message: DMARC, SPF and DKIM as Google's MX recorded
them in `Authentication-Results` (RFC 8601), and whether they are aligned with the From domain.

Anyone can write an `Authentication-Results` header into the mail they send, so only the
topmost one counts, and only when its authserv-id is Google's (`mx.google.com`): Google's MX
prepends its own above everything the sender wrote. A message whose topmost header is anybody
else's (or that has none) is unauthenticated: a forged `mx.google.com` header lower down, or on
a message Google did not stamp, counts for nothing (docs/reliability.md, "Hostile senders").

The header is read as RFC 8601 writes it (`_tokens`, one pass, linear): quoted strings with
their escapes, comments (nested, escapes too) and white space; a `;` or `=` inside a quoted
string or a comment never splits anything. Part of a result's values come from the sender (an
`smtp.mailfrom` local part is theirs), so reading them right is what keeps a quoted
`"x; dmarc=pass"@evil.example` a value and not a result. PyPI's `authres` parses the same
grammar, but is unmaintained since 2019, copies the rest of the header for every token
(quadratic) and refuses a whole header over one odd result; this reader is small and lenient
per result instead.

Verdict: "pass" when DMARC passed for the From domain, or, without a DMARC result, when DKIM or
SPF passed for a domain aligned with the From domain (equal, or one a subdomain of the other:
relaxed alignment without the public-suffix list). "fail" when a result is there but none of
that holds; "none" when Google recorded nothing. Two results of one method that disagree count
as "fail" for that method (one pass among fails proves nothing).
"""

from __future__ import annotations

import dataclasses
import re

GOOGLE_AUTHSERV_ID = "mx.google.com"
HEADER = "authentication-results"
METHODS = ("dmarc", "spf", "dkim")
_KEYWORD = re.compile(r"[a-z0-9][a-z0-9_-]*(?:/[0-9]+)?")
_WHITE = " \t\r\n"
_WORD_END = _WHITE + '();="'


@dataclasses.dataclass(frozen=True)
class Authentication:
    dmarc: str = "none"
    spf: str = "none"
    dkim: str = "none"
    aligned: bool = False
    verdict: str = "none"  # "pass" | "fail" | "none"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def record(self) -> dict:
        """What the inbound row keeps ("authentication")."""
        return dataclasses.asdict(self)


NONE = Authentication()


def authenticate(headers: dict[str, list[str]], from_email: str) -> Authentication:
    """Read Google's verdict on `from_email` from a message's headers (lower-case names, top first)."""
    values = headers.get(HEADER) or []
    if not values:
        return NONE
    authserv_id, results = parse(values[0])
    if authserv_id != GOOGLE_AUTHSERV_ID:
        return NONE
    from_domain = (from_email or "").rpartition("@")[2].strip().lower()
    found = {method: "none" for method in METHODS}
    aligned = False
    for method in METHODS:
        own = [(result, domain) for name, result, domain in results if name == method]
        if not own:
            continue
        outcomes = {result for result, _ in own}
        found[method] = outcomes.pop() if len(outcomes) == 1 else "fail"  # results that disagree: a fail
        if found[method] == "pass" and from_domain:
            aligned = aligned or any(_aligned(domain, from_domain) for _, domain in own)
    if found["dmarc"] != "none":
        verdict = "pass" if found["dmarc"] == "pass" and aligned else "fail"
    elif any(found[m] != "none" for m in METHODS):
        verdict = "pass" if aligned else "fail"
    else:
        verdict = "none"
    return Authentication(found["dmarc"], found["spf"], found["dkim"], aligned, verdict)


# The property that names the domain each method vouches for.
_DOMAIN_PROPERTY = {"dmarc": ("header.from",), "dkim": ("header.d", "header.i"), "spf": ("smtp.mailfrom",)}


def parse(value: str) -> tuple[str, list[tuple[str, str, str]]]:
    """(authserv-id, [(method, result, domain)]) of one header value (RFC 8601 §2.2): the
    header split at the `;` outside quotes and comments, each result `method=result` followed
    by `ptype.property=value` pairs. The domain is the one the method vouches for (DMARC's
    header.from, DKIM's header.d or the domain of header.i, SPF's smtp.mailfrom), "" if none.
    A result that does not follow the grammar is left out; the others still count."""
    statements: list[list[tuple[str, str, bool, bool]]] = [[]]
    for token in _tokens(value or ""):
        if token[0] == ";":
            statements.append([])
        else:
            statements[-1].append(token)
    first = statements[0]
    authserv_id = first[0][1].lower() if first and first[0][0] in ("word", "quoted") else ""
    results = []
    for statement in statements[1:]:
        pairs = _pairs(statement)
        if not pairs:
            continue
        method, (result, result_quoted, _) = pairs[0][0].lower(), pairs[0][1]
        result = result.lower()
        if result_quoted or not _KEYWORD.fullmatch(method) or not _KEYWORD.fullmatch(result):
            continue
        method = method.split("/", 1)[0]
        properties = {key.lower(): found for key, found in pairs[1:]}
        domain = next((properties[name][2] for name in _DOMAIN_PROPERTY.get(method, ()) if name in properties), "")
        results.append((method, result, domain))
    return authserv_id, results


def _pairs(statement) -> list[tuple[str, tuple[str, bool, str]]]:
    """[(key, (value, quoted, domain))] of one result's tokens: a key is what stands before a
    "=", its value the tokens that touch each other after it (a quoted local part and its
    "@domain" are one value)."""
    pairs, key, index = [], [], 0
    while index < len(statement):
        kind, text, _glued, _quoted = statement[index]
        index += 1
        if kind != "=":
            key.append(text)
            continue
        if not key or index >= len(statement) or statement[index][0] == "=":
            key = []
            continue
        parts = [statement[index]]
        index += 1
        while index < len(statement) and statement[index][2]:  # glued to the one before
            parts.append(statement[index])
            index += 1
        pairs.append(("".join(key), _value(parts)))
        key = []
    return pairs


def _value(parts) -> tuple[str, bool, str]:
    """(text, quoted, domain): the domain is what follows the last "@" outside quotes, or the
    whole value when it has no "@" and no quotes (header.d=example.com)."""
    text = "".join(part[1] for part in parts)
    quoted = any(part[3] for part in parts)
    plain = [part[1] for part in parts if not part[3]]
    tail = plain[-1] if plain else ""
    if "@" in tail:
        domain = tail.rpartition("@")[2]
    else:
        domain = "" if quoted else text
    return text, quoted, domain.strip().strip(".").lower()


def _tokens(value: str):
    """(kind, text, glued, quoted) tokens of a header value in one pass: kind ";" or "=", or
    "word" / "quoted" (a quoted string, unescaped). glued: nothing (no white space, no comment)
    stands between the token and the one before. Comments are skipped like white space."""
    index, length, glued = 0, len(value), False
    while index < length:
        char = value[index]
        if char in _WHITE or char == ")":  # a stray ")" is read as space
            index, glued = index + 1, False
        elif char == "(":
            index, glued = _skip_comment(value, index), False
        elif char == '"':
            text, index = _quoted(value, index)
            yield "quoted", text, glued, True
            glued = True
        elif char in ";=":
            yield char, char, glued, False
            index, glued = index + 1, char == "="
        else:
            end = index
            while end < length and value[end] not in _WORD_END:
                end += 1
            yield "word", value[index:end], glued, False
            index, glued = end, True


def _skip_comment(value: str, index: int) -> int:
    """The index after the comment opening at `index` (nested, with escapes; an unclosed one
    runs to the end)."""
    depth = 0
    while index < len(value):
        char = value[index]
        if char == "\\":
            index += 2
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    return index


def _quoted(value: str, index: int) -> tuple[str, int]:
    """The unescaped text of the quoted string opening at `index`, and the index after it."""
    out, index = [], index + 1
    while index < len(value):
        char = value[index]
        if char == "\\" and index + 1 < len(value):
            out.append(value[index + 1])
            index += 2
            continue
        if char == '"':
            return "".join(out), index + 1
        out.append(char)
        index += 1
    return "".join(out), index


def _aligned(domain: str, from_domain: str) -> bool:
    domain = domain.strip().strip(".").lower()
    if not domain or not from_domain:
        return False
    return domain == from_domain or from_domain.endswith("." + domain) or domain.endswith("." + from_domain)
