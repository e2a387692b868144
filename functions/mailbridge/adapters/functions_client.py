"""Calling our own deployed functions over HTTP (the CLI's `poll` goes through the poll function)."""

from __future__ import annotations

from mailbridge.errors import InvalidInput, MailbridgeError


def post(settings, name: str, body: dict) -> dict:
    """POST a JSON body to one of our deployed functions (with an OIDC token when on https)."""
    import requests

    url = settings.function_url(name)
    headers = {}
    if url.startswith("https://"):
        import google.auth.transport.requests
        from google.oauth2 import id_token

        try:
            token = id_token.fetch_id_token(google.auth.transport.requests.Request(), url)
        except Exception as e:  # noqa: BLE001 - no credentials / metadata server: one clear line, no traceback
            raise MailbridgeError(f"cannot call {url}: no identity token for it ({e.__class__.__name__}); "
                                  "run `gcloud auth application-default login` with an account allowed to invoke it") from None
        headers["Authorization"] = "Bearer " + token
    try:
        response = requests.post(url, json=body, headers=headers, timeout=600)
    except requests.RequestException as e:
        raise MailbridgeError(f"cannot reach {url}: {e.__class__.__name__}") from None
    try:
        data = response.json()
    except ValueError:
        raise MailbridgeError(f"{url} answered {response.status_code} without JSON") from None
    if response.status_code >= 400:
        error = data.get("error", response.status_code)
        raise (InvalidInput if response.status_code < 500 else MailbridgeError)(str(error))
    return data
