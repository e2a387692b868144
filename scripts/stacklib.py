"""Process management for the local stack, shared by `scripts/stack` and tests/conftest.py.

A `Stack` reserves a free port for every service up front (so every address, and therefore the
whole environment, is known before anything starts), starts services lazily, each in its own
process group with its log in `<state_dir>/logs/<name>.log`, records them in
`<state_dir>/pids.json`, and stops them by process group, verifying that their ports close.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# Not resolved: a copy of scripts/ in a scratch tree works on that tree.
REPO = Path(os.path.abspath(__file__)).parent.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"

LOCAL_PROJECT = "mailbridge-local"
ATTACHMENTS_BUCKET = "mailbridge-local-attachments"
PUSH_TOPIC = "gmail-push"
PUSH_SUBSCRIPTION = "gmail-push-sub"
# The work queue (docs/architecture.md, "Queue"): topic {prefix}-work, pushed to the same `push`.
WORK_TOPIC = "mailbridge-work"
WORK_SUBSCRIPTION = "mailbridge-work-push"
# The emulator keeps at most two pushes in flight per subscription (scripts/bench_scale.py
# measures it) and ignores subscription filters, so the local work queue is sharded into 16
# topics, each with its own push subscription (MAILBRIDGE_WORK_SHARDS; shard 0 is WORK_TOPIC,
# shard k is WORK_TOPIC-kk): 32 deliveries in flight, as Cloud Run runs many `push` instances at
# once. A deployment keeps one topic: Terraform leaves the variable unset (docs/architecture.md, "Queue").
WORK_SHARDS = 16
# The local push subscription's ack deadline (= how long the emulator waits for `push`); the
# functions' push budget stays below it, as Terraform keeps it below the push timeout.
WORK_ACK_DEADLINE_S = 120
WORK_PUSH_BUDGET_S = 60
HOST = "127.0.0.1"
# The admin pages' own OAuth client on the fake (README.md, "Admin access"): sign in with Google.
ADMIN_CLIENT_ID = "mailbridge-admin-local.apps.googleusercontent.com"
ADMIN_CLIENT_SECRET_ID = "mailbridge-admin-oauth-client-secret"

# Order matters only for display and for startup: functions come last.
SERVICES = ("firestore", "fake_google", "pubsub", "storage", "functions")

SDK_CANDIDATES = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    os.path.expanduser("~/google-cloud-sdk"),
)


class StackError(Exception):
    """A service did not start, did not answer, or could not be stopped."""


# --------------------------------------------------------------------------- ports

_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A port that is free now and that this process has not handed out before."""
    with _port_lock:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((HOST, 0))
                port = sock.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise StackError("could not find a free port")


