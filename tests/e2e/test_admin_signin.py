"""The ways into the admin pages and the mailbox sign-in journey, in real headless Chromium
against the local stack and the fake Google (README.md, "Admin access"): sign in with Google
(allowed, refused, personal account), the break-glass link and its confirmation page, the stable
`oauth_start?mailbox=` URL, and every outcome of a mailbox's sign-in back on its page with a
"Try again". Screenshots go to test-artifacts/screenshots/signin-*.png."""

from __future__ import annotations

import uuid

import pytest
import requests

from mailbridge.services import admin_access, mailboxes
from scripts import stacklib
from tests.e2e.test_admin_browser import browser, page, shot  # noqa: F401 - shared Chromium fixtures
from tests.helpers import CLIENT_SECRET, client_id_for, make_services, register_google_side

pytestmark = pytest.mark.browser

ADMIN = "boss@acme.example"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    """Services of the test, the admin OAuth client registered on the (reset) fake, ADMIN allowed."""
    stacklib.register_admin_client(fake.url, mb_env["GOOGLE_CLOUD_PROJECT"], [f"{functions_url}/admin/signin/callback"])
    made = make_services()
    mailboxes.set_global_setting(made, "admin_emails", ADMIN)
    google_account(fake.url, ADMIN)
    return made


def google_account(fake_url: str, email: str, **extra) -> None:
    requests.post(f"{fake_url}/_fake/users", json={"email": email, "name": email.split("@")[0], **extra},
                  timeout=10).raise_for_status()


def sign_in_with_google(page, functions_url: str, email: str, lands_on: str | None = "Mailboxes") -> None:
    """Sign in to the admin pages as `email`; with `lands_on`, wait until that page is shown.

    An accepted sign-in answers on the callback with a "Signed in" page whose meta refresh then
    opens the admin pages (the SameSite=Strict session cookie needs that same-site step). A test
    that navigated on before the refresh fired had its own navigation interrupted by it (it saw
    the mailbox list instead of Google's consent page), so the accepted case waits for the end."""
    from playwright.sync_api import expect

    page.goto(f"{functions_url}/admin/")
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    page.get_by_label("Account").fill(email)
    page.get_by_role("button", name="Allow").click()
    if lands_on:
        expect(page.get_by_role("heading", level=1, name=lands_on)).to_be_visible()
        page.wait_for_load_state()


def mailbox_with_credentials(services, fake_url: str, address_hd=..., secret: str = CLIENT_SECRET) -> tuple[str, str]:
    """A mailbox with a credential set for this instance and its Google side; (name, address)."""
    name = f"help-{uuid.uuid4().hex[:6]}"
    address = f"{name}@acme.example"
    register_google_side(fake_url, services, address, client_id_for(name))
    if address_hd is not ...:
        google_account(fake_url, address, hd=address_hd)
    mailboxes.add_mailbox(services, name, address)
    mailboxes.add_credentials(services, name, "production", client_id_for(name), secret)
    return name, address


def start_mailbox_sign_in(page, functions_url: str, name: str) -> None:
    """The stable start URL → its confirmation page → Google's consent page."""
    from playwright.sync_api import expect

    page.goto(f"{functions_url}/oauth_start?mailbox={name}&instance=production")
    expect(page.get_by_role("heading", level=1, name=f"Sign in {name} with Google")).to_be_visible()
    page.get_by_role("button", name="Continue to Google").click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()


def credential_error(services, name: str) -> str:
    return services.store.get_mailbox(name)["credentials"][0].get("last_error") or ""


# -- sign in with Google ------------------------------------------------------------------------
def test_an_admin_signs_in_with_google_and_lands_where_they_were_going(page, services, functions_url):
    from playwright.sync_api import expect

    page.goto(f"{functions_url}/admin/settings")
    expect(page.get_by_role("heading", level=1, name="Sign in to mailbridge admin")).to_be_visible()
    shot(page, "signin-page")
    page.get_by_role("button", name="Sign in with Google").click()
    page.get_by_label("Account").fill(ADMIN)
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", level=1, name="Settings")).to_be_visible()
    expect(page.locator("#admin-redirect-uri")).to_have_text(f"{functions_url}/admin/signin/callback")
    expect(page.get_by_label("Admin addresses")).to_have_value(ADMIN)
    shot(page, "signin-settings-admin-access")


