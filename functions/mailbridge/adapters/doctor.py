"""`scripts/mailbridge doctor`: checks a real Google Cloud project for what `terraform apply` and a
first mailbox connection need, and says how to fix each problem (terraform/README.md).

Stdlib only at import time: the HTTP client (google-auth, application default credentials) is
built lazily by `default_fetch`, and tests inject a `fetch` that replays recorded responses.
`fetch(url)` returns the decoded JSON body (or {"status", "text"} for a non-JSON answer) and
raises `HttpError` for an HTTP error status.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Iterable
from urllib.parse import quote, urlencode, urlsplit

# The APIs terraform/services.tf enables (tests/unit/test_doctor.py keeps the two lists equal).
REQUIRED_APIS = (
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "gmail.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "orgpolicy.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
)
# Entry points of functions/main.py and whether a browser opens them (terraform/main.tf).
FUNCTIONS = {"admin": True, "api": False, "labels": False, "oauth_callback": True, "oauth_start": True,
             "poll": False, "push": False}
# Services that keep the invoker IAM check yet take traffic from anywhere: the helpdesk calls
# the JSON API from outside the project with an OIDC token (terraform/main.tf, `internet`).
INTERNET_CALLED = ("api",)
# Where Google returns an admin after sign-in: the admin URL + this (README.md, "Admin access").
ADMIN_REDIRECT_PATH = "/signin/callback"
GMAIL_PUSH_ACCOUNT = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
# Region prefixes inside the multi-region value groups of gcp.resourceLocations.
LOCATION_GROUPS = {"in:eu-locations": "europe-", "in:europe-locations": "europe-", "in:us-locations": "us-",
                   "in:asia-locations": "asia-", "in:northamerica-locations": "northamerica-",
                   "in:southamerica-locations": "southamerica-", "in:australia-locations": "australia-",
                   "in:me-locations": "me-", "in:africa-locations": "africa-"}


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


def run_checks(project: str, region: str, prefix: str, fetch: Fetch,
               client_ids: Iterable[str] = (), admin_client_id: str = "") -> list[Finding]:
    """Every check, in the order an operator fixes things. `client_ids`: OAuth client ids whose
    registered redirect URI should be probed (the mailboxes' credential sets of this instance);
    `admin_client_id`: the admin sign-in client, probed with the admin pages' redirect URI
    (README.md, "Admin access"). Google has no API that lists a client's redirect URIs."""
    context = _Context(project, region, prefix, fetch)
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
    import sys

    try:
        findings = run_checks(project, region, prefix, fetch or default_fetch(project), client_ids, admin_client_id)
    except DoctorError as e:
        print(f"doctor: {e}", file=sys.stderr)
        return 1
    print(format_findings(findings), file=out or sys.stdout)
    return 0 if all(finding.ok for finding in findings) else 1


# --- Checks ----------------------------------------------------------------------------------


@dataclasses.dataclass
class _Context:
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


def _unreadable(name: str, error: HttpError, what: str, role: str) -> Finding:
    if error.reason == "SERVICE_DISABLED" or "has not been used" in error.message:
        fix = "enable the API named in the message (terraform apply does), then run doctor again"
    elif error.status == 403:
        fix = f"run doctor as someone with {role} on the project (gcloud auth application-default login)"
    else:
        fix = "run doctor again; if it persists, check the project id and region"
    return Finding(name, False, f"cannot read {what}: {error.message}", fix)


_MISSING = object()


def _read(context: _Context, name: str, url: str, what: str, role: str, missing: Finding | object = _MISSING):
    """The answer at `url`, or the Finding to report instead: `missing` on 404 (when given), an
    "unreadable" finding for any other error."""
    try:
        return context.fetch(url)
    except HttpError as e:
        if e.status == 404 and missing is not _MISSING:
            return missing
        return _unreadable(name, e, what, role)


def check_apis(context: _Context) -> Finding:
    enabled: set[str] = set()
    page = ""
    try:
        while True:
            query = {"filter": "state:ENABLED", "pageSize": "200", **({"pageToken": page} if page else {})}
            answer = context.fetch(f"https://serviceusage.googleapis.com/v1/projects/{context.project}/services?"
                                   f"{urlencode(query)}")
            enabled |= {service["config"]["name"] for service in answer.get("services", [])}
            page = answer.get("nextPageToken", "")
            if not page:
                break
    except HttpError as e:
        return _unreadable("apis", e, "the enabled APIs", "roles/serviceusage.serviceUsageViewer")
    missing = [api for api in REQUIRED_APIS if api not in enabled]
    if not missing:
        return Finding("apis", True)
    return Finding("apis", False, f"not enabled: {', '.join(missing)}",
                   f"terraform apply enables them, or: gcloud services enable {' '.join(missing)} "
                   f"--project={context.project}")


def _effective_policy(context: _Context, constraint: str) -> dict:
    """The policy in force on the project; {} when the constraint does not exist (yet) there."""
    try:
        return context.fetch(f"https://orgpolicy.googleapis.com/v2/projects/{context.project}/policies/"
                             f"{constraint}:getEffectivePolicy")
    except HttpError as e:
        if e.status == 404 or (e.status == 400 and "constraint" in e.message.lower()):
            return {}
        raise


def _rules(policy: dict) -> list[dict]:
    return (policy.get("spec") or {}).get("rules") or []


def _enforced(policy: dict) -> bool:
    return any(rule.get("enforce") is True for rule in _rules(policy))


def check_organisation_policies(context: _Context) -> list[Finding]:
    """The policies Google sets by default on new organisations, and the ones that refuse what the
    Terraform creates (terraform/README.md, "Organisation policies")."""
    try:
        domains = _effective_policy(context, "iam.allowedPolicyMemberDomains")
        members = _effective_policy(context, "iam.managed.allowedPolicyMembers")
        invoker = _effective_policy(context, "run.managed.requireInvokerIam")
        ingress = _effective_policy(context, "run.allowedIngress")
        locations = _effective_policy(context, "gcp.resourceLocations")
    except HttpError as e:
        return [_unreadable("organisation policies", e, "the organisation policies",
                            "roles/orgpolicy.policyViewer (enable orgpolicy.googleapis.com)")]
    return [
        _check_member_restriction(context, domains, members),
        _check_invoker_policy(invoker),
        _check_ingress_policy(ingress),
        _check_locations(context, locations),
    ]


def _check_member_restriction(context: _Context, domains: dict, members: dict) -> Finding:
    name = "policy: domain-restricted sharing"
    legacy = any(rule.get("values", {}).get("allowedValues") or rule.get("denyAll") for rule in _rules(domains))
    managed_rules = [rule for rule in _rules(members) if rule.get("enforce") is True]
    managed = bool(managed_rules) and not any(
        GMAIL_PUSH_ACCOUNT.split(":", 1)[1] in " ".join(
            (rule.get("parameters") or {}).get("allowedMemberSubjects", []))
        for rule in managed_rules)
    if not (legacy or managed):
        return Finding(name, True)
    if _gmail_may_publish(context):
        return Finding(name, True)  # restricted, but the exception for Gmail's account is in place
    constraint = "iam.allowedPolicyMemberDomains" if legacy else "iam.managed.allowedPolicyMembers"
    return Finding(
        name, False,
        f"{constraint} refuses the Gmail push publisher grant ({GMAIL_PUSH_ACCOUNT}); mailbridge itself needs "
        "no allUsers binding",
        "ask an organisation policy administrator for the project exception in terraform/README.md "
        "(\"Organisation policies\") and run terraform apply again, or set enable_push = false (polling only)")


def _gmail_may_publish(context: _Context) -> bool:
    try:
        policy = context.fetch(_topic_url(context) + ":getIamPolicy")
    except HttpError:
        return False
    return any(binding.get("role") == "roles/pubsub.publisher" and GMAIL_PUSH_ACCOUNT in binding.get("members", [])
               for binding in policy.get("bindings", []))


def _check_invoker_policy(policy: dict) -> Finding:
    name = "policy: Cloud Run invoker IAM"
    if not _enforced(policy):
        return Finding(name, True)
    return Finding(
        name, False,
        "run.managed.requireInvokerIam forbids turning the invoker IAM check off, so browsers cannot reach "
        "admin, oauth_start and oauth_callback",
        "ask for an exception for this project (terraform/README.md, \"Organisation policies\"); the code "
        "guards those three services itself")


def _check_ingress_policy(policy: dict) -> Finding:
    name = "policy: Cloud Run ingress"
    for rule in _rules(policy):
        allowed = (rule.get("values") or {}).get("allowedValues")
        if rule.get("denyAll") or (allowed and "all" not in allowed):
            return Finding(name, False,
                           f"run.allowedIngress allows only {allowed or 'nothing'}; the browser-facing services need "
                           "ingress 'all'",
                           "ask for 'all' on this project, or put the admin pages behind a load balancer "
                           "(not provided by terraform/)")
    return Finding(name, True)


def _check_locations(context: _Context, policy: dict) -> Finding:
    name = "policy: resource locations"
    for rule in _rules(policy):
        allowed = (rule.get("values") or {}).get("allowedValues") or []
        if rule.get("denyAll"):
            return Finding(name, False, "gcp.resourceLocations denies every location",
                           "ask for the region's locations to be allowed on this project")
        if allowed and not any(_location_allows(value, context.region) for value in allowed):
            return Finding(name, False,
                           f"gcp.resourceLocations allows {', '.join(allowed)}, not {context.region}",
                           "choose an allowed region (variable region; firestore_location too) or ask for "
                           f"in:{context.region}-locations")
    return Finding(name, True)


def _location_allows(value: str, region: str) -> bool:
    if value in (region, f"in:{region}-locations"):
        return True
    return value in LOCATION_GROUPS and region.startswith(LOCATION_GROUPS[value])


def check_firestore(context: _Context) -> Finding:
    name = "firestore"
    database = _read(context, name, f"https://firestore.googleapis.com/v1/projects/{context.project}/databases/"
                                    f"{quote('(default)')}", "the Firestore database", "roles/datastore.viewer",
                     Finding(name, False, "the project has no (default) Firestore database",
                             "terraform apply with create_firestore_database = true creates it in Native mode"))
    if isinstance(database, Finding):
        return database
    if database.get("type") != "FIRESTORE_NATIVE":
        return Finding(name, False,
                       f"the (default) database is in {database.get('type', 'an unknown')} mode; mailbridge needs "
                       "Native mode",
                       "an empty database can be switched: gcloud firestore databases update --type=firestore-native "
                       f"--project={context.project}; otherwise deploy into another project")
    return Finding(name, True)


def check_services(context: _Context) -> list[Finding]:
    findings = []
    for function, browser in FUNCTIONS.items():
        name = f"service {context.service_name(function)}"
        service = _read(context, name, f"https://run.googleapis.com/v2/projects/{context.project}/locations/"
                                       f"{context.region}/services/{context.service_name(function)}",
                        "the Cloud Run service", "roles/run.viewer", Finding(name, False, "not deployed",
                                                                              "terraform apply"))
        if isinstance(service, Finding):
            findings.append(service)
        elif bool(service.get("invokerIamDisabled")) != browser:
            findings.append(Finding(
                name, False,
                "browsers cannot reach it: the invoker IAM check is on" if browser
                else "anyone can call it: the invoker IAM check is off",
                "terraform apply (it sets invoker_iam_disabled on exactly admin, oauth_start and oauth_callback)"))
        elif not browser and function in INTERNET_CALLED and service.get("ingress") != "INGRESS_TRAFFIC_ALL":
            findings.append(Finding(name, False, f"ingress is {service.get('ingress')}; callers outside the project "
                                                 "cannot reach it (it should take all traffic)", "terraform apply"))
        elif not browser and function not in INTERNET_CALLED and service.get("ingress") != "INGRESS_TRAFFIC_INTERNAL_ONLY":
            findings.append(Finding(name, False, f"ingress is {service.get('ingress')}; it should be internal only",
                                    "terraform apply"))
        else:
            findings.append(Finding(name, True))
    return findings


def check_scheduler(context: _Context) -> Finding:
    job_name = f"{context.prefix}-poll"
    name = f"scheduler job {job_name}"
    job = _read(context, name, f"https://cloudscheduler.googleapis.com/v1/projects/{context.project}/locations/"
                               f"{context.region}/jobs/{job_name}", "the scheduler job", "roles/cloudscheduler.viewer",
                Finding(name, False, "missing", "terraform apply"))
    if isinstance(job, Finding):
        return job
    target = job.get("httpTarget") or {}
    token = target.get("oidcToken") or {}
    if token.get("serviceAccountEmail") != context.invoker or token.get("audience") != target.get("uri"):
        return Finding(name, False,
                       f"it calls {target.get('uri')} as {token.get('serviceAccountEmail')} for audience "
                       f"{token.get('audience')}; poll accepts {context.invoker} with its own URL as audience",
                       "terraform apply")
    if job.get("state") == "PAUSED":
        return Finding(name, False, "paused: no scheduled polls",
                       "set use_scheduling_service = true and terraform apply (or gcloud scheduler jobs resume "
                       f"{job_name} --location={context.region})")
    status = job.get("status") or {}
    if status.get("code"):
        return Finding(name, False,
                       f"its last attempt failed (code {status['code']}: {status.get('message', 'no message')})",
                       f"read the poll service's logs: gcloud logging read 'resource.labels.service_name="
                       f"\"{context.service_name('poll')}\"' --project={context.project} --limit=20")
    return Finding(name, True)


def _topic_url(context: _Context) -> str:
    return f"https://pubsub.googleapis.com/v1/projects/{context.project}/topics/{context.prefix}-gmail-push"


def check_push_topic(context: _Context) -> Finding:
    name = "gmail push topic"
    # No topic: enable_push = false, polling alone, which is fine.
    policy = _read(context, name, _topic_url(context) + ":getIamPolicy", "the push topic's IAM policy",
                   "roles/pubsub.viewer", Finding(name, True))
    if isinstance(policy, Finding):
        return policy
    publishers = [member for binding in policy.get("bindings", []) if binding.get("role") == "roles/pubsub.publisher"
                  for member in binding.get("members", [])]
    if GMAIL_PUSH_ACCOUNT not in publishers:
        return Finding(name, False, f"{GMAIL_PUSH_ACCOUNT} may not publish to {context.prefix}-gmail-push, so "
                                    "Gmail's watch() is refused and mail arrives only by polling",
                       "terraform apply (under domain-restricted sharing, after the exception in terraform/README.md)")
    return Finding(name, True)


def check_admin_sign_in_secret(context: _Context) -> Finding:
    secret = f"{context.prefix}-admin-oauth-client-secret"
    name = f"secret {secret}"
    answer = _read(context, name, f"https://secretmanager.googleapis.com/v1/projects/{context.project}/secrets/"
                                  f"{secret}/versions?{urlencode({'filter': 'state:ENABLED'})}",
                   "the admin sign-in secret", "roles/secretmanager.viewer", Finding(name, False, "missing",
                                                                                    "terraform apply"))
    if isinstance(answer, Finding):
        return answer
    if not answer.get("versions"):
        return Finding(name, False, "no enabled version: admins cannot sign in",
                       f"printf %s \"$CLIENT_SECRET\" | gcloud secrets versions add {secret} --data-file=- "
                       f"--project={context.project}")
    return Finding(name, True)


def check_redirect_uri(context: _Context, client_id: str, function: str = "oauth_callback", path: str = "") -> Finding:
    """Ask Google's authorization endpoint whether the client accepts our redirect URI: it answers
    400 redirect_uri_mismatch when the URI is not registered on the client."""
    name = f"redirect URI of {client_id.split('.', 1)[0][:24]}…"
    try:
        redirect_uri = context.function_url(function) + path
    except HttpError as e:
        return _unreadable(name, e, "the project number", "roles/browser")
    query = urlencode({"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                       "scope": "openid", "access_type": "offline"})
    try:
        context.fetch(f"https://accounts.google.com/o/oauth2/v2/auth?{query}")
    except HttpError as e:
        if "redirect_uri_mismatch" in e.message:
            return Finding(name, False, f"{redirect_uri} is not an authorized redirect URI of this client",
                           "Google Auth Platform → Clients → this client → Authorized redirect URIs: add "
                           f"{redirect_uri}" + (" (terraform output oauth_redirect_uri)" if not path else ""))
        if "invalid_client" in e.message or "deleted_client" in e.message:
            return Finding(name, False, "Google does not know this client id",
                           "copy the whole client id from Google Auth Platform → Clients")
        return Finding(name, False, f"Google refused the sign-in request: {e.message[:200]}",
                       "open the client in Google Auth Platform → Clients and compare")
    return Finding(name, True)


# --- The real HTTP client --------------------------------------------------------------------


def default_fetch(project: str) -> Fetch:
    """GET with application default credentials for *.googleapis.com, anonymous elsewhere."""
    import google.auth
    import google.auth.exceptions
    import requests
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except google.auth.exceptions.DefaultCredentialsError as e:
        raise DoctorError("no application default credentials: run `gcloud auth application-default login`") from e
    if hasattr(credentials, "with_quota_project"):
        credentials = credentials.with_quota_project(project)  # user credentials need one for some APIs
    authorized = AuthorizedSession(credentials)
    anonymous = requests.Session()

    def fetch(url: str) -> dict:
        host = urlsplit(url).hostname or ""
        session = authorized if host.endswith(".googleapis.com") else anonymous
        try:
            response = session.get(url, timeout=30, allow_redirects=False)
        except (requests.RequestException, google.auth.exceptions.GoogleAuthError) as e:
            raise HttpError(0, f"cannot reach {host}: {e.__class__.__name__}") from None
        if response.status_code >= 400:
            raise _http_error(response.status_code, response.text)
        if "json" in response.headers.get("Content-Type", ""):
            return response.json()
        return {"status": response.status_code, "text": response.text[:20000]}

    return fetch


def _http_error(status: int, body: str) -> HttpError:
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return HttpError(status, body[:2000])
    if not isinstance(error, dict):  # OAuth endpoints answer {"error": "invalid_client", ...}
        return HttpError(status, f"{error}: {json.loads(body).get('error_description', '')}".strip())
    reasons = [detail.get("reason", "") for detail in error.get("details", []) if isinstance(detail, dict)]
    return HttpError(status, str(error.get("message", "")), next((r for r in reasons if r), ""))
