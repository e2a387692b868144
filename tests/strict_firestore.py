"""Firestore as strict as Google, for every test that runs the emulator (docs/architecture.md,
"Firestore as strict as Google"): the emulator accepts a document written many times a second,
Google does not sustain more than about one write a second to it. After each such test the writes
that every process of the local stack recorded (MAILBRIDGE_WRITE_LOG, adapters/firestore/accounting.py)
are checked, and the test fails when a document was written over its budget or over 1 MiB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbridge.adapters.firestore import accounting


def strictness_problems(log: str, offset: int, extra: dict[str, float] | None = None) -> list[str]:
    """What Google would refuse or slow down among the writes logged after `offset`."""
    written, _aborts, _end = accounting.read_log(log, offset)
    return accounting.violations(written, extra=extra)


def pytest_configure(config):
    config.addinivalue_line("markers", "firestore_budget(rates, why): a test's own named exceptions to the "
                                       "per-document write budget, {path pattern: writes a second} "
                                       "(docs/architecture.md, \"Per-document budget exceptions\")")


@pytest.fixture(autouse=True)
def strict_firestore(request):
    """Fails a test that runs the Firestore emulator when it wrote a hot or oversized document."""
    if "_stack" not in request.fixturenames:  # no local stack, no emulator
        yield
        return
    log = request.getfixturevalue("_stack").stack.write_log
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    accounting.WRITES.log_path = log  # this process's Stores too, however a test built them
    offset = Path(log).stat().st_size if Path(log).exists() else 0
    yield
    marker = request.node.get_closest_marker("firestore_budget")
    problems = strictness_problems(log, offset, marker.args[0] if marker else None)
    if problems:
        pytest.fail("Firestore as strict as Google (docs/architecture.md): " + "; ".join(problems[:5]),
                    pytrace=False)
