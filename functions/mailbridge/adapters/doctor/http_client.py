"""Doctor's real HTTP client: GET with application default credentials. google-auth and requests
are imported when `default_fetch` runs, never at import, so doctor's import stays stdlib only."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from mailbridge.adapters.doctor.context import DoctorError, Fetch, HttpError


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
            raise http_error(response.status_code, response.text)
        if "json" in response.headers.get("Content-Type", ""):
            return response.json()
        return {"status": response.status_code, "text": response.text[:20000]}

    return fetch


def http_error(status: int, body: str) -> HttpError:
    """The HttpError for an error answer: Google's JSON error message and reason, an OAuth
    endpoint's error and description, or the start of a non-JSON body."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return HttpError(status, body[:2000])
    if not isinstance(error, dict):  # OAuth endpoints answer {"error": "invalid_client", ...}
        return HttpError(status, f"{error}: {json.loads(body).get('error_description', '')}".strip())
    reasons = [detail.get("reason", "") for detail in error.get("details", []) if isinstance(detail, dict)]
    return HttpError(status, str(error.get("message", "")), next((r for r in reasons if r), ""))
