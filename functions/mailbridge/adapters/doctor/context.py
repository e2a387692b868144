"""What every check of `scripts/mailbridge doctor` shares: the Finding it returns, the project it
reads through `fetch`, and the finding to report when an answer cannot be read."""

from __future__ import annotations

import dataclasses
from typing import Callable


class HttpError(Exception):
    """An HTTP error answer; `message` is Google's error message, never a credential."""

    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.reason = reason


class DoctorError(Exception):
    """Doctor cannot start (no credentials); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Finding:
    name: str
    ok: bool
    problem: str = ""
    fix: str = ""


Fetch = Callable[[str], dict]


@dataclasses.dataclass
class Context:
    """The project under check and how to read it; the project number is read once, when needed."""

    project: str
    region: str
    prefix: str
    fetch: Fetch
    _project_number: str | None = None

    def service_name(self, function: str) -> str:
        return f"{self.prefix}-{function.replace('_', '-')}"

    @property
    def invoker(self) -> str:
        return f"{self.prefix}-invoker@{self.project}.iam.gserviceaccount.com"

    def project_number(self) -> str:
        if self._project_number is None:
            answer = self.fetch(f"https://cloudresourcemanager.googleapis.com/v3/projects/{self.project}")
            self._project_number = answer["name"].rsplit("/", 1)[-1]
        return self._project_number

    def function_url(self, function: str) -> str:
        # Cloud Run's deterministic URL, as terraform/main.tf computes it (local.function_urls).
        return f"https://{self.service_name(function)}-{self.project_number()}.{self.region}.run.app"


def unreadable(name: str, error: HttpError, what: str, role: str) -> Finding:
    if error.reason == "SERVICE_DISABLED" or "has not been used" in error.message:
        fix = "enable the API named in the message (terraform apply does), then run doctor again"
    elif error.status == 403:
        fix = f"run doctor as someone with {role} on the project (gcloud auth application-default login)"
    else:
        fix = "run doctor again; if it persists, check the project id and region"
    return Finding(name, False, f"cannot read {what}: {error.message}", fix)


_MISSING = object()


def read(context: Context, name: str, url: str, what: str, role: str, missing: Finding | object = _MISSING):
    """The answer at `url`, or the Finding to report instead: `missing` on 404 (when given), an
    "unreadable" finding for any other error."""
    try:
        return context.fetch(url)
    except HttpError as e:
        if e.status == 404 and missing is not _MISSING:
            return missing
        return unreadable(name, e, what, role)
