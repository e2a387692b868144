"""The stack's processes: each service runs in its own process group with its log in a file, is
waited for until it answers, and is stopped by group, verifying that its ports close."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .common import HOST, REPO, StackError
from .ports import http_answers, port_is_listening


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


def spawn(service: Service, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path = REPO) -> Service:
    """Start `argv` as `service` in a new process group, its output appended to its log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    service.argv = argv
    service.log = str(log_dir / f"{service.name}.log")
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
    return service


def wait_until_answering(services: list[Service], timeout: float = 60.0, on_ready=None) -> None:
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


def group_alive(pgid: int) -> bool:
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


def same_process(pid: int | None, create_time: float | None) -> bool:
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
    while time.monotonic() < deadline and group_alive(pgid):
        time.sleep(0.05)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and group_alive(pgid):
            time.sleep(0.05)


def wait_ports_closed(ports, timeout: float = 5.0) -> list[int]:
    """Ports still listening after `timeout` (empty when all closed)."""
    deadline = time.monotonic() + timeout
    still = [p for p in ports if port_is_listening(p)]
    while still and time.monotonic() < deadline:
        time.sleep(0.05)
        still = [p for p in still if port_is_listening(p)]
    return still
