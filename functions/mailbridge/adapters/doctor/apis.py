"""Doctor's first check: the APIs terraform/services.tf enables are enabled on the project."""

from __future__ import annotations

from urllib.parse import urlencode

from mailbridge.adapters.doctor.context import Context, Finding, HttpError, unreadable

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


def check_apis(context: Context) -> Finding:
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
        return unreadable("apis", e, "the enabled APIs", "roles/serviceusage.serviceUsageViewer")
    missing = [api for api in REQUIRED_APIS if api not in enabled]
    if not missing:
        return Finding("apis", True)
    return Finding("apis", False, f"not enabled: {', '.join(missing)}",
                   f"terraform apply enables them, or: gcloud services enable {' '.join(missing)} "
                   f"--project={context.project}")
