"""The functions server (scripts/serve_functions.py) and the environment it and the CLI run with,
which `scripts/stack up` also writes to `<state_dir>/env` (README.md, CLI)."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from .common import HOST, REPO, venv_python
from .fake_google import ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET_ID
from .pubsub import WORK_PUSH_BUDGET_S, WORK_SHARDS

if TYPE_CHECKING:
    from .stack import Stack


def functions_command(port: int) -> list[str]:
    return [venv_python(), str(REPO / "scripts/serve_functions.py"), "--host", HOST, "--port", str(port)]


def functions_env(stack: Stack, *, push: bool = True, functions_url: str | None = None) -> dict[str, str]:
    """The environment of the functions and the CLI on `stack` (README.md, CLI)."""
    s = stack.services
    fake = s["fake_google"].url
    env = {
        "FIRESTORE_EMULATOR_HOST": f"{HOST}:{s['firestore'].port}",
        "GOOGLE_CLOUD_PROJECT": stack.project,
        "MAILBRIDGE_FUNCTIONS_URL": functions_url or s["functions"].url,
        "FAKE_GOOGLE_URL": fake,
        "MAILBRIDGE_INSTANCE": stack.instance,
        "MAILBRIDGE_GMAIL_API_URL": fake,
        "MAILBRIDGE_OAUTH_AUTH_URL": f"{fake}/o/oauth2/v2/auth",
        "MAILBRIDGE_OAUTH_TOKEN_URL": f"{fake}/token",
        "MAILBRIDGE_OAUTH_REVOKE_URL": f"{fake}/revoke",
        "MAILBRIDGE_USERINFO_URL": f"{fake}/oauth2/v3/userinfo",
        "MAILBRIDGE_SECRET_MANAGER_URL": fake,
        "STORAGE_EMULATOR_HOST": s["storage"].url,
        "MAILBRIDGE_ATTACHMENTS_BUCKET": stack.bucket,
        "MAILBRIDGE_SIGNING_KEY": stack.signing_key,
        "MAILBRIDGE_VERIFY_INVOKER": "false",  # no OIDC tokens locally; poll/push log a warning per call
        "MAILBRIDGE_OAUTH_CERTS_URL": f"{fake}/oauth2/v1/certs",
        "MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID": ADMIN_CLIENT_ID,
        "MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID": ADMIN_CLIENT_SECRET_ID,
    }
    if getattr(stack, "write_log", ""):  # tests and the bench: every document write counted
        env["MAILBRIDGE_WRITE_LOG"] = str(stack.write_log)
    if push and stack.pubsub_available:
        env["PUBSUB_EMULATOR_HOST"] = f"{HOST}:{s['pubsub'].port}"
        env["MAILBRIDGE_PUBSUB_TOPIC"] = stack.topic
        env["MAILBRIDGE_WORK_TOPIC"] = stack.work_topic
        env["MAILBRIDGE_EVENTS_TOPIC"] = stack.events_topic
        env["MAILBRIDGE_EVENTS_SUBSCRIPTION"] = stack.events_subscription
        env["MAILBRIDGE_WORK_SHARDS"] = str(WORK_SHARDS)
        env["MAILBRIDGE_PUSH_TIME_BUDGET_S"] = str(WORK_PUSH_BUDGET_S)
    return env


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any stack's settings, plus `extra`: what a service runs with."""
    env = dict(os.environ)
    for key in list(env):  # a developer's sourced .stack/env must not leak into a new stack
        if key.startswith("MAILBRIDGE_") or key in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                                                   "STORAGE_EMULATOR_HOST", "FAKE_GOOGLE_URL"):
            del env[key]
    env.update(extra or {})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def write_env_file(path: Path, env: dict[str, str]) -> Path:
    lines = [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    path.write_text("# Written by scripts/stack up; use with: . .stack/env\n" + "\n".join(lines) + "\n")
    return path


def stored_signing_key(state_dir: Path) -> str:
    """The signing key in `<state_dir>/signing_key`, made on first use and kept by every later `up`."""
    path = state_dir / "signing_key"
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    state_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key
