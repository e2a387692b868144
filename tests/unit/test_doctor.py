"""scripts/mailbridge doctor (functions/mailbridge/adapters/doctor/) against recorded API responses
(tests/unit/recorded/doctor/README.md): each problem is found and comes with its fix."""

from __future__ import annotations

import copy
import dataclasses
import functools
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import hcl2

from mailbridge.adapters import doctor

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "recorded" / "doctor"
PROJECT, REGION, PREFIX, NUMBER = "acme-helpdesk", "europe-west1", "mailbridge", "123456789012"
CLIENT_ID = "1234567890-abcdefghijklmnop.apps.googleusercontent.com"
ORG_POLICY = "https://orgpolicy.googleapis.com/v2/projects/acme-helpdesk/policies/{}:getEffectivePolicy"
RUN_SERVICE = "https://run.googleapis.com/v2/projects/acme-helpdesk/locations/europe-west1/services/{}"
JOB = "https://cloudscheduler.googleapis.com/v1/projects/acme-helpdesk/locations/europe-west1/jobs/mailbridge-poll"
TOPIC_POLICY = "https://pubsub.googleapis.com/v1/projects/acme-helpdesk/topics/mailbridge-gmail-push:getIamPolicy"
FIRESTORE = "https://firestore.googleapis.com/v1/projects/acme-helpdesk/databases/%28default%29"


@functools.cache
def recording(name: str) -> dict:
    return json.loads((RECORDED / f"{name}.json").read_text())


class RecordedFetch:
    """Replays recorded answers; an error entry goes through the real client's error parser."""

    def __init__(self, *names: str, **changes):
        self.answers = {}
        for name in names:
            self.answers.update(copy.deepcopy(recording(name)))
        self.answers.update(changes.get("answers", {}))
        self.urls: list[str] = []

    def __call__(self, url: str) -> dict:
        self.urls.append(url)
        assert url in self.answers, f"doctor asked for {url}, which is not recorded"
        answer = self.answers[url]
        if "__http_error__" in answer:
            body = answer.get("body_text") or json.dumps(answer["body"])
            raise doctor.http_error(answer["__http_error__"], body)
        return copy.deepcopy(answer)


def check(*names: str, answers: dict | None = None, client_ids=(CLIENT_ID,)) -> dict[str, doctor.Finding]:
    findings = doctor.run_checks(PROJECT, REGION, PREFIX, RecordedFetch(*names, answers=answers or {}), client_ids)
    return {finding.name: finding for finding in findings}


def failed(findings: dict[str, doctor.Finding]) -> dict[str, doctor.Finding]:
    return {name: finding for name, finding in findings.items() if not finding.ok}


def policy(constraint: str, rules: list[dict]) -> dict:
    return {ORG_POLICY.format(constraint): {"name": f"projects/{NUMBER}/policies/{constraint}", "spec": {"rules": rules}}}


# --- A healthy deployment --------------------------------------------------------------------


def test_a_healthy_deployment_passes_every_check():
    findings = check("healthy")
    assert not failed(findings), failed(findings)
    assert len(findings) >= 14


def test_findings_carry_name_ok_problem_and_fix():
    finding = doctor.Finding("firestore", False, "the project has no (default) Firestore database", "terraform apply")
    assert [field.name for field in dataclasses.fields(finding)] == ["name", "ok", "problem", "fix"]


def test_run_prints_one_line_per_check_and_exits_zero_when_ready():
    out = io.StringIO()
    status = doctor.run(PROJECT, REGION, PREFIX, fetch=RecordedFetch("healthy"), client_ids=[CLIENT_ID], out=out)
    assert status == 0
    assert out.getvalue().splitlines()[-1].endswith(" ok, 0 to fix")


def test_run_exits_one_and_prints_each_fix_when_something_is_wrong():
    out = io.StringIO()
    status = doctor.run(PROJECT, REGION, PREFIX, fetch=RecordedFetch("healthy", "fresh_secure_by_default_org"),
                        client_ids=[CLIENT_ID], out=out)
    lines = out.getvalue().splitlines()
    assert status == 1
    fails = [line for line in lines if line.startswith("FAIL")]
    fixes = [line for line in lines if line.strip().startswith("fix: ")]
    assert fails and len(fixes) == len(fails)


# --- APIs ------------------------------------------------------------------------------------


def test_apis_are_read_across_pages():
    fetch = RecordedFetch("healthy")
    doctor.run_checks(PROJECT, REGION, PREFIX, fetch)
    assert sum("serviceusage.googleapis.com" in url for url in fetch.urls) == 2


