"""`scripts/mailbridge doctor`: checks a real Google Cloud project for what `terraform apply` and a
first mailbox connection need, and says how to fix each problem (terraform/README.md).

One module per thing checked: `apis`, `policies` (organisation policies), `deployment` (Firestore,
the Cloud Run services, the admin sign-in secret), `triggers` (scheduler job, Gmail push topic),
`oauth_clients` (redirect URIs); `context` holds what they share, `http_client` the real client.

Stdlib only at import time: the HTTP client (google-auth, application default credentials) is
built lazily by `default_fetch`, and tests inject a `fetch` that replays recorded responses.
`fetch(url)` returns the decoded JSON body (or {"status", "text"} for a non-JSON answer) and
raises `HttpError` for an HTTP error status.
"""

from __future__ import annotations

import sys
from typing import Iterable

from mailbridge.adapters.doctor.apis import REQUIRED_APIS, check_apis
from mailbridge.adapters.doctor.context import Context, DoctorError, Fetch, Finding, HttpError
from mailbridge.adapters.doctor.deployment import (
    FUNCTIONS, INTERNET_CALLED, check_admin_sign_in_secret, check_firestore, check_services,
)
from mailbridge.adapters.doctor.http_client import default_fetch, http_error
from mailbridge.adapters.doctor.oauth_clients import ADMIN_REDIRECT_PATH, check_redirect_uri
from mailbridge.adapters.doctor.policies import LOCATION_GROUPS, check_organisation_policies
from mailbridge.adapters.doctor.triggers import GMAIL_PUSH_ACCOUNT, check_push_topic, check_scheduler

__all__ = [
    "ADMIN_REDIRECT_PATH", "FUNCTIONS", "GMAIL_PUSH_ACCOUNT", "INTERNET_CALLED", "LOCATION_GROUPS", "REQUIRED_APIS",
    "DoctorError", "Fetch", "Finding", "HttpError",
    "check_admin_sign_in_secret", "check_apis", "check_firestore", "check_organisation_policies", "check_push_topic",
    "check_redirect_uri", "check_scheduler", "check_services", "default_fetch", "format_findings", "http_error",
    "run", "run_checks",
]


def run_checks(project: str, region: str, prefix: str, fetch: Fetch,
               client_ids: Iterable[str] = (), admin_client_id: str = "") -> list[Finding]:
    """Every check, in the order an operator fixes things. `client_ids`: OAuth client ids whose
    registered redirect URI should be probed (the mailboxes' credential sets of this instance);
    `admin_client_id`: the admin sign-in client, probed with the admin pages' redirect URI
    (README.md, "Admin access"). Google has no API that lists a client's redirect URIs."""
    context = Context(project, region, prefix, fetch)
    findings = [check_apis(context)]
    findings += check_organisation_policies(context)
    findings.append(check_firestore(context))
    findings += check_services(context)
    findings.append(check_scheduler(context))
    findings.append(check_push_topic(context))
    findings.append(check_admin_sign_in_secret(context))
    findings += [check_redirect_uri(context, client_id) for client_id in client_ids if client_id]
    if admin_client_id:
        findings.append(check_redirect_uri(context, admin_client_id, "admin", ADMIN_REDIRECT_PATH))
    return findings


def format_findings(findings: list[Finding]) -> str:
    lines = []
    for finding in findings:
        if finding.ok:
            lines.append(f"ok    {finding.name}")
        else:
            lines.append(f"FAIL  {finding.name}: {finding.problem}")
            if finding.fix:
                lines.append(f"      fix: {finding.fix}")
    failed = sum(not finding.ok for finding in findings)
    lines.append(f"{len(findings) - failed} ok, {failed} to fix")
    return "\n".join(lines)


def run(project: str, region: str, prefix: str, *, fetch: Fetch | None = None, client_ids: Iterable[str] = (),
        out=None, admin_client_id: str = "") -> int:
    """Print the findings; exit status 0 when everything is ready, 1 when something needs fixing
    or doctor cannot start (one line on stderr)."""
    try:
        findings = run_checks(project, region, prefix, fetch or default_fetch(project), client_ids, admin_client_id)
    except DoctorError as e:
        print(f"doctor: {e}", file=sys.stderr)
        return 1
    print(format_findings(findings), file=out or sys.stdout)
    return 0 if all(finding.ok for finding in findings) else 1
