"""Structured logs: stdlib logging records (caplog sees them) written as Cloud Logging JSON lines."""

import json
import logging

from mailbridge.logs import LABELS_KEY, log_event


def test_a_log_event_is_a_logging_record_with_its_fields(caplog):
    with caplog.at_level(logging.INFO, logger="mailbridge"):
        log_event("WARNING", "message failed", mailbox="help", attempts=2)
    (record,) = [r for r in caplog.records if r.name == "mailbridge"]
    assert (record.levelno, record.getMessage(), record.fields) == (logging.WARNING, "message failed",
                                                                     {"mailbox": "help", "attempts": 2})


def test_the_line_carries_cloud_logging_fields(capsys):
    log_event("ERROR", "sync failed", labels={"mailbox": "help"}, error="boom")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line == {"severity": "ERROR", "message": "sync failed", "error": "boom", LABELS_KEY: {"mailbox": "help"}}