def test_missing_apis_are_named_with_the_command_that_enables_them():
    finding = check("healthy", "fresh_secure_by_default_org")["apis"]
    assert not finding.ok
    assert "run.googleapis.com" in finding.problem and "storage.googleapis.com" not in finding.problem
    assert finding.fix.startswith("terraform apply enables them, or: gcloud services enable ")
    assert "--project=acme-helpdesk" in finding.fix


def test_required_apis_are_the_ones_terraform_enables():
    with (REPO / "terraform" / "services.tf").open() as handle:
        parsed = hcl2.load(handle)
    services = set(re.findall(r'"([^"]+)"', parsed["locals"][0]["services"]))
    assert set(doctor.REQUIRED_APIS) == services


def test_functions_are_the_entry_points_with_the_browser_facing_ones_marked():
    text = (REPO / "functions" / "main.py").read_text()
    assert set(doctor.FUNCTIONS) == set(re.findall(r"^def (\w+)\(request\)", text, re.M))
    assert {name for name, browser in doctor.FUNCTIONS.items() if browser} == {"admin", "oauth_callback", "oauth_start"}
    assert doctor.INTERNET_CALLED == ("api",)


# --- Organisation policies -------------------------------------------------------------------


def test_domain_restricted_sharing_without_the_exception_blocks_gmail_push():
    findings = check("healthy", answers={TOPIC_POLICY: {"version": 1, "etag": "ACAB"}})
    finding = findings["policy: domain-restricted sharing"]
    assert not finding.ok
    assert "iam.allowedPolicyMemberDomains" in finding.problem
    assert "gmail-api-push@system.gserviceaccount.com" in finding.problem
    assert "enable_push = false" in finding.fix


def test_domain_restricted_sharing_with_the_exception_in_place_passes():
    assert check("healthy")["policy: domain-restricted sharing"].ok


def test_managed_member_constraint_that_lists_gmails_account_passes():
    answers = {
        **policy("iam.allowedPolicyMemberDomains", []),
        **policy("iam.managed.allowedPolicyMembers", [{"enforce": True, "parameters": {
            "allowedMemberSubjects": ["serviceAccount:gmail-api-push@system.gserviceaccount.com"],
            "allowedPrincipalSets": ["//cloudresourcemanager.googleapis.com/organizations/301234567890"]}}]),
        TOPIC_POLICY: {"version": 1, "etag": "ACAB"},
    }
    assert check("healthy", answers=answers)["policy: domain-restricted sharing"].ok


def test_managed_member_constraint_without_gmails_account_blocks_gmail_push():
    answers = {
        **policy("iam.allowedPolicyMemberDomains", []),
        **policy("iam.managed.allowedPolicyMembers", [{"enforce": True, "parameters": {
            "allowedPrincipalSets": ["//cloudresourcemanager.googleapis.com/organizations/301234567890"]}}]),
        TOPIC_POLICY: {"version": 1, "etag": "ACAB"},
    }
    finding = check("healthy", answers=answers)["policy: domain-restricted sharing"]
    assert not finding.ok and "iam.managed.allowedPolicyMembers" in finding.problem


def test_required_invoker_iam_makes_the_browser_pages_unreachable():
    finding = check("healthy", "fresh_secure_by_default_org")["policy: Cloud Run invoker IAM"]
    assert not finding.ok
    assert "run.managed.requireInvokerIam" in finding.problem and "oauth_callback" in finding.problem


def test_internal_only_ingress_policy_is_reported():
    answers = policy("run.allowedIngress", [{"values": {"allowedValues": ["internal"]}}])
    finding = check("healthy", answers=answers)["policy: Cloud Run ingress"]
    assert not finding.ok and "'all'" in finding.problem


def test_a_region_outside_the_allowed_locations_is_reported():
    answers = policy("gcp.resourceLocations", [{"values": {"allowedValues": ["in:us-locations"]}}])
    finding = check("healthy", answers=answers)["policy: resource locations"]
    assert not finding.ok
    assert "europe-west1" in finding.problem and "region" in finding.fix


def test_a_constraint_unknown_to_the_organisation_counts_as_unset():
    missing = {"__http_error__": 404, "body": {"error": {"code": 404, "status": "NOT_FOUND",
                                                         "message": "Requested entity was not found."}}}
    findings = check("healthy", answers={ORG_POLICY.format("run.managed.requireInvokerIam"): missing})
    assert findings["policy: Cloud Run invoker IAM"].ok


