"""The `api` function served over HTTP with its caller check on (the local stack turns it off):
its own functions server, whose OIDC tokens the fake Google server signs (tests/fakes/README.md,
`POST /_fake/oidc/token`), as Cloud Run's callers' tokens are signed by Google."""

from __future__ import annotations

import pytest
import requests
import stacklib  # scripts/, on the path by tests/conftest.py

API_CALLER = "helpdesk@mailbridge-test.iam.gserviceaccount.com"


class ApiServer:
    def __init__(self, url: str, fake_url: str):
        self.base = url
        self.url = url + "/api"  # the function's URL: the audience its tokens must name
        self.fake_url = fake_url
        self.http = requests.Session()

    def token(self, account: str = API_CALLER, audience: str | None = None) -> str:
        response = requests.post(self.fake_url + "/_fake/oidc/token", timeout=10,
                                 json={"service_account": account, "audience": audience or self.url})
        response.raise_for_status()
        return response.json()["token"]

    def auth(self, **kwargs) -> dict:
        return {"Authorization": f"Bearer {self.token(**kwargs)}"}

    def call(self, method: str, path: str, token: str | None = "caller", headers=None, **kwargs) -> requests.Response:
        """One request to the API; token "caller" = a valid token of the allowed caller."""
        headers = dict(headers or {})
        if token == "caller":
            token = self.token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url + path, headers=headers, timeout=120, **kwargs)


@pytest.fixture(scope="session")
def api_server(_stack) -> ApiServer:
    """A functions server with MAILBRIDGE_VERIFY_INVOKER on and API_CALLER allowed; no work
    queue, so a reply is sent inside its request (services/outbox.InlineQueue)."""
    _stack.ensure("firestore", "fake_google", "storage")
    stack = _stack.stack
    service = stacklib.Service("functions_api", stacklib.free_port(), probe_path="/_health")
    stack.extra[service.name] = service
    env = {**stack.env(push=False, functions_url=service.url), "MAILBRIDGE_VERIFY_INVOKER": "true",
           "MAILBRIDGE_API_CALLERS": API_CALLER, "MAILBRIDGE_REPLY_WAIT_S": "30"}
    try:
        stack.spawn(service, stacklib.functions_command(service.port), stack.process_env(env))
        stack.wait([service], timeout=90)
    except stacklib.StackError as e:
        pytest.fail(f"api server: {e}", pytrace=False)
    return ApiServer(service.url, _stack.service("fake_google").url)
