"""Shared fixtures: the emulators, the fake Google server and the functions, one of each per
test session, started lazily (through scripts/stacklib/) the first time a test asks for them;
per-test fixtures reset their data. Every process group started here is killed at session end.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import stacklib  # noqa: E402

TEST_PROJECT = "mailbridge-test"
TEST_SIGNING_KEY = "test-signing-key-0123456789abcdef-not-a-secret"
TEST_BUCKET = "mailbridge-test-attachments"
ARTIFACTS = REPO / "test-artifacts"

# Firestore as strict as Google: every test that runs the emulator fails on a hot or oversized document.
pytest_plugins = ["tests.strict_firestore"]


# --------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True)
def isolate_environment():
    """Changes a test makes to os.environ stay in that test."""
    saved = os.environ.copy()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def isolate_logging():
    """Changes a test (or the code it runs) makes to logging and sys.stdout/stderr stay in it.

    functions-framework's own conftest reloads the logging module; restoring the root logger's
    handlers and level is enough here and keeps pytest's caplog handlers intact.
    """
    root = logging.getLogger()
    handlers, level, disabled = root.handlers[:], root.level, logging.root.manager.disable
    stdout, stderr = sys.stdout, sys.stderr
    logs = sys.modules.get("mailbridge.logs")
    log_stream = getattr(logs, "_stream", None)
    try:
        yield
    finally:
        # The CLI points mailbridge's JSON log lines at the sys.stderr of its moment, which in a
        # test is a capture file that pytest closes afterwards.
        logs = sys.modules.get("mailbridge.logs")
        if logs is not None and hasattr(logs, "_stream"):
            logs._stream = log_stream
        # After Ctrl-C pytest has closed its capture files before this runs: never restore those.
        if sys.stdout is not stdout:
            sys.stdout = sys.__stdout__ if getattr(stdout, "closed", False) else stdout
        if sys.stderr is not stderr:
            sys.stderr = sys.__stderr__ if getattr(stderr, "closed", False) else stderr
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.disable(disabled)


# --------------------------------------------------------------------------- the session's stack


def _clear_stale_stacks() -> None:
    """Stop services left by an earlier session that was killed before its teardown ran.

    Each session has its own folder `test-artifacts/stack-<pid>`; a folder whose pytest is gone
    is stale. Concurrent sessions (other pids, still alive) are left alone.
    Only groups whose leader is still the recorded process are killed (pid reuse guard).
    """
    for folder in ARTIFACTS.glob("stack-*"):
        try:
            pid = int(folder.name.split("-", 1)[1])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # that session is still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        stacklib.stop_recorded(folder)
        # Logs of a failed session stay a while for whoever investigates it.
        with contextlib.suppress(OSError):
            if time.time() - folder.stat().st_mtime > 3600:
                shutil.rmtree(folder, ignore_errors=True)


class _SessionStack:
    """The session's services; each starts on first use, the environment is fixed up front."""

    def __init__(self):
        _clear_stale_stacks()
        self.stack = stacklib.Stack(ARTIFACTS / f"stack-{os.getpid()}", project=TEST_PROJECT,
                                    signing_key=TEST_SIGNING_KEY, bucket=TEST_BUCKET)
        # Push is opt-in for tests (mb_env_push / functions_url_push): with it on, every
        # connection would start a Gmail watch and notifications would race the polls under test.
        self.stack.functions_push = False
        # Every process's Firestore writes, checked after each test by tests/strict_firestore.py.
        self.stack.write_log = str(self.stack.state_dir / "document-writes.log")
        self._stopped = False

    def ensure(self, *names: str) -> None:
        try:
            self.stack.start(names)
        except stacklib.StackError as e:
            pytest.fail(f"local stack: {e}", pytrace=False)

    def service(self, name: str) -> stacklib.Service:
        return self.stack.services[name]

    def env(self, *, push: bool = False, functions_url: str | None = None) -> dict[str, str]:
        return self.stack.env(push=push, functions_url=functions_url)

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            problems = self.stack.stop()
            if problems:
                print(f"\nlocal stack: {'; '.join(problems)}", file=sys.stderr)