def test_unreadable_policies_give_one_finding_that_names_the_role():
    findings = check("healthy", "no_permission")
    finding = findings["organisation policies"]
    assert not finding.ok
    assert "orgpolicy.policy.get" in finding.problem
    assert "roles/orgpolicy.policyViewer" in finding.fix
    assert not any(name.startswith("policy: ") for name in findings)


def test_a_disabled_api_on_the_quota_project_is_explained():
    finding = check("healthy", "no_permission")["apis"]
    assert not finding.ok and "enable the API" in finding.fix


# --- Firestore, services, scheduler, push, secrets -------------------------------------------


def test_missing_firestore_database_points_at_create_firestore_database():
    finding = check("healthy", "fresh_secure_by_default_org")["firestore"]
    assert not finding.ok and "create_firestore_database = true" in finding.fix


def test_datastore_mode_is_refused_with_the_way_out():
    database = dict(recording("healthy")[FIRESTORE], type="DATASTORE_MODE")
    finding = check("healthy", answers={FIRESTORE: database})["firestore"]
    assert not finding.ok
    assert "DATASTORE_MODE" in finding.problem and "Native" in finding.problem
    assert "--type=firestore-native" in finding.fix


def test_a_browser_service_with_the_invoker_check_on_is_unreachable():
    url = RUN_SERVICE.format("mailbridge-admin")
    service = {key: value for key, value in recording("healthy")[url].items() if key != "invokerIamDisabled"}
    finding = check("healthy", answers={url: service})["service mailbridge-admin"]
    assert not finding.ok and "browsers cannot reach it" in finding.problem


def test_a_machine_service_with_the_invoker_check_off_is_open_to_anyone():
    url = RUN_SERVICE.format("mailbridge-poll")
    service = dict(recording("healthy")[url], invokerIamDisabled=True)
    finding = check("healthy", answers={url: service})["service mailbridge-poll"]
    assert not finding.ok and "anyone can call it" in finding.problem


def test_services_not_yet_deployed_are_listed():
    findings = failed(check("healthy", "fresh_secure_by_default_org"))
    assert {name for name in findings if name.startswith("service ")} == {
        f"service mailbridge-{name}" for name in ("admin", "api", "labels", "oauth-callback", "oauth-start", "poll",
                                                "push")}


def test_paused_scheduler_job_points_at_use_scheduling_service():
    job = dict(recording("healthy")[JOB], state="PAUSED")
    finding = check("healthy", answers={JOB: job})["scheduler job mailbridge-poll"]
    assert not finding.ok and "use_scheduling_service = true" in finding.fix


def test_scheduler_job_calling_as_another_account_is_reported():
    job = copy.deepcopy(recording("healthy")[JOB])
    job["httpTarget"]["oidcToken"]["serviceAccountEmail"] = "123456789012-compute@developer.gserviceaccount.com"
    finding = check("healthy", answers={JOB: job})["scheduler job mailbridge-poll"]
    assert not finding.ok and "mailbridge-invoker@acme-helpdesk.iam.gserviceaccount.com" in finding.problem


def test_scheduler_job_whose_last_attempt_failed_points_at_the_logs():
    job = dict(recording("healthy")[JOB], status={"code": 7, "message": "PERMISSION_DENIED"})
    finding = check("healthy", answers={JOB: job})["scheduler job mailbridge-poll"]
    assert not finding.ok and "code 7" in finding.problem and "gcloud logging read" in finding.fix


def test_push_topic_without_gmails_grant_is_reported():
    finding = check("healthy", "fresh_secure_by_default_org")["gmail push topic"]
    assert not finding.ok and "polling" in finding.problem


def test_no_push_topic_means_push_is_off_and_is_fine():
    gone = {"__http_error__": 404, "body": {"error": {"code": 404, "status": "NOT_FOUND",
                                                      "message": "Resource not found (resource=mailbridge-gmail-push)."}}}
    assert check("healthy", answers={TOPIC_POLICY: gone})["gmail push topic"].ok


def test_admin_sign_in_secret_without_a_version_says_how_to_add_it():
    finding = check("healthy", "fresh_secure_by_default_org")["secret mailbridge-admin-oauth-client-secret"]
    assert not finding.ok
    assert "gcloud secrets versions add mailbridge-admin-oauth-client-secret --data-file=-" in finding.fix


# --- The OAuth client's redirect URI ---------------------------------------------------------