def test_an_account_that_is_not_an_admin_is_refused_with_the_reason(page, services, fake, functions_url):
    from playwright.sync_api import expect

    google_account(fake.url, "intruder@acme.example")
    sign_in_with_google(page, functions_url, "intruder@acme.example", lands_on=None)
    expect(page.locator("#signin-reason")).to_contain_text("intruder@acme.example is not an admin")
    expect(page.get_by_role("button", name="Sign in with Google")).to_be_visible()  # try again
    assert "mailbridge_admin" not in [cookie["name"] for cookie in page.context.cookies()]
    shot(page, "signin-refused")


def test_a_personal_account_is_refused_when_admins_are_a_workspace_domain(page, services, fake, functions_url):
    from playwright.sync_api import expect

    mailboxes.set_global_setting(services, "admin_emails", "")
    mailboxes.set_global_setting(services, "admin_domain", "acme.example")
    google_account(fake.url, "someone@gmail.com")
    sign_in_with_google(page, functions_url, "someone@gmail.com", lands_on=None)
    expect(page.locator("#signin-reason")).to_contain_text("personal Google accounts cannot sign in")
    google_account(fake.url, "colleague@acme.example")
    sign_in_with_google(page, functions_url, "colleague@acme.example")


def test_cancelling_at_google_returns_to_the_sign_in_page(page, services, functions_url):
    from playwright.sync_api import expect

    page.goto(f"{functions_url}/admin/")
    page.get_by_role("button", name="Sign in with Google").click()
    page.get_by_role("button", name="Deny").click()
    expect(page.locator("#signin-reason")).to_contain_text("cancelled at Google")
    expect(page.get_by_role("button", name="Sign in with Google")).to_be_visible()


def test_revoke_all_ends_a_signed_in_session(page, services, functions_url):
    from playwright.sync_api import expect

    sign_in_with_google(page, functions_url, ADMIN)
    assert admin_access.revoke_all_sessions(services) == 1
    page.reload()
    expect(page.get_by_role("heading", level=1, name="Sign in to mailbridge admin")).to_be_visible()


# -- the break-glass link -----------------------------------------------------------------------
def test_a_link_scanner_spends_nothing_and_the_confirmation_button_opens_the_session(page, services):
    from playwright.sync_api import expect

    link = mailboxes.admin_url(services)
    assert requests.head(link, timeout=30).status_code == 405
    prefetch = requests.get(link, timeout=30)  # a chat unfurler's GET
    assert prefetch.status_code == 200 and "Set-Cookie" not in prefetch.headers
    page.goto(link)
    shot(page, "signin-break-glass-confirm")
    page.get_by_role("button", name="Open admin session").click()
    expect(page.get_by_role("heading", level=1, name="Mailboxes")).to_be_visible()


def test_a_connect_link_is_spent_only_by_its_confirmation_page(page, services, fake):
    from playwright.sync_api import expect

    name, address = mailbox_with_credentials(services, fake.url)
    link = mailboxes.connect_url(services, name)
    assert requests.head(link, timeout=30).status_code == 405
    assert requests.get(link, allow_redirects=False, timeout=30).status_code == 200  # prefetch: confirmation only
    page.goto(link)
    page.get_by_role("button", name="Continue to Google").click()
    expect(page.get_by_label("Account")).to_have_value(address)
    page.get_by_role("button", name="Allow").click()
    # Without an admin session the mailbox's page asks to sign in first, then shows the result.
    expect(page.get_by_role("heading", level=1, name="Sign in to mailbridge admin")).to_be_visible()
    page.get_by_role("button", name="Sign in with Google").click()
    page.get_by_label("Account").fill(ADMIN)
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#signin-result")).to_contain_text(f"Connected as {address}")


# -- a mailbox's sign-in: every outcome back on its page --------------------------------------------
def test_the_stable_start_url_connects_and_returns_to_the_mailbox(page, services, fake, functions_url):
    from playwright.sync_api import expect

    name, address = mailbox_with_credentials(services, fake.url)
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    shot(page, "signin-mailbox-consent")
    page.get_by_role("button", name="Allow").click()
    expect(page.get_by_role("heading", level=1, name=f"Mailbox {name}")).to_be_visible()
    expect(page.locator("#signin-result")).to_contain_text(f"Connected as {address}")
    expect(page.get_by_role("button", name="Disconnect")).to_be_visible()
    shot(page, "signin-mailbox-connected")


