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
import sys

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [p for p in (str(ROOT / "functions"), str(ROOT), str(ROOT / "scripts")) if p not in sys.path]

from mailbridge.adapters.firestore import accounting  # noqa: E402
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


def main() -> int:
    """Only the three phases these figures come from, on make bench's own code and stacks:
    `.venv/bin/python scripts/bench_firestore.py` (about 15 minutes instead of make bench's 30+)."""
    import importlib.machinery
    import importlib.util
    import subprocess

    path = str(ROOT / "scripts" / "bench")
    loader = importlib.machinery.SourceFileLoader("bench_main", path)
    bench = importlib.util.module_from_spec(importlib.util.spec_from_file_location("bench_main", path, loader=loader))
    loader.exec_module(bench)
    start()
    env = dict(os.environ, MAILBRIDGE_STACK_DIR=str(bench.STACK_DIR))
    subprocess.run([str(ROOT / "scripts" / "stack"), "up"], env=env, check=True, stdout=subprocess.DEVNULL)
    results: dict = {}
    try:
        os.environ["MAILBRIDGE_STACK_DIR"] = str(bench.STACK_DIR)
        bench.load_env()
        os.environ.pop("MAILBRIDGE_PUBSUB_TOPIC", None)
        os.environ.pop("MAILBRIDGE_WORK_TOPIC", None)
        since = mark()
        backfill = bench.bench_memory()
        merge(results, phase("backfill", since, backfill["messages"]))
        import bench_outbox

        since = mark()
        results.update(bench_outbox.run())
        merge(results, phase("burst_400_with_acknowledgements", since, bench_outbox.BURST))
    finally:
        subprocess.run([str(ROOT / "scripts" / "stack"), "down"], env=env, stdout=subprocess.DEVNULL)
    figures = ROOT / "bench" / "firestore.json"
    figures.write_text(json.dumps(results, indent=2) + "\n")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_scale.py"), "--sizes",
                    os.environ.get("BENCH_SCALE_SIZES", "1000")], check=False)
    scale = json.loads((ROOT / "bench" / "scale.json").read_text())
    merge(results, *scale.get("max_doc_writes_per_s_by_phase", {}).values())
    results["fanout_1000_mailboxes_s"] = scale.get("fanout_1000_mailboxes_s")
    figures.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: results.get(k) for k in ("max_doc_writes_per_s", "contention_retries_per_1000",
                                                    "max_doc_writes_per_s_by_phase", "burst_400_acks_s",
                                                    "burst_400_ingest_s", "fanout_1000_mailboxes_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
