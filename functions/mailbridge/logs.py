"""Structured JSON log lines on stdout (Cloud Logging reads them as is). Never pass secrets."""

from __future__ import annotations

import json
import sys
import threading

_lock = threading.Lock()
_stream = None  # None: stdout, what Cloud Logging reads; "stderr" once the CLI asks


def to_stream(stream) -> None:
    """Send log lines to an open file (benchmarks keep their table readable)."""
    global _stream
    _stream = stream


def to_stderr() -> None:
    """Keep stdout for the CLI's own output (e.g. --json)."""
    global _stream
    _stream = "stderr"


def log_event(severity: str, message: str, **fields) -> None:
    line = json.dumps({"severity": severity, "message": message, **fields}, default=str)
    if _stream is None or _stream == "stdout":
        stream = sys.stdout  # resolved now: tests swap sys.stdout/sys.stderr
    elif _stream == "stderr":
        stream = sys.stderr
    else:
        stream = _stream
    with _lock:
        stream.write(line + "\n")
        stream.flush()
