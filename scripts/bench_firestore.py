"""Firestore as strict as Google, measured (docs/architecture.md, "Firestore as strict as Google";
docs/benchmarks.md): every process of the bench appends its document writes to one log
(MAILBRIDGE_WRITE_LOG, adapters/firestore/accounting.py), and each measured phase reports

  max_doc_writes_per_s        {"value", "path", "phase"}: the highest rate any one document was
                              written at over 10 s, over the fan-out, the burst and the backfill
                              (target ≤ 1.0, Google's sustained rate per document)
  contention_retries_per_1000 commits Firestore aborted for contention per 1,000 messages (≤ 5)

`start()` before the stacks come up; `mark()` and `phase()` around a phase; `merge()` into
bench/results.json's figures.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mailbridge.adapters.firestore import accounting

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT / "bench" / "document-writes.log"


def start() -> None:
    """Every later process of the bench (stacks, functions, subprocesses) and this one log their writes."""
    LOG.parent.mkdir(exist_ok=True)
    if not os.environ.get("MAILBRIDGE_WRITE_LOG"):  # scripts/bench_scale.py under scripts/bench keeps its log
        LOG.write_text("")
        os.environ["MAILBRIDGE_WRITE_LOG"] = str(LOG)
    accounting.WRITES.log_path = os.environ["MAILBRIDGE_WRITE_LOG"]


def mark() -> int:
    path = Path(os.environ.get("MAILBRIDGE_WRITE_LOG") or LOG)
    return path.stat().st_size if path.exists() else 0


def phase(name: str, since: int, messages: int) -> dict:
    """The figures of the writes logged since `since` (a mark()) by a phase of `messages` messages."""
    written, aborts, _end = accounting.read_log(os.environ.get("MAILBRIDGE_WRITE_LOG") or str(LOG), since)
    top = accounting.max_sustained_rate(written)
    return {"value": round(top["value"], 2), "path": top["path"], "phase": name, "writes": len(written),
            "messages": messages, "contention_retries": aborts,
            "over_1_mib": sorted({w.path for w in written if w.size > accounting.MAX_DOCUMENT_BYTES}),
            "over_budget": accounting.violations(written)[:5]}


def merge(results: dict, *figures: dict) -> dict:
    """Add phase figures to `results` and recompute the worst document and contention over all phases."""
    by_phase = results.setdefault("max_doc_writes_per_s_by_phase", {})
    for figure in figures:
        by_phase[figure["phase"]] = figure
    if by_phase:
        worst = max(by_phase.values(), key=lambda f: f["value"])
        results["max_doc_writes_per_s"] = {k: worst[k] for k in ("value", "path", "phase")}
        messages = sum(f["messages"] for f in by_phase.values())
        retries = sum(f["contention_retries"] for f in by_phase.values())
        results["contention_retries_per_1000"] = round(retries * 1000 / max(messages, 1), 2)
    return results


def merge_file(path: Path, results: dict) -> dict:
    """Merge `results`' phases into the figures file (which scripts/bench_scale.py wrote its
    fan-out phase into); returns the merged strictness figures."""
    merged = json.loads(path.read_text()) if path.is_file() else {}
    merge(merged, *results.get("max_doc_writes_per_s_by_phase", {}).values())
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return {k: merged[k] for k in ("max_doc_writes_per_s", "max_doc_writes_per_s_by_phase",
                                   "contention_retries_per_1000") if k in merged}


def table_rows(r: dict, verdict) -> list[tuple]:
    """The bench table's rows for these figures."""
    top = r.get("max_doc_writes_per_s")
    if not top:
        return []
    retries = r.get("contention_retries_per_1000")
    return [("Max writes/s to one document", f"{top['value']}", f"{top['path']} ({top['phase']})", "≤ 1.0",
             verdict(top["value"] <= 1.0)),
            ("Contention retries / 1000 msg", f"{retries}", "fan-out, burst, backfill", "≤ 5",
             verdict(retries is not None and retries <= 5))]