def test_redirect_uri_probe_asks_for_the_deployed_callback_url():
    fetch = RecordedFetch("healthy")
    doctor.run_checks(PROJECT, REGION, PREFIX, fetch, [CLIENT_ID])
    probe = [url for url in fetch.urls if url.startswith("https://accounts.google.com/")]
    assert len(probe) == 1
    assert "redirect_uri=https%3A%2F%2Fmailbridge-oauth-callback-123456789012.europe-west1.run.app" in probe[0]


def test_an_unregistered_redirect_uri_is_reported_with_the_uri_to_add():
    findings = failed(check("healthy", "fresh_secure_by_default_org"))
    finding = next(finding for name, finding in findings.items() if name.startswith("redirect URI"))
    assert "https://mailbridge-oauth-callback-123456789012.europe-west1.run.app" in finding.fix
    assert "Google Auth Platform" in finding.fix


def test_the_admin_sign_in_client_is_probed_with_the_admin_redirect_uri():
    admin_redirect = "https%3A%2F%2Fmailbridge-admin-123456789012.europe-west1.run.app%2Fsignin%2Fcallback"
    probe_url = next(url for url in recording("healthy") if url.startswith("https://accounts.google.com/"))
    admin_probe = probe_url.replace(CLIENT_ID, "99-admin.apps.googleusercontent.com").replace(
        "https%3A%2F%2Fmailbridge-oauth-callback-123456789012.europe-west1.run.app", admin_redirect)
    fetch = RecordedFetch("healthy", answers={admin_probe: recording("healthy")[probe_url]})
    findings = doctor.run_checks(PROJECT, REGION, PREFIX, fetch, [], admin_client_id="99-admin.apps.googleusercontent.com")
    assert [url for url in fetch.urls if url.startswith("https://accounts.google.com/")] == [admin_probe]
    assert all(finding.ok for finding in findings if finding.name.startswith("redirect URI"))


def test_without_client_ids_no_redirect_uri_is_probed():
    fetch = RecordedFetch("healthy")
    doctor.run_checks(PROJECT, REGION, PREFIX, fetch)
    assert not any(url.startswith("https://accounts.google.com/") for url in fetch.urls)


def test_oauth_error_answers_are_parsed_into_a_message():
    error = doctor.http_error(401, json.dumps({"error": "invalid_client", "error_description": "The OAuth client was not found."}))
    assert error.status == 401 and error.message.startswith("invalid_client")


# --- Standalone ------------------------------------------------------------------------------


def test_doctor_imports_nothing_but_the_standard_library():
    # Nothing of ours outside the doctor package either: its parents are docstrings only.
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(REPO / 'functions')!r})\n"
        "before = set(sys.modules)  # site-packages' .pth files may preload namespace packages\n"
        "import mailbridge.adapters.doctor\n"
        "loaded = sorted(name for name in set(sys.modules) - before\n"
        "                if name.split('.')[0] in ('google', 'requests', 'mailbridge'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    package = sorted(f"mailbridge.adapters.doctor.{path.stem}"
                     for path in (REPO / "functions" / "mailbridge" / "adapters" / "doctor").glob("[!_]*.py"))
    assert result.stdout.strip() == str(sorted(["mailbridge", "mailbridge.adapters", "mailbridge.adapters.doctor",
                                                *package]))


def test_without_application_default_credentials_doctor_says_how_to_log_in(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    status = doctor.run(PROJECT, REGION, PREFIX)
    err = capsys.readouterr().err
    assert status == 1
    assert err.splitlines() == ["doctor: no application default credentials: run `gcloud auth application-default login`"]


def test_an_unreachable_api_becomes_a_finding_not_a_traceback():
    def offline(url: str) -> dict:
        raise doctor.HttpError(0, f"cannot reach {url.split('/')[2]}: ConnectionError")

    findings = doctor.run_checks(PROJECT, REGION, PREFIX, offline, [CLIENT_ID])
    assert findings and not any(finding.ok for finding in findings)
    assert all("cannot" in finding.problem for finding in findings if not finding.ok)


def test_the_api_takes_traffic_from_outside_the_project_with_the_invoker_check_on():
    url = RUN_SERVICE.format("mailbridge-api")
    assert check("healthy")["service mailbridge-api"].ok
    internal = dict(recording("healthy")[url], ingress="INGRESS_TRAFFIC_INTERNAL_ONLY")
    finding = check("healthy", answers={url: internal})["service mailbridge-api"]
    assert not finding.ok and "callers outside the project cannot reach it" in finding.problem
