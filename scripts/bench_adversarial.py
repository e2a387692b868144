"""Adversarial parse benchmark (issue 17): seconds per MB of `parse_message` for each family of
hostile message at 0.5, 1 and 2 MB. Targets (docs/parsing.md): at most 0.5 s/MB, and
time(2 MB) at most 2.3 x time(1 MB).

Run alone with `python scripts/bench_adversarial.py`; `make bench` merges `run()` into its results.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions"))

from mailbridge.domain.parsing import parse_message  # noqa: E402

MB = 1_000_000
SIZES = {"0.5": MB // 2, "1": MB, "2": 2 * MB}
HEAD = "From: attacker@evil.example\r\nTo: support@helpdesk.example\r\nSubject: hi\r\nMessage-ID: <adv@evil.example>\r\n"


def _repeat(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit.encode("utf-8")))


def attribution_lines(size: int) -> bytes:
    body = "Hello\r\n" + _repeat("On Mon, a@b.c wrote:\r\n", size)
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode("utf-8")


def attribution_lines_cjk(size: int) -> bytes:
    body = "你好\r\n" + _repeat("张三写道：\r\n", size // 2) + _repeat("张三 <a@b.c> 于2026年1月1日 10:00写道：\r\n> 引用\r\n回复\r\n", size // 2)
    return (HEAD + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body).encode("utf-8")


def whitespace_lines(size: int) -> bytes:
    body = "Hello\r\n" + _repeat(" " * 399 + "\r\n" + " " * 398 + "x:\r\n", size)
    return (HEAD + "Content-Type: text/plain\r\n\r\n" + body).encode("utf-8")


def nested_html_lists(size: int) -> bytes:
    body = "<html><body>" + _repeat("<ul><li>item", size) + "</body></html>"
    return (HEAD + "Content-Type: text/html\r\n\r\n" + body).encode("utf-8")


def junk_address_headers(size: int) -> bytes:
    junk = _repeat('"a <b@ (c, <<d@@>> =?x?q?y?= e:f; ', size // 2)
    head = HEAD.replace("To: support@helpdesk.example\r\n", "")
    return (head + "To: " + junk + "\r\nCc: " + junk + "\r\n\r\nbody\r\n").encode("utf-8")


FAMILIES = {
    "attribution_lines": attribution_lines,
    "attribution_lines_cjk": attribution_lines_cjk,
    "whitespace_lines": whitespace_lines,
    "nested_html_lists": nested_html_lists,
    "junk_address_headers": junk_address_headers,
}


def cpu_seconds(raw: bytes, runs: int = 2) -> float:
    """CPU seconds of parse_message on raw, best of `runs`."""
    best = None
    for _ in range(runs):
        start = time.process_time()
        parse_message(raw)
        spent = time.process_time() - start
        best = spent if best is None else min(best, spent)
    return best


def run() -> dict:
    per_mb: dict[str, float] = {}
    detail: dict[str, dict[str, float]] = {}
    for family, build in FAMILIES.items():
        timings = {label: round(cpu_seconds(build(size)), 3) for label, size in SIZES.items()}
        timings["ratio_2_to_1"] = round(timings["2"] / max(timings["1"], 1e-6), 2)
        detail[family] = timings
        per_mb[family] = timings["1"]
    return {"adversarial_parse_s_per_mb": per_mb, "adversarial_parse_detail": detail}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
