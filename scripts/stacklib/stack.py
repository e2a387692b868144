"""A `Stack`: one set of local services with ports fixed up front, started lazily and in parallel,
recorded in `<state_dir>/pids.json`, stopped together."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from pathlib import Path

from . import functions, processes
from .common import HOST, REPO, StackError
from .fake_google import fake_google_command, register_admin_client
from .firestore import NPM_FIRESTORE_DIR, firestore_command
from .functions import functions_command, functions_env, stored_signing_key
from .ports import free_port
from .processes import Service, kill_group, same_process, wait_ports_closed, wait_until_answering
from .pubsub import (EVENTS_SUBSCRIPTION, EVENTS_TOPIC, PUSH_SUBSCRIPTION, PUSH_TOPIC, WORK_TOPIC,
                     create_events_subscription, create_push_subscription, create_topic, create_work_subscription,
                     pubsub_command, work_topics)
from .storage import ATTACHMENTS_BUCKET, create_bucket, storage_command

LOCAL_PROJECT = "mailbridge-local"
# Order matters only for display and for startup: functions come last.
SERVICES = ("firestore", "fake_google", "pubsub", "storage", "functions")


class Stack:
    """One set of services with fixed ports, started lazily, stopped together."""

    def __init__(self, state_dir: str | Path, *, project: str = LOCAL_PROJECT,
                 instance: str = "production", signing_key: str | None = None,
                 bucket: str = ATTACHMENTS_BUCKET, ports: dict[str, int] | None = None):
        self.state_dir = Path(state_dir)
        self.log_dir = self.state_dir / "logs"
        # MAILBRIDGE_WRITE_LOG of its processes when set (tests and the bench count every document
        # write: adapters/firestore/accounting.py); `scripts/stack up` under the bench inherits it.
        self.write_log = os.environ.get("MAILBRIDGE_WRITE_LOG", "")
        self.project = project
        self.instance = instance
        self.bucket = bucket
        self.signing_key = signing_key or stored_signing_key(self.state_dir)
        ports = ports or {}
        self.services = {
            "firestore": Service("firestore", ports.get("firestore") or free_port()),
            "fake_google": Service("fake_google", ports.get("fake_google") or free_port(), probe_path="/_fake/health"),
            "pubsub": Service("pubsub", ports.get("pubsub") or free_port()),
            "storage": Service("storage", ports.get("storage") or free_port()),
            "functions": Service("functions", ports.get("functions") or free_port(), probe_path="/_health"),
        }
        self.extra: dict[str, Service] = {}  # e.g. a second functions server in tests
        self._lock = threading.RLock()
        self.pubsub_available = True
        self.functions_push = True  # the main functions server gets the Pub/Sub settings

    # ----- environment (functions.py)

    def env(self, *, push: bool = True, functions_url: str | None = None) -> dict[str, str]:
        """The environment of the functions and the CLI (README.md, CLI)."""
        return functions_env(self, push=push, functions_url=functions_url)

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/{PUSH_TOPIC}"

    @property
    def work_topic(self) -> str:
        return f"projects/{self.project}/topics/{WORK_TOPIC}"

    @property
    def events_topic(self) -> str:
        return f"projects/{self.project}/topics/{EVENTS_TOPIC}"

    @property
    def events_subscription(self) -> str:
        return f"projects/{self.project}/subscriptions/{EVENTS_SUBSCRIPTION}"

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return functions.process_env(extra)

    def write_env_file(self) -> Path:
        return functions.write_env_file(self.state_dir / "env", self.env())

    # ----- starting

    def spawn(self, service: Service, argv: list[str], env: dict[str, str], cwd: Path = REPO) -> Service:
        processes.spawn(service, argv, env, self.log_dir, cwd)
        self.save_pids()
        return service

    def wait(self, services: list[Service], timeout: float = 60.0, on_ready=None) -> None:
        """Wait until every service answers; on failure name it and show its log.

        `on_ready(service)` runs as each one answers, so setup overlaps slower startups.
        """
        wait_until_answering(services, timeout, on_ready)
        self.save_pids()

    def _argv(self, name: str) -> list[str] | None:
        s = self.services[name]
        if name == "firestore":
            return firestore_command(s.port)
        if name == "fake_google":
            if not (REPO / "tests/fakes/server.py").is_file():
                raise StackError("fake_google: tests/fakes/server.py does not exist")
            return fake_google_command(s.port)
        if name == "pubsub":
            return pubsub_command(s.port, self.project)
        if name == "storage":
            return storage_command(s.port)
        if name == "functions":
            if not (REPO / "functions/main.py").is_file():
                raise StackError("functions: functions/main.py does not exist")
            return functions_command(s.port)
        raise StackError(f"unknown service {name!r}")

    def _service_env(self, name: str) -> dict[str, str]:
        if name == "fake_google":
            # The fake publishes Gmail watch notifications to the Pub/Sub emulator.
            extra = {}
            if self.pubsub_available:
                extra["PUBSUB_EMULATOR_HOST"] = f"{HOST}:{self.services['pubsub'].port}"
            return self.process_env(extra)
        if name == "functions":
            return self.process_env(self.env(push=self.functions_push))
        return self.process_env()

    def start_functions(self, name: str, *, push: bool, timeout: float = 90.0) -> Service:
        """An additional functions server (own port and env), e.g. one subscribed to push."""
        with self._lock:
            service = self.extra.get(name)
            if service is not None and service.process is not None and service.process.poll() is None:
                return service
            if not (REPO / "functions/main.py").is_file():
                raise StackError(f"{name}: functions/main.py does not exist")
            service = self.extra[name] = Service(name, free_port(), probe_path="/_health")
            env = self.process_env(self.env(push=push, functions_url=service.url))
            self.spawn(service, functions_command(service.port), env)
            try:
                self.wait([service], timeout=timeout)
            except BaseException:
                self.stop_service(service)
                raise
            return service

    def start(self, names, timeout: float = 90.0) -> None:
        """Start the named services (those not running yet) in parallel and wait for all."""
        with self._lock:
            commands = []  # every command is resolved before anything starts
            for name in names:
                service = self.services[name]
                if service.process is not None and service.process.poll() is None:
                    continue
                argv = self._argv(name)
                if argv is None:  # only pubsub is optional
                    self.pubsub_available = False
                    print("stack: warning: no Pub/Sub emulator found; push is off", file=sys.stderr)
                    continue
                commands.append((service, argv))
            started = []
            try:
                for service, argv in commands:
                    cwd = REPO
                    if argv[0] == "node":  # npm Firestore fallback: resolve the package there
                        cwd, service.probe_path = NPM_FIRESTORE_DIR, None
                    started.append(self.spawn(service, argv, self._service_env(service.name), cwd=cwd))
                setup = _Setup()
                self.wait(started, timeout=timeout, on_ready=lambda svc: setup.run(self._setup_job(svc.name)))
                setup.finish()
            except BaseException:
                for service in started:
                    self.stop_service(service)
                raise

    def admin_redirect_uris(self) -> list[str]:
        """Where the fake may send an admin back after sign-in: every functions server's admin."""
        servers = [self.services["functions"], *self.extra.values()]
        return [f"{server.url}/admin/signin/callback" for server in servers]

    def _setup_job(self, name: str):
        """What a service needs once it answers: the bucket, the topics, the push subscriptions and
        the events' pull subscription, the admin sign-in client on the fake."""
        if name == "fake_google":
            return lambda: register_admin_client(self.services["fake_google"].url, self.project,
                                                 self.admin_redirect_uris())
        if name == "storage":
            return lambda: create_bucket(self.services["storage"].url, self.project, self.bucket)
        if name == "pubsub":
            def pubsub_setup():
                host = f"{HOST}:{self.services['pubsub'].port}"
                create_topic(host, self.topic)
                for topic in work_topics(self.project):
                    create_topic(host, topic)
                create_events_subscription(host, self.project)
                if self.functions_push and self.services["functions"].process is not None:
                    # Pub/Sub retries pushes, so the functions need not answer yet.
                    create_push_subscription(host, self.topic, self.project, PUSH_SUBSCRIPTION,
                                             self.services["functions"].url + "/push")
                    create_work_subscription(host, self.project, self.services["functions"].url + "/push")
            return pubsub_setup
        return None

    def up(self, timeout: float = 90.0) -> None:
        """Start everything. Ports are fixed up front, so all five start at once."""
        try:
            self.start(SERVICES, timeout=timeout)
        except BaseException:
            self.stop()
            raise
        self.write_env_file()

    # ----- stopping

    def stop_service(self, service: Service) -> list[int]:
        if service.pgid and same_process(service.pid, service.create_time):
            kill_group(service.pgid)
        elif service.pgid and service.process is not None:
            kill_group(service.pgid)  # our own child: the pgid is ours even if the leader died
        if service.process is not None:
            with contextlib.suppress(Exception):
                service.process.wait(timeout=1)
        still = wait_ports_closed(service.ports or [service.port])
        service.process = None
        service.pid = service.pgid = None
        return still

    def stop(self) -> list[str]:
        """Stop every service this Stack started; returns problems (ports still open)."""
        problems = []
        with self._lock:
            for service in list(self.services.values()) + list(self.extra.values()):
                if service.pid is None:
                    continue
                still = self.stop_service(service)
                if still:
                    problems.append(f"{service.name}: port(s) {still} still listening")
            pids = self.state_dir / "pids.json"
            with contextlib.suppress(FileNotFoundError):
                pids.unlink()
        return problems

    def save_pids(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        running = {name: s.record() for name, s in {**self.services, **self.extra}.items() if s.pid}
        data = {"project": self.project, "instance": self.instance,
                "ports": {name: s.port for name, s in self.services.items()},
                "services": running}
        tmp = self.state_dir / "pids.json.tmp"
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(self.state_dir / "pids.json")


class _Setup:
    """Setup jobs in threads; `finish` waits for all and raises the first failure."""

    def __init__(self):
        self.threads: list[threading.Thread] = []
        self.errors: list[Exception] = []

    def run(self, job) -> None:
        if job is None:
            return

        def target():
            try:
                job()
            except Exception as e:  # raised again by finish(), the message names the service
                self.errors.append(e)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def finish(self) -> None:
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise StackError(str(self.errors[0])) from self.errors[0]
