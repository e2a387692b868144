"""The strictness layer itself (adapters/firestore/accounting.py, tests/strict_firestore.py): it
fails on a document written faster than Google sustains and on one over 1 MiB, and counts the
writes of every Commit the client makes, whichever repository made it."""

from __future__ import annotations

from types import SimpleNamespace

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.types import Document, Value, Write
import pytest

from mailbridge.adapters.firestore import accounting
from mailbridge.adapters.firestore.base import watch_commits
from tests.strict_firestore import strictness_problems

DATABASE = "projects/p/databases/(default)/documents/"


def _set(path: str, text: str = "x") -> Write:
    return Write(update=Document(name=DATABASE + path, fields={"text": Value(string_value=text)}))


class _Api:
    """The library's generated Firestore API at its Commit call: answers or raises."""

    def __init__(self, error=None):
        self.error = error

    def commit(self, request=None, metadata=None, **kwargs):
        if self.error:
            raise self.error
        return SimpleNamespace(write_results=[])


def _client(error=None):
    return SimpleNamespace(_firestore_api=_Api(error))


@pytest.fixture
def ledger(monkeypatch, tmp_path):
    fresh = accounting.WriteLedger(log_path=str(tmp_path / "writes.log"))
    monkeypatch.setattr(accounting, "WRITES", fresh)
    return fresh


def test_a_document_written_more_than_once_a_second_over_ten_seconds_fails():
    written = [accounting.Written(100 + i * 0.5, "counters/tickets", 20) for i in range(21)]

    problems = accounting.violations(written)

    assert len(problems) == 1 and problems[0].startswith("counters/tickets: written 2.0 times a second sustained")


def test_one_write_a_second_passes_however_long_it_lasts():
    written = [accounting.Written(100 + i * 1.0, "sync/a~production", 20) for i in range(120)]

    assert accounting.violations(written) == []
    assert accounting.max_sustained_rate(written)["value"] == pytest.approx(1.0)


def test_a_burst_that_drains_within_ten_seconds_passes_and_the_bench_still_reports_it():
    written = [accounting.Written(100 + i * 0.1, "mailboxes/help", 200) for i in range(15)]
    written.append(accounting.Written(130, "mailboxes/help", 200))

    assert accounting.violations(written) == []
    assert accounting.max_sustained_rate(written)["value"] == pytest.approx(1.5)


def test_a_burst_followed_by_steady_writing_is_sustained_and_fails():
    written = [accounting.Written(100 + i * 0.1, "send_pacing/a~production", 20) for i in range(15)]
    written += [accounting.Written(102 + i, "send_pacing/a~production", 20) for i in range(10)]

    assert [p.split(":")[0] for p in accounting.violations(written)] == ["send_pacing/a~production"]


def test_many_documents_each_written_once_a_second_pass():
    written = [accounting.Written(100 + i * 0.01, f"tickets/{i}", 20) for i in range(500)]

    assert accounting.violations(written) == []


def test_a_document_over_one_mebibyte_fails_even_when_written_once():
    written = [accounting.Written(100, "tickets/7", accounting.MAX_DOCUMENT_BYTES + 1)]

    assert accounting.violations(written) == [
        f"tickets/7: {accounting.MAX_DOCUMENT_BYTES + 1} bytes written, over Firestore's 1 MiB per document"]


def test_a_named_budget_exception_raises_that_documents_budget_only(monkeypatch):
    monkeypatch.setitem(accounting.BUDGET_EXCEPTIONS, "settings/*", (5.0, "a test's reason"))
    written = [accounting.Written(100 + i * 0.3, path, 20) for i in range(60) for path in ("settings/global", "x/y")]

    assert [p.split(":")[0] for p in accounting.violations(written)] == ["x/y"]


def test_every_commit_of_the_client_is_counted_per_document_with_its_size(ledger):
    client = _client()
    watch_commits(client)

    for _ in range(12):
        client._firestore_api.commit(request={"writes": [_set("send_pacing/a~production"), _set("tickets/1")]})

    assert [w.path for w in ledger.records] == ["send_pacing/a~production", "tickets/1"] * 12
    assert all(w.size > 0 for w in ledger.records)
    logged, _aborts, _end = accounting.read_log(ledger.log_path)
    assert [(w.path, w.size) for w in logged] == [(w.path, w.size) for w in ledger.records]


def test_the_layer_fails_on_a_document_the_log_shows_written_twice_a_second_for_ten_seconds(ledger):
    ledger.record([accounting.Written(100 + i * 0.5, "send_pacing/a~production", 90) for i in range(21)])

    assert strictness_problems(ledger.log_path, 0) == [
        "send_pacing/a~production: written 2.0 times a second sustained over 10 s or more (Firestore sustains about 1)"]


def test_a_written_document_over_one_mebibyte_fails_the_layer(ledger):
    client = _client()
    watch_commits(client)

    client._firestore_api.commit(request={"writes": [_set("tickets/9", "x" * (1024 * 1024))]})

    problems = strictness_problems(ledger.log_path, 0)
    assert len(problems) == 1 and problems[0].startswith("tickets/9: ") and "over Firestore's 1 MiB" in problems[0]


def test_a_contention_abort_is_counted_and_its_writes_are_not(ledger):
    client = _client(gexc.Aborted("too much contention on these datastore entities"))
    watch_commits(client)

    with pytest.raises(gexc.Aborted):
        client._firestore_api.commit(request={"writes": [_set("ack_limits/x")]})

    assert ledger.contention_aborts == 1 and ledger.records == []
    assert accounting.read_log(ledger.log_path)[:2] == ([], 1)


def test_the_log_is_read_from_an_offset_and_a_half_written_line_waits(ledger, tmp_path):
    ledger.record([accounting.Written(1.0, "a/b", 3)])
    first_end = accounting.read_log(ledger.log_path)[2]
    ledger.record([accounting.Written(2.0, "c/d", 4)])
    with open(ledger.log_path, "a") as log:
        log.write("3.000 5 e/")

    written, _aborts, end = accounting.read_log(ledger.log_path, first_end)

    assert written == [accounting.Written(2.0, "c/d", 4)] and end < (tmp_path / "writes.log").stat().st_size


def test_a_deployed_function_keeps_no_records(monkeypatch):
    fresh = accounting.WriteLedger()  # no MAILBRIDGE_WRITE_LOG
    monkeypatch.setattr(accounting, "WRITES", fresh)
    client = _client()
    watch_commits(client)

    client._firestore_api.commit(request={"writes": [_set("tickets/1")]})

    assert fresh.records == []
