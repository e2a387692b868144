"""config.Settings: each function's own URL in a deployment (MAILBRIDGE_FUNCTION_URLS), the admin
sign-in settings, and the local stack's environment for them (scripts/stacklib/functions.py)."""

from __future__ import annotations

import json

import pytest

from mailbridge.config import Settings
from mailbridge.errors import ConfigError
import stacklib

DEPLOYED = {"admin": "https://mailbridge-admin-abc-ew.a.run.app",
            "oauth_callback": "https://mailbridge-oauth-callback-abc-ew.a.run.app/"}


def settings(**env) -> Settings:
    return Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", **env})


def test_a_deployment_names_each_function_by_its_own_url():
    deployed = settings(MAILBRIDGE_FUNCTION_URLS=json.dumps(DEPLOYED))
    assert deployed.function_url("admin") == DEPLOYED["admin"]
    assert deployed.redirect_uri == "https://mailbridge-oauth-callback-abc-ew.a.run.app"
    assert deployed.admin_redirect_uri == DEPLOYED["admin"] + "/signin/callback"


def test_the_local_base_url_serves_every_function_under_one_address():
    local = settings(MAILBRIDGE_FUNCTIONS_URL="http://127.0.0.1:8080/")
    assert local.function_url("poll") == "http://127.0.0.1:8080/poll"
    assert local.admin_redirect_uri == "http://127.0.0.1:8080/admin/signin/callback"


def test_a_function_missing_from_the_deployment_is_named():
    with pytest.raises(ConfigError, match="no URL for function 'poll'"):
        settings(MAILBRIDGE_FUNCTION_URLS=json.dumps(DEPLOYED)).function_url("poll")


def test_no_url_at_all_names_both_variables():
    with pytest.raises(ConfigError, match="MAILBRIDGE_FUNCTION_URLS nor MAILBRIDGE_FUNCTIONS_URL"):
        settings().function_url("admin")


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"admin": 3}'])
def test_function_urls_must_be_a_json_object_of_urls(raw):
    with pytest.raises(ConfigError, match="MAILBRIDGE_FUNCTION_URLS must be a JSON object"):
        settings(MAILBRIDGE_FUNCTION_URLS=raw)


def test_admin_emails_and_domain_are_read_normalised():
    admins = settings(MAILBRIDGE_ADMIN_EMAILS=" A@Acme.example,b@acme.example, a@acme.example ",
                      MAILBRIDGE_ADMIN_DOMAIN="Acme.Example", MAILBRIDGE_REGION="europe-west1")
    assert admins.admin_emails == ("a@acme.example", "b@acme.example")
    assert admins.admin_domain == "acme.example"
    assert admins.region == "europe-west1"


def test_the_local_stack_sets_the_admin_sign_in_client_and_the_fakes_certs(tmp_path):
    env = stacklib.Stack(tmp_path, signing_key="k" * 32).env(push=False)
    assert env["MAILBRIDGE_ADMIN_OAUTH_CLIENT_ID"] == stacklib.ADMIN_CLIENT_ID
    assert env["MAILBRIDGE_ADMIN_OAUTH_CLIENT_SECRET_ID"] == stacklib.ADMIN_CLIENT_SECRET_ID
    assert env["MAILBRIDGE_OAUTH_CERTS_URL"] == env["FAKE_GOOGLE_URL"] + "/oauth2/v1/certs"
