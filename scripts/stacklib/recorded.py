"""A stack recorded in `<state_dir>/pids.json` by an earlier process (`scripts/stack up`, a test
session): its status, and stopping it by process group."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from .ports import http_answers, port_is_listening
from .processes import group_alive, kill_group, same_process, wait_ports_closed


def read_pids(state_dir: str | Path) -> dict | None:
    try:
        return json.loads((Path(state_dir) / "pids.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def stop_recorded(state_dir: str | Path) -> list[str]:
    """Stop what a previous `up` (or test session) recorded in pids.json, by process group.

    Only groups whose leader is still the recorded process are killed (pid reuse guard).
    Returns problems; removes pids.json.
    """
    data = read_pids(state_dir)
    problems = []
    if not data:
        return problems
    ports = []
    for name, rec in data.get("services", {}).items():
        ports.extend(rec.get("ports") or [rec.get("port")])
        pgid = rec.get("pgid")
        if pgid and same_process(rec.get("pid"), rec.get("create_time")):
            kill_group(pgid)
        elif pgid and group_alive(pgid):
            # The leader died but its group lives on (e.g. a forked child): still ours.
            kill_group(pgid)
    still = wait_ports_closed([p for p in ports if p])
    if still:
        problems.append(f"port(s) {still} still listening")
    with contextlib.suppress(FileNotFoundError):
        (Path(state_dir) / "pids.json").unlink()
    return problems


def recorded_status(state_dir: str | Path) -> list[tuple[str, str, bool, bool]]:
    """[(name, url, process alive, answers)] for a recorded stack."""
    data = read_pids(state_dir) or {}
    rows = []
    for name, rec in data.get("services", {}).items():
        alive = same_process(rec.get("pid"), rec.get("create_time"))
        answers = alive and (port_is_listening(rec["port"]) if rec.get("tcp") else http_answers(rec.get("probe", "")))
        rows.append((name, rec.get("url", ""), alive, answers))
    return rows