def port_is_listening(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def http_answers(url: str, timeout: float = 1.0) -> bool:
    """True when `url` answers HTTP with a status below 500 (the service is up)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- locating binaries


def _sdk_root() -> Path | None:
    for candidate in [os.environ.get("CLOUDSDK_ROOT_DIR", "")] + list(SDK_CANDIDATES):
        if candidate and Path(candidate, "platform").is_dir():
            return Path(candidate)
    gcloud = shutil.which("gcloud")
    if gcloud:  # slow (about a second), so only when the usual places are empty
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True, text=True, timeout=30,
            ).stdout.strip()
            if out and Path(out, "platform").is_dir():
                return Path(out)
    return None


def firestore_command(port: int) -> list[str]:
    root = _sdk_root()
    jar = root / "platform/cloud-firestore-emulator/cloud-firestore-emulator.jar" if root else None
    java = shutil.which("java")
    if jar and jar.is_file() and java:
        # The jar has no Main-Class; this is what the SDK's cloud_firestore_emulator script runs.
        return [java, "-Duser.language=en", "-cp", str(jar),
                "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start",
                f"--host={HOST}", f"--port={port}"]
    if shutil.which("gcloud"):
        return ["gcloud", "emulators", "firestore", "start", f"--host-port={HOST}:{port}", "--quiet"]
    if shutil.which("node") and shutil.which("npm"):
        return _npm_firestore_command(port)
    raise StackError("firestore: no emulator found (need the gcloud cloud-firestore-emulator "
                     "component with java, gcloud, or npx for @firestore-emulator/server)")


NPM_FIRESTORE_DIR = REPO / ".stack" / "npm-firestore"


def _npm_firestore_command(port: int) -> list[str]:
    """Last resort where gcloud is absent: npm @firestore-emulator/server (a library, no CLI).

    It speaks gRPC only, so the stack probes it over TCP and cannot reset it over HTTP.
    """
    if not (NPM_FIRESTORE_DIR / "node_modules/@firestore-emulator/server").is_dir():
        NPM_FIRESTORE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", str(NPM_FIRESTORE_DIR),
                        "@firestore-emulator/server"], check=True, timeout=300)
    script = ("import('@firestore-emulator/server').then(async (m) => {"
              f" const server = new m.FirestoreServer(); await server.start({port});"
              f" console.log('firestore emulator on {HOST}:{port}'); }})")
    return ["node", "--input-type=module", "-e", script]


def pubsub_command(port: int, project: str) -> list[str] | None:
    root = _sdk_root()
    java = shutil.which("java")
    if root and java:
        jars = sorted((root / "platform/pubsub-emulator/lib").glob("cloud-pubsub-emulator-*.jar"))
        if jars:
            return [java, "-jar", str(jars[-1]), f"--host={HOST}", f"--port={port}"]
    if shutil.which("gcloud"):
        return ["gcloud", "beta", "emulators", "pubsub", "start",
                f"--host-port={HOST}:{port}", f"--project={project}", "--quiet"]
    return None


def _venv_python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def storage_command(port: int) -> list[str]:
    exe = Path(_venv_python()).parent / "gcp-storage-emulator"
    base = [str(exe)] if exe.exists() else [_venv_python(), "-m", "gcp_storage_emulator"]
    return base + ["start", f"--host={HOST}", f"--port={port}", "--in-memory"]


def fake_google_command(port: int) -> list[str]:
    return [_venv_python(), str(REPO / "tests/fakes/server.py"), "--host", HOST, "--port", str(port)]


def functions_command(port: int) -> list[str]:
    return [_venv_python(), str(REPO / "scripts/serve_functions.py"), "--host", HOST, "--port", str(port)]


# --------------------------------------------------------------------------- processes


@dataclass
class Service:
    name: str
    port: int
    argv: list[str] = field(default_factory=list)
    probe_path: str | None = "/"  # None: probe by TCP connect (gRPC-only)
    pid: int | None = None
    pgid: int | None = None
    create_time: float | None = None
    log: str = ""
    ports: list[int] = field(default_factory=list)  # every port the group listens on
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def answers(self, timeout: float = 1.0) -> bool:
        if self.probe_path is None:  # gRPC-only service
            return port_is_listening(self.port)
        return http_answers(self.url + self.probe_path, timeout=timeout)

    def record(self) -> dict:
        return {"pid": self.pid, "pgid": self.pgid, "create_time": self.create_time,
                "port": self.port, "ports": self.ports, "url": self.url,
                "probe": self.url + (self.probe_path or "/"), "tcp": self.probe_path is None, "log": self.log, "argv": self.argv}


def log_tail(path: str | Path, lines: int = 25) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of the group exists.

    Zombies count as gone: once `scripts/stack up` has exited, its children belong to PID 1,
    which in a container may reap them late or never.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        import psutil
    except ImportError:
        return True
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == pgid:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


def _same_process(pid: int | None, create_time: float | None) -> bool:
    """Guards against pid reuse: the recorded pid must still be the process we started."""
    if not pid:
        return False
    try:
        import psutil
    except ImportError:  # without psutil, trust the pid while it exists
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    try:
        proc = psutil.Process(pid)
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except psutil.Error:
        return False


def _listening_ports_of_group(pgid: int) -> list[int]:
    try:
        import psutil
    except ImportError:
        return []
    ports = set()
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) != pgid:
                continue
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    ports.add(conn.laddr.port)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return sorted(ports)


def kill_group(pgid: int, term_timeout: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + term_timeout
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.05)


def wait_ports_closed(ports, timeout: float = 5.0) -> list[int]:
    """Ports still listening after `timeout` (empty when all closed)."""
    deadline = time.monotonic() + timeout
    still = [p for p in ports if port_is_listening(p)]
    while still and time.monotonic() < deadline:
        time.sleep(0.05)
        still = [p for p in still if port_is_listening(p)]
    return still


# --------------------------------------------------------------------------- the stack


class Stack:
    """One set of services with fixed ports, started lazily, stopped together."""

    def __init__(self, state_dir: str | Path, *, project: str = LOCAL_PROJECT,
                 instance: str = "production", signing_key: str | None = None,
                 bucket: str = ATTACHMENTS_BUCKET, ports: dict[str, int] | None = None):
        self.state_dir = Path(state_dir)
        self.log_dir = self.state_dir / "logs"
        self.project = project
        self.instance = instance
        self.bucket = bucket
        self.signing_key = signing_key or self._stored_signing_key()
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

    # ----- environment

    def _stored_signing_key(self) -> str:
        path = self.state_dir / "signing_key"
        if path.is_file() and path.read_text().strip():
            return path.read_text().strip()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(32)
        path.write_text(key + "\n")
        path.chmod(0o600)
        return key

    def env(self, *, push: bool = True, functions_url: str | None = None) -> dict[str, str]:
        """The environment of the functions and the CLI (README.md, CLI)."""
        s = self.services
        fake = s["fake_google"].url
        env = {
            "FIRESTORE_EMULATOR_HOST": f"{HOST}:{s['firestore'].port}",
            "GOOGLE_CLOUD_PROJECT": self.project,
            "MAILBRIDGE_FUNCTIONS_URL": functions_url or s["functions"].url,
            "FAKE_GOOGLE_URL": fake,
            "MAILBRIDGE_INSTANCE": self.instance,
            "MAILBRIDGE_GMAIL_API_URL": fake,
            "MAILBRIDGE_OAUTH_AUTH_URL": f"{fake}/o/oauth2/v2/auth",
            "MAILBRIDGE_OAUTH_TOKEN_URL": f"{fake}/token",
            "MAILBRIDGE_OAUTH_REVOKE_URL": f"{fake}/revoke",
            "MAILBRIDGE_USERINFO_URL": f"{fake}/oauth2/v3/userinfo",
            "MAILBRIDGE_SECRET_MANAGER_URL": fake,
            "STORAGE_EMULATOR_HOST": s["storage"].url,
            "MAILBRIDGE_ATTACHMENTS_BUCKET": self.bucket,
            "MAILBRIDGE_SIGNING_KEY": self.signing_key,
            "MAILBRIDGE_VERIFY_INVOKER": "false",  # no OIDC tokens locally; poll/push log a warning per call
            "MAILBRIDGE_OAUTH_CERTS_URL": f"{fake}/oauth2/v1/certs",
            "MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID": ADMIN_CLIENT_ID,
            "MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID": ADMIN_CLIENT_SECRET_ID,
        }
        if push and self.pubsub_available:
            env["PUBSUB_EMULATOR_HOST"] = f"{HOST}:{s['pubsub'].port}"
            env["MAILBRIDGE_PUBSUB_TOPIC"] = self.topic
            env["MAILBRIDGE_WORK_TOPIC"] = self.work_topic
            env["MAILBRIDGE_WORK_SHARDS"] = str(WORK_SHARDS)
            env["MAILBRIDGE_PUSH_TIME_BUDGET_S"] = str(WORK_PUSH_BUDGET_S)
        return env

    @property
    def topic(self) -> str:
        return f"projects/{self.project}/topics/{PUSH_TOPIC}"

    @property
    def work_topic(self) -> str:
        return f"projects/{self.project}/topics/{WORK_TOPIC}"

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        for key in list(env):  # a developer's sourced .stack/env must not leak into a new stack
            if key.startswith("MAILBRIDGE_") or key in ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                                                       "STORAGE_EMULATOR_HOST", "FAKE_GOOGLE_URL"):
                del env[key]
        env.update(extra or {})
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def write_env_file(self) -> Path:
        path = self.state_dir / "env"
        lines = [f"export {k}={_shell_quote(v)}" for k, v in self.env().items()]
        path.write_text("# Written by scripts/stack up; use with: . .stack/env\n" + "\n".join(lines) + "\n")
        return path

    # ----- starting

    def spawn(self, service: Service, argv: list[str], env: dict[str, str], cwd: Path = REPO) -> Service:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service.argv = argv
        service.log = str(self.log_dir / f"{service.name}.log")
        with open(service.log, "ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(argv)}\n".encode())
            log.flush()
            try:
                service.process = subprocess.Popen(
                    argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )
            except OSError as e:
                raise StackError(f"{service.name}: could not run {argv[0]}: {e}") from e
        service.pid = service.process.pid
        service.pgid = os.getpgid(service.pid)
        with contextlib.suppress(Exception):
            import psutil
            service.create_time = psutil.Process(service.pid).create_time()
        self.save_pids()
        return service

    def wait(self, services: list[Service], timeout: float = 60.0, on_ready=None) -> None:
        """Wait until every service answers; on failure name it and show its log.

        `on_ready(service)` runs as each one answers, so setup overlaps slower startups.
        """
        pending = list(services)
        deadline = time.monotonic() + timeout
        while pending:
            for service in list(pending):
                code = service.process.poll() if service.process else None
                if code is not None:
                    raise StackError(f"{service.name} exited with code {code} before answering "
                                     f"on {service.url}{service.probe_path}; log {service.log}:\n"
                                     f"{log_tail(service.log)}")
                if service.answers(timeout=0.5):
                    service.ports = sorted(set(_listening_ports_of_group(service.pgid)) | {service.port})
                    pending.remove(service)
                    if on_ready is not None:
                        on_ready(service)
            if pending and time.monotonic() > deadline:
                service = pending[0]
                raise StackError(f"{service.name} did not answer on {service.url}{service.probe_path} "
                                 f"within {timeout:.0f}s; log {service.log}:\n{log_tail(service.log)}")
            if pending:
                time.sleep(0.1)
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
        """What a service needs once it answers: the bucket, the topic and push subscription,
        the admin sign-in client on the fake."""
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
        if service.pgid and _same_process(service.pid, service.create_time):
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
        if pgid and _same_process(rec.get("pid"), rec.get("create_time")):
            kill_group(pgid)
        elif pgid and _group_alive(pgid):
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
        alive = _same_process(rec.get("pid"), rec.get("create_time"))
        answers = alive and (port_is_listening(rec["port"]) if rec.get("tcp") else http_answers(rec.get("probe", "")))
        rows.append((name, rec.get("url", ""), alive, answers))
    return rows


# --------------------------------------------------------------------------- resources


def create_bucket(storage_url: str, project: str, bucket: str) -> None:
    """Create the attachments bucket through the official client (idempotent)."""
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=project, credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": storage_url})
    try:
        client.create_bucket(bucket)
    except exceptions.Conflict:
        pass
    except Exception as e:
        raise StackError(f"storage: could not create bucket {bucket}: {e}") from e


def register_admin_client(fake_url: str, project: str, redirect_uris: list[str],
                          client_secret: str | None = None) -> None:
    """Register the admin pages' OAuth client on the fake, as an admin does in Google's console,
    and keep its secret in the fake's Secret Manager (MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID)."""
    import base64
    import requests

    secret = client_secret or secrets.token_urlsafe(24)
    try:
        requests.post(f"{fake_url}/_fake/oauth/clients", json={
            "client_id": ADMIN_CLIENT_ID, "client_secret": secret, "redirect_uris": redirect_uris},
            timeout=10).raise_for_status()
        parent = f"{fake_url}/v1/projects/{project}/secrets"
        created = requests.post(parent, params={"secretId": ADMIN_CLIENT_SECRET_ID},
                                json={"replication": {"automatic": {}}}, timeout=10)
        if created.status_code not in (200, 409):
            created.raise_for_status()
        requests.post(f"{parent}/{ADMIN_CLIENT_SECRET_ID}:addVersion",
                      json={"payload": {"data": base64.b64encode(secret.encode()).decode()}},
                      timeout=10).raise_for_status()
    except requests.RequestException as e:
        raise StackError(f"fake_google: could not register the admin OAuth client: {e}") from e


def _pubsub_clients(host: str):
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    publisher = pubsub_v1.PublisherClient(
        transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)))
    subscriber = pubsub_v1.SubscriberClient(
        transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host)))
    return publisher, subscriber


