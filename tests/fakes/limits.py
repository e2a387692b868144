"""Gmail quota accounting (Google's per-method units, a per-user rolling window) and injected
faults, plus the per-user call statistics served by /_fake/stats.
"""

from __future__ import annotations

import collections
import datetime
import random
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import GoogleApiError

DEFAULT_QUOTA_PER_MINUTE = 6000
DEFAULT_PROJECT_QUOTA_PER_MINUTE = 1_200_000
DEFAULT_WINDOW_SECONDS = 60.0

# Google's "Usage limits" table for the Gmail API (quota units per method).
QUOTA_UNITS = {
    "gmail.users.getProfile": 1,
    "gmail.users.watch": 100,
    "gmail.users.stop": 50,
    "gmail.users.history.list": 2,
    "gmail.users.labels.list": 1,
    "gmail.users.labels.get": 1,
    "gmail.users.labels.create": 5,
    "gmail.users.labels.update": 5,
    "gmail.users.labels.patch": 5,
    "gmail.users.labels.delete": 5,
    "gmail.users.messages.list": 5,
    "gmail.users.messages.get": 5,
    "gmail.users.messages.modify": 5,
    "gmail.users.messages.trash": 5,
    "gmail.users.messages.untrash": 5,
    "gmail.users.messages.delete": 10,
    "gmail.users.messages.insert": 25,
    "gmail.users.messages.import": 25,
    "gmail.users.messages.batchModify": 50,
    "gmail.users.messages.batchDelete": 50,
    "gmail.users.messages.send": 100,
    "gmail.users.messages.attachments.get": 5,
    "gmail.users.threads.get": 10,
    "gmail.users.threads.list": 10,
    "gmail.users.settings.sendAs.list": 1,
    "gmail.users.settings.sendAs.get": 1,
}


@dataclass
class UserStats:
    quota_units: int = 0
    calls: collections.Counter = field(default_factory=collections.Counter)
    rate_limited: int = 0
    faulted: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"quota_units": self.quota_units, "calls": dict(self.calls),
                "rate_limited": self.rate_limited, "faulted": self.faulted}


class _Window:
    """Units charged in a rolling window, with a running total so a check costs O(1) amortized."""

    def __init__(self) -> None:
        self.entries: collections.deque = collections.deque()
        self.total = 0

    def used(self, now: float, seconds: float) -> int:
        while self.entries and self.entries[0][0] <= now - seconds:
            self.total -= self.entries.popleft()[1]
        return self.total

    def add(self, now: float, units: int) -> None:
        self.entries.append((now, units))
        self.total += units

    def retry_after(self, now: float, seconds: float) -> float:
        return max(0.0, self.entries[0][0] + seconds - now) if self.entries else 1.0


class QuotaLedger:
    """Per-user units and the project's units (every client of the fake is one Google Cloud
    project) in rolling windows; a call that would exceed either limit is refused."""

    def __init__(self, per_minute: int = DEFAULT_QUOTA_PER_MINUTE,
                 window_seconds: float = DEFAULT_WINDOW_SECONDS,
                 project_per_minute: int = DEFAULT_PROJECT_QUOTA_PER_MINUTE):
        self.per_minute = per_minute
        self.project_per_minute = project_per_minute
        self.window_seconds = window_seconds
        self.reset_counters()

    def reset_counters(self) -> None:
        self._windows: dict[str, _Window] = {}
        self._project_window = _Window()
        self.stats: dict[str, UserStats] = {}
        self.project = UserStats()

    def user(self, email: str) -> UserStats:
        return self.stats.setdefault(email, UserStats())

    def units_in_window(self, email: str, now: float | None = None) -> int:
        now = time.monotonic() if now is None else now
        return self._windows.setdefault(email, _Window()).used(now, self.window_seconds)

    def project_json(self) -> dict[str, Any]:
        return {**self.project.as_json(), "quota_per_minute": self.project_per_minute,
                "units_in_window": self._project_window.used(time.monotonic(),
                                                             self.window_seconds)}

    def charge(self, email: str, method_id: str) -> None:
        """Charge the call's units or raise Google's 429 without charging anything."""
        units = QUOTA_UNITS.get(method_id, 5)
        now = time.monotonic()
        window = self._windows.setdefault(email, _Window())
        if window.used(now, self.window_seconds) + units > self.per_minute:
            self.user(email).rate_limited += 1
            raise _rate_limited("User-rate limit exceeded.",
                                window.retry_after(now, self.window_seconds))
        project = self._project_window
        if project.used(now, self.window_seconds) + units > self.project_per_minute:
            self.user(email).rate_limited += 1
            self.project.rate_limited += 1
            raise _rate_limited(
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of "
                "service 'gmail.googleapis.com'.", project.retry_after(now, self.window_seconds))
        window.add(now, units)
        project.add(now, units)
        for stats in (self.user(email), self.project):
            stats.quota_units += units
            stats.calls[method_id] += 1


def _rate_limited(message: str, retry_after: float) -> GoogleApiError:
    retry_at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=retry_after)
    return GoogleApiError(
        429,
        message + "  Retry after " + retry_at.isoformat(timespec="milliseconds").replace(
            "+00:00", "Z"),
        reason="rateLimitExceeded",
        headers={"Retry-After": str(max(1, int(retry_after + 0.999)))},
    )


_FAULT_MESSAGES = {
    403: ("User-rate limit exceeded.", "userRateLimitExceeded"),
    429: ("Too many concurrent requests for user.", "rateLimitExceeded"),
    500: ("Backend Error", "backendError"),
    502: ("Bad Gateway", "backendError"),
    503: ("The service is currently unavailable.", "backendError"),
}


class Faults:
    """Random errors and latency for Gmail calls, reproducible through a seed."""

    def __init__(self) -> None:
        self.configure({})

    def configure(self, config: dict[str, Any]) -> dict[str, Any]:
        self.error_rate = float(config.get("error_rate") or 0.0)
        self.statuses = [int(s) for s in (config.get("statuses") or [500, 503])]
        self.latency_ms = float(config.get("latency_ms") or 0.0)
        self.seed = config.get("seed")
        methods = config.get("methods")
        # Accept "messages.get" as shorthand for "gmail.users.messages.get".
        self.methods = None if not methods else {
            m if m.startswith("gmail.") else "gmail.users." + m for m in methods
        }
        if self.error_rate <= 0:
            self.error_rate = 0.0
        self._random = random.Random(self.seed)
        return self.as_json()

    def as_json(self) -> dict[str, Any]:
        return {"error_rate": self.error_rate, "statuses": self.statuses,
                "latency_ms": self.latency_ms, "seed": self.seed,
                "methods": sorted(self.methods) if self.methods else None}

    def decide(self, method_id: str) -> tuple[float, GoogleApiError | None]:
        """(seconds to sleep, error to answer instead of executing) for one call."""
        if self.methods is not None and method_id not in self.methods:
            return 0.0, None
        error = None
        if self.error_rate and self._random.random() < self.error_rate:
            status = self._random.choice(self.statuses)
            message, reason = _FAULT_MESSAGES.get(status, ("Injected fault", "backendError"))
            error = GoogleApiError(status, message, reason=reason)
        return self.latency_ms / 1000.0, error
