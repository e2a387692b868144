"""scripts/stack: up starts every service and writes .stack/env, up twice is harmless, and down
leaves no process and no listening port behind."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
STACK = str(REPO / "scripts" / "stack")
sys.path.insert(0, str(REPO / "scripts"))
import stacklib  # noqa: E402

EXPECTED_VARIABLES = {
    "FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "MAILBRIDGE_FUNCTIONS_URL", "FAKE_GOOGLE_URL",
    "MAILBRIDGE_INSTANCE", "MAILBRIDGE_GMAIL_API_URL", "MAILBRIDGE_OAUTH_AUTH_URL",
    "MAILBRIDGE_OAUTH_TOKEN_URL", "MAILBRIDGE_OAUTH_REVOKE_URL", "MAILBRIDGE_USERINFO_URL",
    "MAILBRIDGE_SECRET_MANAGER_URL", "STORAGE_EMULATOR_HOST", "MAILBRIDGE_ATTACHMENTS_BUCKET",
    "PUBSUB_EMULATOR_HOST", "MAILBRIDGE_PUBSUB_TOPIC", "MAILBRIDGE_SIGNING_KEY",
}


def run_stack(state_dir: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILBRIDGE_")}
    env["MAILBRIDGE_STACK_DIR"] = str(state_dir)
    return subprocess.run([STACK, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            values[key] = shlex.split(value)[0] if value else ""
    return values


def live_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def listening_ports() -> set[int]:
    return {c.laddr.port for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


def test_bad_argument_is_one_stderr_line_and_exit_code_2(tmp_path):
    result = run_stack(tmp_path, "sideways")

    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_up_twice_then_down_leaves_nothing_behind(tmp_path):
    state_dir = tmp_path / "stack"
    try:
        up = run_stack(state_dir, "up", "--instance", "uat")
        assert up.returncode == 0, up.stdout + up.stderr

        env = read_env_file(state_dir / "env")
        assert EXPECTED_VARIABLES <= set(env), EXPECTED_VARIABLES - set(env)
        assert "OAUTHLIB_INSECURE_TRANSPORT" not in env
        assert env["MAILBRIDGE_INSTANCE"] == "uat"
        assert env["GOOGLE_CLOUD_PROJECT"] == "mailbridge-local"
        assert env["MAILBRIDGE_OAUTH_TOKEN_URL"] == env["FAKE_GOOGLE_URL"] + "/token"
        assert env["MAILBRIDGE_PUBSUB_TOPIC"] == "projects/mailbridge-local/topics/gmail-push"
        assert env["MAILBRIDGE_SIGNING_KEY"] == (state_dir / "signing_key").read_text().strip()

        recorded = json.loads((state_dir / "pids.json").read_text())["services"]
        assert set(recorded) == set(stacklib.SERVICES)
        for name, record in recorded.items():
            assert stacklib.http_answers(record["probe"]), f"{name} does not answer"
        assert stacklib.http_answers(env["FAKE_GOOGLE_URL"] + "/_fake/health")
        assert stacklib.http_answers(env["MAILBRIDGE_FUNCTIONS_URL"] + "/_health")

        status = run_stack(state_dir, "status")
        assert status.returncode == 0 and status.stdout.count("answers") == len(stacklib.SERVICES), status.stdout

        again = run_stack(state_dir, "up")
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert json.loads((state_dir / "pids.json").read_text())["services"] == recorded

        down = run_stack(state_dir, "down")
        assert down.returncode == 0, down.stderr
        assert not (state_dir / "pids.json").exists()
        for name, record in recorded.items():
            assert live_members(record["pgid"]) == [], f"{name} left processes behind"
        ports = {port for record in recorded.values() for port in record["ports"]}
        assert ports and not (ports & listening_ports())
        assert run_stack(state_dir, "status").returncode == 3
    finally:
        stacklib.stop_recorded(state_dir)


def test_down_without_a_stack_says_so(tmp_path):
    result = run_stack(tmp_path, "down")

    assert result.returncode == 0
    assert "not running" in result.stdout
