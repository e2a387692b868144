"""Admin `/regex/` ignore rules run on RE2 (google-re2): linear time in the subject whatever the
pattern, so a rule like `/(a+)+$/` cannot stall a poll on a crafted subject. RE2 has no
backreferences or lookaround; a pattern that needs them is refused when it is saved, with the
reason (docs/reliability.md, "Hostile senders").
"""

from __future__ import annotations

import functools

import re2

from mailbridge.errors import InvalidInput

MAX_PATTERN_CHARS = 500
MAX_PROGRAM_BYTES = 1 << 20  # RE2's memory for one compiled rule


def is_regex_rule(pattern: str) -> bool:
    pattern = (pattern or "").strip()
    return len(pattern) >= 2 and pattern.startswith("/") and pattern.endswith("/")


def compile_regex_rule(pattern: str):
    """The RE2 program of a `/regex/` rule (case-insensitive search); InvalidInput if refused."""
    return _compile(pattern.strip()[1:-1])


def check_subject_patterns(patterns) -> None:
    """Refuse, with the reason, a `/regex/` subject rule RE2 cannot run."""
    for pattern in patterns or ():
        if is_regex_rule(pattern):
            compile_regex_rule(pattern)


@functools.lru_cache(maxsize=1024)
def _compile(body: str):
    if len(body) > MAX_PATTERN_CHARS:
        raise InvalidInput(f"ignore rule /{body[:40]}…/ is longer than {MAX_PATTERN_CHARS} characters")
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_BYTES
    try:
        return re2.compile(body, options)
    except re2.error as e:
        detail = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise InvalidInput(f"ignore rule /{body[:80]}/ is refused: {detail} (rules run on RE2: no "
                           "backreferences or lookaround)") from None
