"""What `terraform apply` deploys and the functions run on: the Firestore database, the seven Cloud
Run services with their invoker check and ingress, and the admin sign-in secret."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from mailbridge.adapters.doctor.context import Context, Finding, read

# Entry points of functions/main.py and whether a browser opens them (terraform/main.tf).
FUNCTIONS = {"admin": True, "api": False, "labels": False, "oauth_callback": True, "oauth_start": True,
             "poll": False, "push": False}
# Services that keep the invoker IAM check yet take traffic from anywhere: the helpdesk calls
# the JSON API from outside the project with an OIDC token (terraform/main.tf, `internet`).
INTERNET_CALLED = ("api",)


def check_firestore(context: Context) -> Finding:
    name = "firestore"
    database = read(context, name, f"https://firestore.googleapis.com/v1/projects/{context.project}/databases/"
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


def check_services(context: Context) -> list[Finding]:
    findings = []
    for function, browser in FUNCTIONS.items():
        name = f"service {context.service_name(function)}"
        service = read(context, name, f"https://run.googleapis.com/v2/projects/{context.project}/locations/"
                                      f"{context.region}/services/{context.service_name(function)}",
                       "the Cloud Run service", "roles/run.viewer", Finding(name, False, "not deployed",
                                                                             "terraform apply"))
        findings.append(service if isinstance(service, Finding) else _service_finding(name, function, browser, service))
    return findings


def _service_finding(name: str, function: str, browser: bool, service: dict) -> Finding:
    """Whether a deployed service has the invoker check and the ingress its callers need."""
    if bool(service.get("invokerIamDisabled")) != browser:
        return Finding(
            name, False,
            "browsers cannot reach it: the invoker IAM check is on" if browser
            else "anyone can call it: the invoker IAM check is off",
            "terraform apply (it sets invoker_iam_disabled on exactly admin, oauth_start and oauth_callback)")
    if browser:
        return Finding(name, True)
    if function in INTERNET_CALLED and service.get("ingress") != "INGRESS_TRAFFIC_ALL":
        return Finding(name, False, f"ingress is {service.get('ingress')}; callers outside the project cannot reach "
                                    "it (it should take all traffic)", "terraform apply")
    if function not in INTERNET_CALLED and service.get("ingress") != "INGRESS_TRAFFIC_INTERNAL_ONLY":
        return Finding(name, False, f"ingress is {service.get('ingress')}; it should be internal only",
                       "terraform apply")
    return Finding(name, True)


def check_admin_sign_in_secret(context: Context) -> Finding:
    secret = f"{context.prefix}-admin-oauth-client-secret"
    name = f"secret {secret}"
    answer = read(context, name, f"https://secretmanager.googleapis.com/v1/projects/{context.project}/secrets/"
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