def _expect_failure_on_mailbox_page(page, services, name: str, reason: str, screenshot: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1, name=f"Mailbox {name}")).to_be_visible()
    expect(page.locator("#signin-result")).to_contain_text(reason)
    expect(page.locator("#signin-result").get_by_role("button", name="Try again")).to_be_visible()
    shot(page, screenshot)
    assert reason in credential_error(services, name)
    assert reason in (services.store.get_sync(name, "production").get("last_error") or "")


def test_consent_denied_is_named_with_a_try_again(page, services, fake, functions_url):
    name, _ = mailbox_with_credentials(services, fake.url)
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    page.get_by_role("button", name="Deny").click()
    _expect_failure_on_mailbox_page(page, services, name, "consent was denied", "signin-mailbox-denied")


def test_try_again_after_a_failure_goes_back_to_google(page, services, fake, functions_url):
    from playwright.sync_api import expect

    name, address = mailbox_with_credentials(services, fake.url)
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    page.get_by_role("button", name="Deny").click()
    page.locator("#signin-result").get_by_role("button", name="Try again").click()
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#signin-result")).to_contain_text(f"Connected as {address}")


def test_the_wrong_account_is_named(page, services, fake, functions_url):
    name, address = mailbox_with_credentials(services, fake.url)
    google_account(fake.url, "someone-else@acme.example")
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    page.get_by_label("Account").fill("someone-else@acme.example")
    page.get_by_role("button", name="Allow").click()
    _expect_failure_on_mailbox_page(page, services, name, f"but this mailbox is {address}", "signin-mailbox-wrong-account")


def test_an_unticked_gmail_permission_is_named(page, services, fake, functions_url):
    name, _ = mailbox_with_credentials(services, fake.url)
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    page.locator('input[name=scope][value="https://mail.google.com/"]').uncheck()
    page.get_by_role("button", name="Allow").click()
    _expect_failure_on_mailbox_page(page, services, name, "the Gmail permission", "signin-mailbox-unticked-scope")


def test_a_client_secret_that_does_not_match_is_named(page, services, fake, functions_url):
    name, _ = mailbox_with_credentials(services, fake.url, secret="GOCSPX-typo-in-the-secret-000000")
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    page.get_by_role("button", name="Allow").click()
    _expect_failure_on_mailbox_page(page, services, name, "the client secret does not match the client id",
                                    "signin-mailbox-bad-secret")


def test_an_account_without_a_workspace_domain_is_refused_at_consent(page, services, fake, functions_url):
    name, _ = mailbox_with_credentials(services, fake.url, address_hd=None)
    sign_in_with_google(page, functions_url, ADMIN)
    start_mailbox_sign_in(page, functions_url, name)
    page.get_by_role("button", name="Allow").click()
    _expect_failure_on_mailbox_page(page, services, name, "has no Google Workspace domain", "signin-mailbox-personal")
    assert services.store.get_mailbox(name)["credentials"][0]["status"] != "connected"


def test_an_expired_answer_from_google_is_named(page, services, fake, functions_url):
    name, _ = mailbox_with_credentials(services, fake.url)
    state = "expired-state-" + uuid.uuid4().hex
    services.store.put_oauth_state(state, {"mailbox": name, "instance": "production", "code_verifier": "v"}, -5)
    sign_in_with_google(page, functions_url, ADMIN)
    page.goto(f"{functions_url}/oauth_callback?state={state}&code=4/whatever")
    _expect_failure_on_mailbox_page(page, services, name, "sign-in expired or already used", "signin-mailbox-expired")


def test_a_forged_answer_lands_on_the_mailbox_list_with_a_notice(page, services, functions_url):
    from playwright.sync_api import expect

    sign_in_with_google(page, functions_url, ADMIN)
    page.goto(f"{functions_url}/oauth_callback?state=forged-{uuid.uuid4().hex}&code=4/whatever")
    expect(page.get_by_role("heading", level=1, name="Mailboxes")).to_be_visible()
    expect(page.locator("#signin-result")).to_contain_text("did not match a sign-in started here")
    shot(page, "signin-mailbox-forged")
