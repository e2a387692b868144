"""A corpus of raw RFC 822 messages built in code, for parser, rules, threading and ingest tests.

`build_corpus()` returns {name: raw bytes}; `make_message(...)` builds one more message in the
same style. Everything is deterministic: the same bytes on every run.
"""

from tests.corpus.builder import CUSTOMER, PDF_BYTES, PNG_PIXEL, SUPPORT, crlf, make_message
from tests.corpus.messages import CORPUS_BUILDERS


def build_corpus() -> dict[str, bytes]:
    """Every named message of the corpus."""
    return {name: builder() for name, builder in CORPUS_BUILDERS.items()}


__all__ = ["build_corpus", "make_message", "crlf", "CUSTOMER", "SUPPORT", "PNG_PIXEL", "PDF_BYTES"]
