"""The one error policy: each error kind carries its HTTP status and CLI exit code, and the edges
(function responses, admin pages, CLI) answer with them."""

import json

import pytest

from mailbridge import errors
from mailbridge.cli import main as cli_main
from mailbridge.http.common import json_error

POLICY = [
    (errors.InvalidInput("bad"), 400, 2),
    (errors.NotFound("none"), 404, 2),
    (errors.Conflict("twice"), 409, 2),
    (errors.AuthError("refused"), 403, 1),
    (errors.TokenRevoked("revoked"), 403, 1),
    (errors.GmailError("upstream"), 502, 1),
    (errors.HistoryExpired("old"), 502, 1),
    (errors.ConfigError("unset"), 500, 1),
    (errors.MailbridgeError("failed"), 500, 1),
    (RuntimeError("surprise"), 500, 1),
]


@pytest.mark.parametrize("error,status,code", POLICY, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None)
def test_each_kind_has_its_status_and_exit_code(error, status, code):
    assert (errors.http_status(error), errors.exit_code(error)) == (status, code)


@pytest.mark.parametrize("error,status,_code", POLICY, ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None)
def test_function_json_errors_use_the_policy(error, status, _code):
    body, answered, _headers = json_error(error)
    assert answered == status
    assert json.loads(body)["error"] == (str(error) if isinstance(error, errors.MailbridgeError) else "internal error")


def test_cli_exit_code_comes_from_the_error_kind(monkeypatch, capsys):
    from mailbridge.cli import common

    def refuse():
        raise errors.NotFound("no mailbox 'x'")

    monkeypatch.setattr(common, "services", refuse)
    assert cli_main(["tickets", "list"]) == 2
    assert capsys.readouterr().err.strip() == "error: no mailbox 'x'"


@pytest.mark.parametrize("error,kind", [
    (errors.InvalidInput("bad"), "invalid_input"), (errors.NotFound("none"), "not_found"),
    (errors.WriteConflict("raced"), "write_conflict"), (errors.Unauthenticated("who"), "unauthenticated"),
    (errors.AuthError("no"), "auth_error"), (errors.MethodNotAllowed("use GET"), "method_not_allowed"),
    (errors.StoreUnavailable("down"), "store_unavailable"),
    (errors.MailbridgeError("failed"), "internal"), (RuntimeError("surprise"), "internal"),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v)
def test_each_kind_has_a_name_callers_read_and_the_unexpected_says_only_internal(error, kind):
    assert errors.kind(error) == kind


def test_a_refused_or_missing_token_is_401_and_a_wrong_method_405():
    assert (errors.http_status(errors.Unauthenticated("x")), errors.http_status(errors.MethodNotAllowed("x"))) == (401, 405)
