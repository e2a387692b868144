"""HTML: sanitising for display, cid: references, and HTML to text."""

from __future__ import annotations

import html as html_lib
import re
import urllib.parse

from .limits import MAX_HTML_TO_TEXT_CHARS
from .model import Defects, clean_text

_SANITIZE_URL_SCHEMES = None  # filled lazily from nh3 (import kept off the cold path)


_CID_REFERENCE = re.compile(r"""\b(src|href|background)=(["'])cid:(.*?)\2""", re.IGNORECASE)


def sanitize_html(html: str) -> str:
    """HTML safe to show: no scripts, styles, event handlers or javascript: URLs; cid: kept."""
    import nh3

    global _SANITIZE_URL_SCHEMES
    if _SANITIZE_URL_SCHEMES is None:
        _SANITIZE_URL_SCHEMES = set(nh3.ALLOWED_URL_SCHEMES) | {"cid"}
    html = clean_text(html)
    return nh3.clean(
        html,
        clean_content_tags={"script", "style", "title"},
        url_schemes=_SANITIZE_URL_SCHEMES,
    )


def cid_references(html: str) -> set[str]:
    """Content ids that `cid:` URLs in the HTML point at (URL-decoded, RFC 2392)."""
    found = set()
    for _, _, reference in _CID_REFERENCE.findall(html or ""):
        content_id = urllib.parse.unquote(html_lib.unescape(reference)).strip().strip("<>")
        found.add(content_id)
        found.add(content_id.lower())
    return found


def resolve_cid(html: str, mapping: dict[str, str]) -> str:
    """Rewrite `cid:` URLs to the URLs the caller stored the inline attachments at.

    Content ids without an entry in mapping are left as they are.
    """
    lowered = {str(key).strip("<>").lower(): value for key, value in mapping.items()}

    def replace(match: re.Match) -> str:
        attribute, quote, reference = match.groups()
        content_id = urllib.parse.unquote(html_lib.unescape(reference)).strip().strip("<>")
        url = mapping.get(content_id) or lowered.get(content_id.lower())
        if url is None:
            return match.group(0)
        return f"{attribute}={quote}{html_lib.escape(url, quote=True)}{quote}"

    return _CID_REFERENCE.sub(replace, html or "")


def html_to_text(html: str, defects: Defects | None = None) -> str:
    if len(html) > MAX_HTML_TO_TEXT_CHARS:
        if defects is not None:
            defects.add(f"HTML longer than {MAX_HTML_TO_TEXT_CHARS} characters was cut for the text")
        html = html[:MAX_HTML_TO_TEXT_CHARS]
    try:
        from inscriptis import get_text

        return get_text(html)
    except Exception as e:  # noqa: BLE001
        if defects is not None:
            defects.add(f"HTML could not be converted to text: {type(e).__name__}")
        return re.sub(r"<[^>]*>", " ", html)
