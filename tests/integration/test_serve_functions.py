"""scripts/serve_functions.py mounts each HTTP function at /<name> like cloudfunctions.net:
the function sees `/` as its path and the request unchanged."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import stacklib  # noqa: E402

SOURCE = textwrap.dedent('''
    import functions_framework
    from functions_framework import http

    @functions_framework.http
    def echo(request):
        return {"path": request.path, "script_root": request.script_root, "method": request.method,
                "args": request.args.to_dict(), "body": request.get_data(as_text=True),
                "header": request.headers.get("X-Probe")}

    @http
    def other(request):
        return "other"

    def not_a_function_endpoint(request):
        return "hidden"
''')


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("functions")
    (folder / "main.py").write_text(SOURCE)
    stack = stacklib.Stack(folder / "state", signing_key="unused")
    service = stacklib.Service("functions", stacklib.free_port(), probe_path="/_health")
    stack.extra["functions"] = service
    stack.spawn(service, [sys.executable, str(REPO / "scripts/serve_functions.py"), "--port",
                          str(service.port), "--source", str(folder / "main.py")], stack.process_env())
    try:
        stack.wait([service], timeout=60)
        yield service.url
    finally:
        stack.stop()


def test_discovers_only_http_functions(served):
    assert requests.get(served + "/_health", timeout=10).json() == {"ok": True, "functions": ["echo", "other"]}


def test_function_sees_root_path_and_the_whole_request(served):
    response = requests.post(served + "/echo?code=abc&state=xyz", data=b"a=1&b=2",
                             headers={"X-Probe": "yes", "Content-Type": "application/x-www-form-urlencoded"},
                             allow_redirects=False, timeout=10)

    assert response.status_code == 200
    assert response.json() == {"path": "/", "script_root": "/echo", "method": "POST",
                               "args": {"code": "abc", "state": "xyz"}, "body": "a=1&b=2", "header": "yes"}


def test_sub_paths_stay_relative_to_the_function(served):
    assert requests.get(served + "/echo/a/b", timeout=10).json()["path"] == "/a/b"


def test_unknown_function_is_404(served):
    assert requests.get(served + "/not_a_function_endpoint", timeout=10).status_code == 404
