"""Write accounting: Firestore as strict as Google (docs/architecture.md, "Firestore as strict as
Google"). Every write of every repository passes through the client's one Commit call
(base.watch_commits); there each written document is recorded with its time and size, and each
commit Firestore aborted for contention is counted. The emulator enforces neither Google's
sustained rate of about one write per second per document nor, everywhere, its 1 MiB limit: the
test tiers that run it (tests/strict_firestore.py) fail on what Google would refuse or not
sustain (violations), and the bench (scripts/bench_firestore.py) reports the busiest document's
rate over 10 s, bursts included (max_sustained_rate).

Only when `MAILBRIDGE_WRITE_LOG` names a file (tests and the bench) are records kept, in this
process (WRITES) and appended to that file as one short line each, so the functions served in
another process are counted too; a deployed function keeps none.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from dataclasses import dataclass, field

# Google's documented limits for Firestore in Native mode.
SUSTAINED_WINDOW_S = 10.0          # a rate counts when it lasts this long
MAX_WRITES_PER_S = 1.0             # sustained writes to any one document
MAX_DOCUMENT_BYTES = 1024 * 1024   # 1 MiB per document

# Named exceptions to the per-document budget: {path pattern: (writes per second allowed, why)}.
# Each one is explained in docs/architecture.md ("Per-document budget exceptions"). None today: the
# sync state, the last one, is written about twice per run since runs are coalesced (services/sync).
BUDGET_EXCEPTIONS: dict[str, tuple[float, str]] = {}


@dataclass(frozen=True)
class Written:
    at: float    # epoch seconds of the commit
    path: str    # collection/document, without the database prefix
    size: int    # bytes of the fields written (a whole document for a set, the fields for a merge)


@dataclass
class WriteLedger:
    """The writes of this process, and optionally a file shared with others."""

    log_path: str = ""
    records: list[Written] = field(default_factory=list)
    contention_aborts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, written: list[Written]) -> None:
        if not self.log_path:  # a deployed function keeps nothing: only tests and the bench count
            return
        with self._lock:
            self.records.extend(written)
            if written:
                lines = "".join(f"{w.at:.3f} {w.size} {w.path}\n" for w in written)
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(lines)

    def aborted(self) -> None:
        with self._lock:
            self.contention_aborts += 1
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(f"{time.time():.3f} -1 (contention)\n")

    def since(self, mark: int) -> list[Written]:
        with self._lock:
            return self.records[mark:]


WRITES = WriteLedger()


def documents_of(request: dict) -> list[Written]:
    """The documents one Commit request writes (set, update, delete, transform), with sizes."""
    now = time.time()
    written = []
    for write in request.get("writes") or ():
        pb = type(write).pb(write) if hasattr(type(write), "pb") else write
        kind = pb.WhichOneof("operation")
        if kind == "update":
            name, size = pb.update.name, pb.update.ByteSize()
        elif kind == "delete":
            name, size = pb.delete, 0
        else:
            name, size = pb.transform.document, 0
        written.append(Written(now, name.split("/documents/", 1)[-1], size))
    return written


def read_log(path: str, offset: int = 0) -> tuple[list[Written], int, int]:
    """(documents written, contention aborts, the offset after them) from a MAILBRIDGE_WRITE_LOG file."""
    if not path or not os.path.exists(path):
        return [], 0, offset
    written, aborts = [], 0
    with open(path, "rb") as log:
        log.seek(offset)
        data = log.read()
    end = data.rfind(b"\n") + 1  # a line being written by another process waits for next time
    for line in data[:end].decode("utf-8", "replace").splitlines():
        at, size, path_ = line.split(" ", 2)
        if size == "-1":
            aborts += 1
        else:
            written.append(Written(float(at), path_, int(size)))
    return written, aborts, offset + end


def max_sustained_rate(written: list[Written], window_s: float = SUSTAINED_WINDOW_S) -> dict:
    """The highest rate any one document was written at in a window of `window_s` seconds (its
    writes in the window / `window_s`), the bench's figure: {"value": writes per second, "path",
    "at": window start}; value 0 when nothing was written. A burst counts in full here."""
    best = {"value": 0.0, "path": "", "at": 0.0}
    for path, stamps in _stamps(written).items():
        start = 0
        for end, at in enumerate(stamps):
            while at - stamps[start] >= window_s:
                start += 1
            rate = (end - start + 1) / window_s
            if rate > best["value"]:
                best = {"value": rate, "path": path, "at": stamps[start]}
    return best


def sustained_overload(stamps: list[float], window_s: float = SUSTAINED_WINDOW_S) -> float:
    """The highest rate of writes that lasted at least `window_s`: over every run of writes
    spanning `window_s` or more, (writes after the first) / span. A burst that Firestore's queue
    drains within `window_s` (a test setting up a mailbox a dozen times in a second) is not
    sustained; 1.0 or less is within Google's rate."""
    worst, end = 0.0, 0
    for start, first in enumerate(stamps):
        end = max(end, start)
        while end < len(stamps) and stamps[end] - first < window_s:
            end += 1
        if end == len(stamps):
            break
        worst = max(worst, (end - start) / (stamps[end] - first))
    return worst


def _stamps(written: list[Written]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    for w in written:
        times.setdefault(w.path, []).append(w.at)
    return {path: sorted(stamps) for path, stamps in times.items()}


def allowed_rate(path: str, extra: dict[str, float] | None = None) -> float:
    for pattern, rate in [*(extra or {}).items(), *((p, r) for p, (r, _why) in BUDGET_EXCEPTIONS.items())]:
        if fnmatch.fnmatchcase(path, pattern):
            return rate
    return MAX_WRITES_PER_S


def violations(written: list[Written], window_s: float = SUSTAINED_WINDOW_S,
               extra: dict[str, float] | None = None) -> list[str]:
    """What Google would refuse or slow down: a document written faster than its budget,
    sustained over `window_s` or more (Google: about 1 a second), or larger than 1 MiB. `extra`:
    a test's own named exceptions {path pattern: rate} (tests/strict_firestore.py)."""
    problems = {f"{w.path}: {w.size} bytes written, over Firestore's 1 MiB per document"
                for w in written if w.size > MAX_DOCUMENT_BYTES}
    for path, stamps in _stamps(written).items():
        rate, allowed = sustained_overload(stamps, window_s), allowed_rate(path, extra)
        if rate > allowed:
            problems.add(f"{path}: written {rate:.1f} times a second sustained over {window_s:g} s or more "
                         f"(Firestore sustains about {allowed:g})")
    return sorted(problems)
