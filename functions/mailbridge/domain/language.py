"""Which acknowledgement template answers a customer (docs/outbox.md, "Acknowledgements in the
customer's language"): templates per BCP 47 tag (`outgoing.acknowledgement_templates`), chosen
from the message's Content-Language, else from the language of its text, else the mailbox's
single default template.

Detection uses CLD2 (PyPI `pycld2`, pinned in functions/requirements.txt): its model is compiled
into the package, nothing is downloaded, and it is imported on the first detection only (a cold
start that acknowledges nothing never loads it).
"""

from __future__ import annotations

import dataclasses
import json
import re
import string

from mailbridge.errors import InvalidInput

FIELDS = {"tag", "number", "subject"}
MAX_TEMPLATES = 50
MAX_TEMPLATE_CHARS = 5000
DETECTED_CHARS = 4000  # the start of the text says its language; the rest only costs time
TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}$")


@dataclasses.dataclass(frozen=True)
class Choice:
    template: str | None  # None: the mailbox's default template
    language: str | None  # the template's tag as configured, None for the default
    source: str  # "content-language", "detected" or "default"


def parse_templates(raw) -> dict[str, str]:
    """`outgoing.acknowledgement_templates` from the CLI's JSON text (or a dict): tag -> template,
    each template using only {tag}, {number} and {subject}. InvalidInput names what is wrong."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            raise InvalidInput(f"acknowledgement_templates must be a JSON object, e.g. "
                               f"'{{\"de\": \"…\", \"en\": \"…\"}}' ({e.msg})") from None
    if not isinstance(raw, dict):
        raise InvalidInput("acknowledgement_templates must be a JSON object of language tag -> template")
    if len(raw) > MAX_TEMPLATES:
        raise InvalidInput(f"acknowledgement_templates: at most {MAX_TEMPLATES} languages")
    templates: dict[str, str] = {}
    for tag, template in raw.items():
        if not isinstance(tag, str) or not TAG.match(tag):
            raise InvalidInput(f"acknowledgement_templates: {tag!r} is not a BCP 47 language tag such as de or pt-BR")
        if not isinstance(template, str) or not template.strip() or len(template) > MAX_TEMPLATE_CHARS:
            raise InvalidInput(f"acknowledgement_templates[{tag!r}] must be text of 1-{MAX_TEMPLATE_CHARS} characters")
        check_fields(tag, template)
        templates[tag] = template
    return templates


def check_fields(tag: str, template: str) -> None:
    try:
        names = {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise InvalidInput(f"acknowledgement_templates[{tag!r}]: {e} (write {{{{ for a literal brace)") from None
    unknown = sorted(names - FIELDS)
    if unknown:
        raise InvalidInput(f"acknowledgement_templates[{tag!r}]: unknown field {{{unknown[0]}}}; "
                           f"use {{tag}}, {{number}}, {{subject}}")


def declared(content_language: str | None) -> list[str]:
    """The tags of a Content-Language header (RFC 3282), in order."""
    tags = [part.strip() for part in re.split(r"[,\s]+", content_language or "")]
    return [tag for tag in tags if TAG.match(tag)][:10]


def _primary(tag: str) -> str:
    return tag.split("-", 1)[0].lower()


def match(templates: dict[str, str], tag: str) -> str | None:
    """The configured tag that serves `tag`: the same tag (any case), else one of the same
    primary language ("de-AT" gets "de", "de" gets "de-DE")."""
    by_lower = {key.lower(): key for key in templates}
    if tag.lower() in by_lower:
        return by_lower[tag.lower()]
    primary = _primary(tag)
    if primary in by_lower:
        return by_lower[primary]
    return next((key for key in templates if _primary(key) == primary), None)


def detect(text: str) -> str | None:
    """The language of `text` as CLD2 names it ("de", "pt", "zh-Hant"), None when unsure."""
    sample = (text or "").strip()[:DETECTED_CHARS]
    if len(sample) < 3:
        return None
    import pycld2  # lazy: the detector's tables load on first use

    try:
        reliable, _bytes, found = pycld2.detect(sample)
    except pycld2.error:  # bytes CLD2 refuses (invalid UTF-8 after our cleaning should not happen)
        return None
    code = found[0][1] if found else "un"
    return code if reliable and code not in ("un", "xxx") else None


def choose(templates: dict[str, str], content_language: str | None, text: str, detector=detect) -> Choice:
    """The template for a customer: Content-Language first, then the detected language of the
    text, then the default (template None)."""
    if templates:
        for tag in declared(content_language):
            found = match(templates, tag)
            if found:
                return Choice(templates[found], found, "content-language")
        detected = detector(text)
        found = match(templates, detected) if detected else None
        if found:
            return Choice(templates[found], found, "detected")
    return Choice(None, None, "default")
