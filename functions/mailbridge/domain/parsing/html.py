"""HTML: sanitising for display, cid: references, and HTML to text, all linear in the size."""

from __future__ import annotations

import html as html_lib
import re
import urllib.parse

from .limits import MAX_HTML_TO_TEXT_CHARS
from .model import Defects, clean_text

_SANITIZE_URL_SCHEMES = None  # filled lazily from nh3 (import kept off the cold path)

_CID_REFERENCE = re.compile(r"""\b(src|href|background)=(["'])cid:([^"'<>]{0,2000}?)\2""", re.IGNORECASE)

# The HTML tree builders (nh3's html5ever, inscriptis) spend time in proportion to the depth
# of open elements for every tag, so thousands of unclosed <ul><li> cost quadratic time.
# Real letters nest a few dozen levels (tables in tables); deeper tags are dropped, text kept.
MAX_HTML_DEPTH = 100
# Lists and quotes indent their text: at 100 levels each line of text would carry hundreds of
# spaces, so they get a lower cap of their own.
MAX_LIST_DEPTH = 12
_INDENTING_ELEMENTS = frozenset({"ul", "ol", "dl", "menu", "dir", "blockquote"})
# Elements that never hold others, or that the next one of their kind closes (<p>, <li>, <td>),
# add no depth: the tag pattern skips them.
_FLAT_ELEMENTS = (
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "p", "li", "dt", "dd", "tr", "td", "th", "option", "thead", "tbody", "tfoot",
)
_NESTING_TAG = re.compile(
    r"<(/?)(?!(?:" + "|".join(_FLAT_ELEMENTS) + r")[\s/>])([A-Za-z][A-Za-z0-9:-]{0,40})(?=[\s/>])[^<>]{0,4000}?(/?)>",
    re.IGNORECASE,
)

# inscriptis lays text out as a browser would (lists, tables) but costs tens of microseconds per
# tag in Python; beyond this many tags the text is taken without layout, in linear time.
MAX_LAYOUT_TAGS = 10_000
_BLOCK_TAG = re.compile(
    r"</?(?:br|p|div|li|tr|h[1-6]|ul|ol|table|blockquote|pre|hr|dt|dd|section|article|header|footer)\b[^<>]{0,2000}>",
    re.IGNORECASE,
)
_BLANK_RUNS = re.compile(r"\n[ \t\n]{2,}")
_TAG = re.compile(r"<[^<>]{0,2000}>")


def sanitize_html(html: str, defects: Defects | None = None) -> str:
    """HTML safe to show: no scripts, styles, event handlers or javascript: URLs; cid: kept."""
    import nh3

    global _SANITIZE_URL_SCHEMES
    if _SANITIZE_URL_SCHEMES is None:
        _SANITIZE_URL_SCHEMES = set(nh3.ALLOWED_URL_SCHEMES) | {"cid"}
    html, dropped = cap_html_depth(clean_text(html))
    if dropped and defects is not None:
        defects.add(f"HTML nested deeper than {MAX_HTML_DEPTH} elements or {MAX_LIST_DEPTH} lists; "
                    f"{dropped} inner tags were dropped")
    return nh3.clean(
        html,
        clean_content_tags={"script", "style", "title"},
        url_schemes=_SANITIZE_URL_SCHEMES,
    )


def cap_html_depth(html: str) -> tuple[str, int]:
    """html with the tags deeper than MAX_HTML_DEPTH (or lists deeper than MAX_LIST_DEPTH)
    removed, and how many were; one pass over the tags that can nest."""
    if html.count("<") <= MAX_LIST_DEPTH:
        return html, 0
    depth = lists = dropped = 0
    pieces: list[str] = []
    position = 0
    for match in _NESTING_TAG.finditer(html):
        closing, name, self_closing = match.groups()
        if self_closing:
            continue
        indenting = name.lower() in _INDENTING_ELEMENTS
        if not closing:
            depth += 1
            lists += indenting
        too_deep = depth > MAX_HTML_DEPTH or (indenting and lists > MAX_LIST_DEPTH)
        if closing:
            depth = max(0, depth - 1)
            lists = max(0, lists - indenting)
        if too_deep:
            pieces.append(html[position : match.start()])
            position = match.end()
            dropped += 1
    if not dropped:
        return html, 0
    pieces.append(html[position:])
    return "".join(pieces), dropped


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
    if html.count("<") > MAX_LAYOUT_TAGS:
        if defects is not None:
            defects.add(f"HTML with more than {MAX_LAYOUT_TAGS} tags was converted to text without layout")
        return html_text_without_layout(html)
    try:
        from inscriptis import get_text

        return get_text(html)
    except Exception as e:  # noqa: BLE001
        if defects is not None:
            defects.add(f"HTML could not be converted to text: {type(e).__name__}")
        return html_text_without_markup(html)


def html_text_without_layout(html: str) -> str:
    """Each block element on a line of its own, tags removed, entities decoded: three passes
    in C. For sanitized HTML (no script or style left to leak)."""
    text = html_lib.unescape(_TAG.sub("", _BLOCK_TAG.sub("\n", html)))
    return _BLANK_RUNS.sub("\n\n", text)


def html_text_without_markup(html: str) -> str:
    """Tags removed and entities decoded, nothing else: a stand-in for html_to_text."""
    return html_lib.unescape(_TAG.sub(" ", html))
