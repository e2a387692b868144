"""Settings of the invoker check (http/invoker.py): on by default, each function's own URL."""

import pytest

from mailbridge.config import Settings
from mailbridge.errors import ConfigError

BASE = {"GOOGLE_CLOUD_PROJECT": "p"}


def test_the_invoker_check_is_on_unless_turned_off():
    assert Settings.from_env(BASE).verify_invoker is True
    assert Settings.from_env({**BASE, "MAILBRIDGE_VERIFY_INVOKER": "false"}).verify_invoker is False


def test_a_misspelt_switch_is_refused_not_read_as_off():
    with pytest.raises(ConfigError, match="MAILBRIDGE_VERIFY_INVOKER must be true or false"):
        Settings.from_env({**BASE, "MAILBRIDGE_VERIFY_INVOKER": "nope"})


def test_function_urls_give_each_function_its_own_url():
    settings = Settings.from_env({**BASE, "MAILBRIDGE_FUNCTION_URLS": '{"poll": "https://poll-x.a.run.app/"}'})
    assert settings.function_url("poll") == "https://poll-x.a.run.app"


def test_without_function_urls_the_shared_base_is_used():
    settings = Settings.from_env({**BASE, "MAILBRIDGE_FUNCTIONS_URL": "http://127.0.0.1:8080"})
    assert settings.function_url("push") == "http://127.0.0.1:8080/push"


def test_function_urls_that_are_not_an_object_are_refused():
    with pytest.raises(ConfigError, match="MAILBRIDGE_FUNCTION_URLS must be a JSON object"):
        Settings.from_env({**BASE, "MAILBRIDGE_FUNCTION_URLS": '["https://x"]'})


def test_api_callers_are_a_lower_cased_list_of_service_accounts():
    settings = Settings.from_env({**BASE, "MAILBRIDGE_API_CALLERS": "Desk@p.iam.gserviceaccount.com, b@p.iam.gserviceaccount.com"})
    assert settings.api_callers == ("desk@p.iam.gserviceaccount.com", "b@p.iam.gserviceaccount.com")
    assert Settings.from_env(BASE).api_callers == ()


def test_an_api_caller_that_is_not_an_address_is_refused():
    with pytest.raises(ConfigError, match="MAILBRIDGE_API_CALLERS must list service account emails, got 'desk'"):
        Settings.from_env({**BASE, "MAILBRIDGE_API_CALLERS": "desk"})
