"""The admin's journey in real headless Chromium against the local stack and the fake Google:
sign in by link, create a mailbox and credentials, connect through the consent page, pick a
deletion label, poll, open the ticket and reply; hostile HTML runs nothing."""

from __future__ import annotations

import base64
from email import message_from_bytes, policy
import os
from pathlib import Path
import uuid

import pytest
import requests

from mailbridge.services import mailboxes
from tests.corpus import make_message
from tests.helpers import CLIENT_SECRET, deliver, make_services

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
HOSTILE_HTML = ("<p>Please help</p><script>window.__pwned = 1; alert('script')</script>"
                "<img src=\"x\" onerror=\"window.__pwned = 2; alert('onerror')\">"
                "<svg onload=\"alert('svg')\"></svg><a href=\"javascript:alert('href')\">click</a>")


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure_browser (installs Debian chromium)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.dialogs = []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page
    context.close()


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def flash(page) -> str:
    return page.locator("main [role=status]").first.inner_text()


def sent_messages(fake_url: str, address: str) -> list:
    rows = requests.get(f"{fake_url}/_fake/users/{address}/sent", timeout=10).json()
    return [message_from_bytes(base64.urlsafe_b64decode(r["raw"] + "=" * (-len(r["raw"]) % 4)),
                               policy=policy.default) for r in rows]


def test_admin_journey_in_a_real_browser(page, services, fake):
    from playwright.sync_api import expect

    name = f"support-{uuid.uuid4().hex[:6]}"
    address = f"{name}@acme.example"
    client_id = f"{uuid.uuid4().int % 10**12}-{name}.apps.googleusercontent.com"
    requests.post(f"{fake.url}/_fake/users", json={"email": address, "name": "Support"},
                  timeout=10).raise_for_status()

    # Open the admin link: the session starts on the mailbox list.
    page.goto(mailboxes.admin_url(services))
    page.get_by_role("button", name="Open admin session").click()  # the link is spent only by this POST
    expect(page.get_by_role("heading", level=1, name="Mailboxes")).to_be_visible()

    # Create a mailbox.
    page.get_by_label("Name").fill(name)
    page.get_by_label("Google Workspace address").fill(address)
    page.get_by_role("button", name="Create mailbox").click()
    expect(page.get_by_role("heading", level=1, name=f"Mailbox {name}")).to_be_visible()

    # The page shows the exact redirect URI; register the OAuth client with it, as in Google's console.
    redirect_uri = page.get_by_label("Redirect URI").input_value()
    assert redirect_uri == services.settings.redirect_uri
    requests.post(f"{fake.url}/_fake/oauth/clients", json={
        "client_id": client_id, "client_secret": CLIENT_SECRET, "redirect_uris": [redirect_uri]},
        timeout=10).raise_for_status()
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_role("button", name="Add credentials").click()
    expect(page.get_by_role("status").first).to_contain_text("Credential set for instance")
    expect(page.get_by_role("button", name="Copy")).to_be_visible()  # the CSP-allowed script ran
    shot(page, "mailbox-before-sign-in")

    # Sign in with Google on the fake consent page.
    page.get_by_role("button", name="Sign in with Google").click()
    expect(page.get_by_role("button", name="Allow")).to_be_visible()
    expect(page.get_by_label("Account")).to_have_value(address)
    page.get_by_role("button", name="Allow").click()
    expect(page.locator("#signin-result")).to_contain_text(f"Connected as {address}")  # back on the mailbox's page
    page.get_by_role("link", name="Mailboxes", exact=True).click()
    expect(page.get_by_role("row", name=name)).to_contain_text(address)
    shot(page, "mailboxes")
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("button", name="Disconnect")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in with Google")).to_have_count(0)

    # Create a label, then pick it as the deletion label from the mailbox's real labels.
    page.get_by_label("Create a new label in Gmail").fill("Helpdesk/Done")
    page.get_by_role("button", name="Create label").click()
    expect(page.get_by_role("status").first).to_contain_text("Label Helpdesk/Done")
    option = page.locator("#deletion-label option", has_text="Helpdesk/Done")
    page.get_by_label(f"Pick a label of {address}").select_option(option.get_attribute("value"))
    page.get_by_role("button", name="Use as deletion label").click()
    expect(page.locator("#current-deletion-label")).to_contain_text("Helpdesk/Done (Label_")
    page.get_by_label("After processing").select_option("delete")
    page.get_by_role("button", name="Save incoming settings").click()
    expect(page.get_by_role("status").first).to_contain_text("Incoming settings saved")
    shot(page, "mailbox-connected")

    # Deliver mail and poll from the page.
    deliver(fake.url, address, make_message(
        from_="Carol Customer <carol@customer.example>", to=address, subject="Printer jammed",
        body="Hello,\nthe printer is jammed again.\nCarol\n", message_id=f"<{uuid.uuid4().hex}@customer.example>"))
    deliver(fake.url, address, make_message(
        from_="\"<img src=x onerror=alert('name')>\" <mallory@customer.example>", to=address,
        subject="<script>alert('subject')</script> Urgent", body="See the HTML part.", html=HOSTILE_HTML,
        message_id=f"<{uuid.uuid4().hex}@customer.example>"))
    page.get_by_role("button", name="Poll now").click()
    expect(page.get_by_role("status").first).to_contain_text("created 2")
    page.get_by_role("link", name="Inbound log").click()
    expect(page.get_by_role("cell", name="created")).to_have_count(2)
    shot(page, "inbound-log")

    # Tickets: the list, then the ticket, then a reply.
    page.get_by_role("link", name="Tickets", exact=True).first.click()
    page.get_by_label("Mailbox").select_option(name)
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("link", name="Printer jammed")).to_be_visible()
    shot(page, "tickets")
    page.get_by_role("link", name="Printer jammed").click()
    expect(page.get_by_text("the printer is jammed again.")).to_be_visible()
    expect(page.locator("#sender")).to_contain_text(name)
    page.get_by_label("Your reply to").fill("Hello Carol,\nwe are sending a technician.\n")
    shot(page, "ticket")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status").first).to_contain_text("Reply sent")
    expect(page.get_by_text("we are sending a technician.")).to_be_visible()
    sent = [m for m in sent_messages(fake.url, address) if "technician" in m.get_body(("plain",)).get_content()]
    assert len(sent) == 1
    assert sent[0]["To"].addresses[0].addr_spec == "carol@customer.example"
    assert "Printer jammed" in sent[0]["Subject"]

    # Hostile mail: subject, sender name and HTML body run nothing.
    page.get_by_role("link", name="Tickets", exact=True).first.click()
    page.get_by_role("link", name="<script>alert('subject')</script> Urgent").click()
    expect(page.locator("#ticket-subject")).to_have_text("<script>alert('subject')</script> Urgent")
    page.get_by_text("Show HTML version").click()
    frame_element = page.locator("iframe.html")
    expect(frame_element).to_be_visible()
    assert frame_element.get_attribute("sandbox") == ""
    frame = frame_element.content_frame
    expect(frame.get_by_text("Please help")).to_be_visible()
    page.wait_for_timeout(500)  # give any injected handler a chance to fire
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    shot(page, "ticket-hostile-html")

    # Settings: the backend switches with their effect explained.
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_label("Incoming service")).to_be_checked()
    expect(page.get_by_text("Cloud Scheduler's polls do nothing")).to_be_visible()
    shot(page, "settings")
    assert page.dialogs == []