@pytest.fixture(scope="session")
def _stack(request):
    session = _SessionStack()
    atexit.register(session.stop)  # also covers a crash out of pytest's teardown
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # a CI timeout: tear down like Ctrl-C does
        raise KeyboardInterrupt

    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield session
    finally:
        session.stop()
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
        # Logs stay for a failed session (until the next session starts), go for a clean one.
        if request.session.testsfailed:
            print(f"\nlocal stack logs: {session.stack.log_dir}", file=sys.stderr)
        else:
            shutil.rmtree(session.stack.state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def _core_services(_stack):
    """Firestore, the fake and storage, started together (faster than one after another)."""
    _stack.ensure("firestore", "fake_google", "storage")
    return _stack


# --------------------------------------------------------------------------- Firestore


@pytest.fixture(scope="session")
def firestore_emulator(_stack) -> str:
    """host:port of the session's Firestore emulator."""
    _stack.ensure("firestore")
    return f"{stacklib.HOST}:{_stack.service('firestore').port}"


def reset_firestore(host: str, project: str = TEST_PROJECT) -> None:
    response = requests.delete(
        f"http://{host}/emulator/v1/projects/{project}/databases/(default)/documents", timeout=30)
    response.raise_for_status()


@pytest.fixture
def firestore(firestore_emulator) -> str:
    """The emulator host, with every document of the test project deleted first."""
    reset_firestore(firestore_emulator)
    return firestore_emulator


# --------------------------------------------------------------------------- the fake Google server


class FakeGoogle:
    """The fake Google server's control plane (tests/fakes/README.md), JSON in and out."""

    def __init__(self, url: str):
        self.url = url
        self.http = requests.Session()

    def _json(self, response: requests.Response):
        if response.status_code >= 400:
            raise requests.HTTPError(
                f"{response.request.method} {response.url} -> {response.status_code}: {response.text[:500]}",
                response=response)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return response.text

    def post(self, path: str, json=None, data=None, headers=None):
        """POST; `data` as bytes is sent as message/rfc822 (message delivery)."""
        if isinstance(data, (bytes, bytearray)) and not (headers and "Content-Type" in headers):
            headers = {**(headers or {}), "Content-Type": "message/rfc822"}
        return self._json(self.http.post(self.url + path, json=json, data=data, headers=headers, timeout=60))

    def get(self, path: str, params=None):
        return self._json(self.http.get(self.url + path, params=params, timeout=60))

    def reset(self) -> None:
        self.post("/_fake/reset")


@pytest.fixture(scope="session")
def fake_google(_stack) -> str:
    """Base URL of the session's fake Google server."""
    _stack.ensure("fake_google")
    return _stack.service("fake_google").url


@pytest.fixture
def fake(fake_google) -> FakeGoogle:
    """The fake, reset (`POST /_fake/reset`) before the test."""
    client = FakeGoogle(fake_google)
    client.reset()
    yield client
    client.http.close()


# --------------------------------------------------------------------------- Storage and Pub/Sub


@pytest.fixture(scope="session")
def storage_emulator(_stack) -> str:
    """Base URL of the session's Cloud Storage emulator; the attachments bucket exists."""
    _stack.ensure("storage")
    return _stack.service("storage").url


@pytest.fixture(scope="session")
def pubsub_emulator(_stack) -> str:
    """host:port of the session's Pub/Sub emulator; the Gmail push topic exists."""
    if stacklib.pubsub_command(_stack.service("pubsub").port, TEST_PROJECT) is None:
        # A missing emulator fails the run: skipping would leave every push test silently green.
        pytest.fail("no Pub/Sub emulator on this machine: install the gcloud Pub/Sub emulator (README.md, "
                    "'The local stack')", pytrace=False)
    _stack.ensure("pubsub")
    return f"{stacklib.HOST}:{_stack.service('pubsub').port}"


# --------------------------------------------------------------------------- environments


def _apply(monkeypatch, env: dict[str, str]) -> dict[str, str]:
    for key in ("PUBSUB_EMULATOR_HOST", "MAILBRIDGE_PUBSUB_TOPIC", "MAILBRIDGE_WORK_TOPIC", "MAILBRIDGE_EVENTS_TOPIC",
                "MAILBRIDGE_EVENTS_SUBSCRIPTION", "OAUTHLIB_INSECURE_TRANSPORT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return dict(env)


@pytest.fixture
def mb_env(_core_services, firestore, fake, storage_emulator, monkeypatch) -> dict[str, str]:
    """Every setting of the functions/CLI pointing at the session's services (push off).

    Instance production, project mailbridge-test, a fixed signing key; MAILBRIDGE_FUNCTIONS_URL
    is the address the `functions_url` server has (or will have), so redirect URIs match it.
    """
    return _apply(monkeypatch, _core_services.env(push=False))


@pytest.fixture(scope="session")
def functions_url(_stack) -> str:
    """Base URL of every function served over HTTP, with the same settings as mb_env."""
    _stack.ensure("firestore", "fake_google", "storage", "functions")
    return _stack.service("functions").url


@pytest.fixture(scope="session")
def functions_url_push(_stack, pubsub_emulator) -> str:
    """A second functions server with push on; the push subscription delivers to its /push."""
    _stack.ensure("firestore", "fake_google", "storage")
    try:
        service = _stack.stack.start_functions("functions_push", push=True)
        stacklib.create_push_subscription(pubsub_emulator, _stack.stack.topic, TEST_PROJECT,
                                          stacklib.PUSH_SUBSCRIPTION, service.url + "/push")
        stacklib.create_work_subscription(pubsub_emulator, TEST_PROJECT, service.url + "/push")
    except stacklib.StackError as e:
        pytest.fail(f"local stack: {e}", pytrace=False)
    return service.url


@pytest.fixture
def mb_env_push(_stack, mb_env, functions_url_push, monkeypatch) -> dict[str, str]:
    """mb_env with push on: Pub/Sub emulator and topic, MAILBRIDGE_FUNCTIONS_URL = the
    push-subscribed functions server."""
    return _apply(monkeypatch, _stack.env(push=True, functions_url=functions_url_push))
