"""Whether Gmail vouches for the sender of a message: DMARC, SPF and DKIM as Google's MX recorded
them in `Authentication-Results` (RFC 8601), and whether they are aligned with the From domain.

Anyone can write an `Authentication-Results` header into the mail they send, so only the
topmost one counts, and only when its authserv-id is Google's (`mx.google.com`): Google's MX
prepends its own above everything the sender wrote. A message whose topmost header is anybody
else's (or that has none) is unauthenticated: a forged `mx.google.com` header lower down, or on
a message Google did not stamp, counts for nothing (docs/reliability.md, "Hostile senders").

Verdict: "pass" when DMARC passed for the From domain, or, without a DMARC result, when DKIM or
SPF passed for a domain aligned with the From domain (equal, or one a subdomain of the other:
relaxed alignment without the public-suffix list). "fail" when a result is there but none of
that holds; "none" when Google recorded nothing.
"""

from __future__ import annotations

import dataclasses
import re

GOOGLE_AUTHSERV_ID = "mx.google.com"
HEADER = "authentication-results"
METHODS = ("dmarc", "spf", "dkim")
_COMMENT = re.compile(r"\([^()]*\)")  # RFC 8601 comments; nested ones are rare and harmless
_RESULT = re.compile(r"^\s*([a-z0-9-]+)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"([a-z0-9-]+\.[a-z0-9-]+)\s*=\s*(\"[^\"]*\"|[^\s;]+)", re.IGNORECASE)


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
    authserv_id, results = _parse(values[0])
    if authserv_id != GOOGLE_AUTHSERV_ID:
        return NONE
    from_domain = (from_email or "").rpartition("@")[2].strip().lower()
    found = {method: "none" for method in METHODS}
    aligned = False
    for method, result, properties in results:
        if method not in METHODS:
            continue
        if found[method] != "pass":  # several DKIM signatures: one that passed is enough
            found[method] = result
        if result != "pass" or not from_domain:
            continue
        if method == "dmarc":
            domain = properties.get("header.from", "")
        elif method == "dkim":
            domain = properties.get("header.d") or properties.get("header.i", "").rpartition("@")[2]
        else:
            domain = (properties.get("smtp.mailfrom") or "").rpartition("@")[2]
        aligned = aligned or _aligned(domain, from_domain)
    if found["dmarc"] != "none":
        verdict = "pass" if found["dmarc"] == "pass" and aligned else "fail"
    elif any(found[m] != "none" for m in METHODS):
        verdict = "pass" if aligned else "fail"
    else:
        verdict = "none"
    return Authentication(found["dmarc"], found["spf"], found["dkim"], aligned, verdict)


def _parse(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """(authserv-id, [(method, result, {ptype.property: value})]) of one header value."""
    text = _COMMENT.sub(" ", value or "")
    parts = text.split(";")
    authserv_id = (parts[0].split() or [""])[0].strip().lower()
    results = []
    for part in parts[1:]:
        match = _RESULT.match(part)
        if not match:
            continue
        method, result, rest = match.group(1).lower(), match.group(2).lower(), match.group(3)
        properties = {name.lower(): raw.strip('"').strip().lower() for name, raw in _PROPERTY.findall(rest)}
        results.append((method, result, properties))
    return authserv_id, results


def _aligned(domain: str, from_domain: str) -> bool:
    domain = domain.strip().strip(".").lower()
    if not domain or not from_domain:
        return False
    return domain == from_domain or from_domain.endswith("." + domain) or domain.endswith("." + from_domain)
