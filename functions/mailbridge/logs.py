"""Structured logs: stdlib `logging` under the "mailbridge" logger, written as one JSON line per
record with Cloud Logging's fields (`severity`, `message`, `logging.googleapis.com/labels`) on
stdout, which Cloud Logging reads as is. Records also propagate, so tests read them with caplog.
Never pass secrets (docs/architecture.md).
"""

from __future__ import annotations

import json
import logging
import sys
import threading

LABELS_KEY = "logging.googleapis.com/labels"

_lock = threading.Lock()
_stream = None  # None: stdout, what Cloud Logging reads; "stderr" once the CLI asks; or an open file


def to_stream(stream) -> None:
    """Send log lines to an open file (benchmarks keep their table readable)."""
    global _stream
    _stream = stream


def to_stderr() -> None:
    """Keep stdout for the CLI's own output (e.g. --json)."""
    global _stream
    _stream = "stderr"


class CloudLoggingFormatter(logging.Formatter):
    """{"severity", "message", **fields, "logging.googleapis.com/labels"?} as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": getattr(record, "severity", record.levelname), "message": record.getMessage(),
                 **getattr(record, "fields", {})}
        labels = getattr(record, "labels", None)
        if labels:
            entry[LABELS_KEY] = {str(k): str(v) for k, v in labels.items()}
        return json.dumps(entry, default=str)


class _LineHandler(logging.Handler):
    """Writes to the stream chosen by to_stream/to_stderr, resolved at each record (tests swap
    sys.stdout and sys.stderr)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - logging must never break the caller
            self.handleError(record)
            return
        if _stream is None or _stream == "stdout":
            stream = sys.stdout
        elif _stream == "stderr":
            stream = sys.stderr
        else:
            stream = _stream
        with _lock:
            stream.write(line + "\n")
            stream.flush()


logger = logging.getLogger("mailbridge")
logger.setLevel(logging.INFO)
if not any(isinstance(h, _LineHandler) for h in logger.handlers):
    _handler = _LineHandler()
    _handler.setFormatter(CloudLoggingFormatter())
    logger.addHandler(_handler)


def log_event(severity: str, message: str, labels: dict | None = None, **fields) -> None:
    """One structured record: `severity` is a Cloud Logging severity (INFO, WARNING, ERROR…)."""
    level = logging.getLevelName(severity)
    logger.log(level if isinstance(level, int) else logging.INFO, message,
               extra={"severity": severity, "fields": fields, "labels": labels})