def create_topic(host: str, topic: str) -> None:
    from google.api_core import exceptions

    publisher, _ = _pubsub_clients(host)
    try:
        publisher.create_topic(name=topic, timeout=10)
    except exceptions.AlreadyExists:
        pass
    except Exception as e:
        raise StackError(f"pubsub: could not create topic {topic}: {e}") from e


def work_topics(project: str, shards: int = WORK_SHARDS) -> list[str]:
    """The work queue's topic per shard (shard 0 is the work topic itself)."""
    base = f"projects/{project}/topics/{WORK_TOPIC}"
    return [base if shard == 0 else f"{base}-{shard:02d}" for shard in range(shards)]


def create_work_subscription(host: str, project: str, endpoint: str) -> list[str]:
    """The work queue's topics and their push subscriptions (terraform/queue.tf is the deployed
    twin): tasks to `push`, redelivered with backoff when it answers 429/5xx or does not answer
    in time. Called again, it repoints every subscription to `endpoint`."""
    from google.pubsub_v1 import types

    paths = []
    for shard, topic in enumerate(work_topics(project)):
        create_topic(host, topic)
        name = WORK_SUBSCRIPTION if shard == 0 else f"{WORK_SUBSCRIPTION}-{shard:02d}"
        paths.append(create_push_subscription(
            host, topic, project, name, endpoint, ack_deadline_s=WORK_ACK_DEADLINE_S,
            retry_policy=types.RetryPolicy(minimum_backoff={"seconds": 1}, maximum_backoff={"seconds": 10})))
    return paths


def create_push_subscription(host: str, topic: str, project: str, name: str, endpoint: str, *,
                             ack_deadline_s: int = 30, retry_policy=None) -> str:
    """Create (or repoint) the push subscription that delivers Gmail notifications to `push`."""
    from google.api_core import exceptions
    from google.pubsub_v1 import types

    _, subscriber = _pubsub_clients(host)
    path = f"projects/{project}/subscriptions/{name}"
    try:
        subscriber.create_subscription(request=types.Subscription(
            name=path, topic=topic, push_config=types.PushConfig(push_endpoint=endpoint),
            ack_deadline_seconds=ack_deadline_s, retry_policy=retry_policy), timeout=10)
    except exceptions.AlreadyExists:
        subscriber.modify_push_config(subscription=path,
                                      push_config=types.PushConfig(push_endpoint=endpoint), timeout=10)
    except Exception as e:
        raise StackError(f"pubsub: could not create subscription {path}: {e}") from e
    return path


def _shell_quote(value: str) -> str:
    import shlex
    return shlex.quote(value)
