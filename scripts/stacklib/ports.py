"""Ports of the local stack: reserving free ones up front, and probing whether a service answers."""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.request

from .common import HOST, StackError

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
