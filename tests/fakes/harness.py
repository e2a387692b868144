"""Start and stop the fake Google server (and the Pub/Sub emulator) from tests.

``FakeGoogleProcess`` runs ``server.py`` in its own process group on a free port, waits for
``/_fake/health`` and offers small helpers for the control routes. Other test tiers may reuse it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

SERVER = Path(__file__).resolve().parent / "server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=5)


def _wait_until(check, timeout: float, process: subprocess.Popen) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if check():
                return True
        except (requests.ConnectionError, OSError):
            pass
        time.sleep(0.05)
    return False


class FakeGoogleProcess:
    """One fake Google server process; use as a context manager."""

    def __init__(self, env: dict[str, str] | None = None, extra_args: list[str] | None = None):
        self.env = {**os.environ, **(env or {})}
        self.extra_args = extra_args or []
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.session = requests.Session()
        self._log = tempfile.TemporaryFile()

    def start(self) -> "FakeGoogleProcess":
        for _attempt in range(3):  # a free port can be taken between probe and bind
            port = free_port()
            self.process = subprocess.Popen(
                [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", str(port),
                 *self.extra_args],
                env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            )
            self.url = f"http://127.0.0.1:{port}"
            if _wait_until(lambda: self.session.get(self.url + "/_fake/health", timeout=1).ok,
                           30, self.process):
                return self
            _stop_group(self.process)
        self._log.seek(0)
        raise RuntimeError("fake Google server did not start:\n" + self._log.read().decode())

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process)
        self.session.close()

    def __enter__(self) -> "FakeGoogleProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ----- control routes -----------------------------------------------------------------------

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        response = self.session.post(self.url + path, json=json, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.session.get(self.url + path, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()

    def deliver(self, email: str, raw: bytes, label_ids: str = "INBOX,UNREAD",
                internal_date_ms: int | None = None) -> dict[str, str]:
        params: dict[str, Any] = {"labelIds": label_ids}
        if internal_date_ms is not None:
            params["internalDate"] = internal_date_ms
        return self.post(f"/_fake/users/{email}/messages", data=raw, params=params)


class PubSubEmulator:
    """The gcloud Pub/Sub emulator in its own process group (None-safe when gcloud is absent)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.host = ""

    @staticmethod
    def available() -> bool:
        return shutil.which("gcloud") is not None

    def start(self, timeout: float = 40) -> "PubSubEmulator":
        port = free_port()
        self.host = f"127.0.0.1:{port}"
        self.process = subprocess.Popen(
            ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port={self.host}",
             "--quiet"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        if not _wait_until(lambda: requests.get(f"http://{self.host}", timeout=1).ok,
                           timeout, self.process):
            self.stop()
            raise RuntimeError("the Pub/Sub emulator did not start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop_group(self.process)
