"""Structured JSON log lines on stdout (Cloud Logging reads them as is). Never pass secrets."""

from __future__ import annotations

import json
import sys
import threading

_lock = threading.Lock()


def log_event(severity: str, message: str, **fields) -> None:
    line = json.dumps({"severity": severity, "message": message, **fields}, default=str)
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
