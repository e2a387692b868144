"""The admin's mistakes, walked through in headless Chromium against the local stack and the fake
Google (issue: the whole journey, including every way it can go wrong): each test is one failure
and the way out of it; screenshots go to test-artifacts/screenshots/. The last test scans every
admin page with axe-core (installed from tests/a11y by scripts/ensure_browser)."""

from __future__ import annotations

import json
from pathlib import Path
import uuid

import pytest

from mailbridge.services import labels, mailboxes, sync
from tests.e2e.test_admin_browser import browser, page, shot  # noqa: F401 - shared fixtures
from tests.helpers import connect_mailbox, deliver, make_mail, make_services

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def sign_in(page, services) -> None:
    page.goto(mailboxes.admin_url(services))
    page.get_by_role("button", name="Open admin session").click()  # the link is spent only by this POST (README.md, "Admin access")


def connected(services, fake, prefix="desk"):
    name = unique(prefix)
    connect_mailbox(services, fake.url, name, f"{name}@acme.example")
    return name


def mailbox_url(services, name: str) -> str:
    return f"{services.settings.function_url('admin')}/mailboxes/{name}"


def notice(page):
    return page.locator("main [role=status]").first


def test_a_bad_client_id_keeps_what_was_typed_and_shows_the_error_at_the_field(page, services):
    from playwright.sync_api import expect

    name = unique("typo")
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    sign_in(page, services)
    page.goto(mailbox_url(services, name))
    page.get_by_label("Client id").fill("123-typo.apps.googleusercontent")
    page.get_by_label("Client secret").fill("some-secret-value")
    page.get_by_role("button", name="Add credentials").click()
    field = page.get_by_label("Client id")
    expect(field).to_have_value("123-typo.apps.googleusercontent")
    expect(field).to_have_attribute("aria-invalid", "true")
    described = field.get_attribute("aria-describedby").split()
    assert "add-credentials-client_id-error" in described
    expect(page.locator("#add-credentials-client_id-error")).to_contain_text("whole id")
    expect(field).to_be_focused()
    shot(page, "journey-client-id-typo")


def test_a_wrong_secret_is_replaced_and_a_set_removed_after_confirmation(page, services, fake):
    from playwright.sync_api import expect

    name = connected(services, fake)
    sign_in(page, services)
    page.goto(mailbox_url(services, name))
    page.get_by_text("Fix the Production credential set").click()
    page.get_by_label("New client secret").fill("a-corrected-secret")
    page.get_by_role("button", name="Save credential set").click()
    expect(notice(page)).to_contain_text("Credential set Production updated")
    assert page.url.endswith("#credentials")
    page.get_by_text("Fix the Production credential set").click()
    page.get_by_role("button", name="Remove the Production credential set").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Remove the Production credential set")
    shot(page, "journey-remove-credentials-confirm")
    page.get_by_role("button", name="Remove credential set").click()
    expect(notice(page)).to_contain_text("token was revoked")
    assert services.store.get_mailbox(name)["credentials"] == []


def test_a_personal_gmail_address_is_refused_at_the_field(page, services):
    from playwright.sync_api import expect

    sign_in(page, services)
    page.get_by_label("Name").fill("personal")
    page.get_by_label("Google Workspace address").fill("someone@gmail.com")
    page.get_by_role("button", name="Create mailbox").click()
    address = page.get_by_label("Google Workspace address")
    expect(address).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#create-address-error")).to_contain_text("personal Google account")
    expect(page.get_by_label("Name")).to_have_value("personal")
    shot(page, "journey-gmail-refused")


def test_acknowledgement_texts_by_language_are_checked_at_the_field_and_saved(page, services):
    from playwright.sync_api import expect

    name = unique("langs")
    mailboxes.add_mailbox(services, name, f"{name}@acme.example")
    sign_in(page, services)
    page.goto(mailbox_url(services, name) + "#outgoing")
    field = page.get_by_label("Acknowledgement texts by language")
    expect(field).to_have_value("")
    field.fill('{"deutsch": "Danke {tag}"}')
    page.get_by_role("button", name="Save outgoing settings").click()
    field = page.get_by_label("Acknowledgement texts by language")
    expect(field).to_have_value('{"deutsch": "Danke {tag}"}')
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#outgoing-acknowledgement_templates-error")).to_contain_text("BCP 47")
    assert services.store.get_mailbox(name)["outgoing"].get("acknowledgement_templates") in (None, {})
    field.fill('{"de": "Danke, Ihr Ticket {tag} ist eröffnet"}')
    page.get_by_role("button", name="Save outgoing settings").click()
    expect(notice(page)).to_contain_text("Outgoing settings saved")
    saved = services.store.get_mailbox(name)["outgoing"]["acknowledgement_templates"]
    assert saved == {"de": "Danke, Ihr Ticket {tag} ist eröffnet"}
    assert json.loads(page.get_by_label("Acknowledgement texts by language").input_value()) == saved
    shot(page, "journey-acknowledgement-languages")


def test_the_label_picker_starts_empty_lists_user_labels_first_and_offers_delete(page, services, fake):
    from playwright.sync_api import expect

    name = connected(services, fake)
    label = labels.create_label(services, name, "Helpdesk/Done")
    sign_in(page, services)
    page.goto(mailbox_url(services, name))
    options = page.locator("#deletion-label option")
    texts = options.all_inner_texts()
    assert (texts[0], options.first.get_attribute("value")) == ("Choose a label…", "")
    assert texts.index(f"Helpdesk/Done ({label['id']})") < texts.index("Trash (TRASH)")
    assert "Forums (CATEGORY_FORUMS)" in texts
    expect(page.locator("#deletion-help")).to_contain_text("only applies when “after processing”")
    page.get_by_label(f"Pick a label of {name}@acme.example").select_option(label["id"])
    expect(page.get_by_label("Also switch processed mail to “delete”")).to_be_checked()
    page.get_by_role("button", name="Use as deletion label").click()
    expect(notice(page)).to_contain_text("After processing is now “delete”")
    expect(page.locator("#after_processing")).to_have_value("delete")
    assert page.url.endswith("#labels")
    shot(page, "journey-label-picker")


def test_poll_now_reports_what_push_already_took_in(page, services, fake):
    from playwright.sync_api import expect

    name = connected(services, fake)
    for subject in ("one", "two", "three", "four"):
        deliver(fake.url, f"{name}@acme.example", make_mail("ann@customer.example", f"{name}@acme.example", subject))
    sync.poll(services, name)  # what a push notification does before the admin clicks
    sign_in(page, services)
    page.goto(mailbox_url(services, name))
    page.get_by_role("button", name="Poll now").click()
    expect(notice(page)).to_contain_text("nothing new")
    expect(notice(page)).to_contain_text("4 messages created")
    shot(page, "journey-poll-now-after-push")


def test_times_read_as_words_and_the_inbound_log_fits_a_phone(browser, services, fake):  # noqa: F811
    from playwright.sync_api import expect

    name = connected(services, fake)
    address = f"{name}@acme.example"
    deliver(fake.url, address, make_mail("ann@customer.example", address, "A subject long enough to wrap " * 3))
    sync.poll(services, name)
    context = browser.new_context(viewport={"width": 375, "height": 800}, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        sign_in(page, services)
        page.goto(mailbox_url(services, name) + "/inbound")
        moment = page.locator("td time").first
        expect(moment).to_have_text("just now")
        assert "Asia/Tokyo" in moment.get_attribute("title")
        assert moment.get_attribute("datetime").endswith("+00:00")
        for label in ("Outcome", "Ticket"):
            box = page.locator(f"td[data-label={label}]").first.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375, (label, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        shot(page, "journey-inbound-375px")
    finally:
        context.close()


def test_overrides_are_checked_and_the_sender_explained_in_words(page, services, fake):
    from playwright.sync_api import expect

    name = connected(services, fake)
    billing = connected(services, fake, "billing")
    address = f"{name}@acme.example"
    deliver(fake.url, address, make_mail("ann@customer.example", address, "Invoice wrong"))
    sync.poll(services, name)
    sign_in(page, services)
    page.goto(f"{services.settings.function_url('admin')}/settings")
    page.get_by_label("Applies to tickets by").select_option("ticket")
    page.get_by_label("Value").fill("999")
    page.get_by_role("button", name="Save override").click()
    expect(page.locator("#override-key")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#override-key-error")).to_contain_text("no ticket '999'")
    expect(page.get_by_label("Value")).to_have_value("999")
    shot(page, "journey-override-refused")
    page.get_by_label("Applies to tickets by").select_option("team")
    page.get_by_label("Value").fill("Billing")
    page.get_by_label("Mailbox", exact=True).select_option(billing)
    page.get_by_role("button", name="Save override").click()
    expect(notice(page)).to_contain_text("Override saved: Team Billing")
    page.goto(f"{services.settings.function_url('admin')}/tickets/1")
    page.get_by_text("Set the team or ticket type").click()
    page.get_by_label("Team", exact=True).fill("billing")
    page.get_by_role("button", name="Save team").click()
    expect(page.locator("#ticket-team")).to_have_text("billing")
    expect(page.locator("#sender")).to_contain_text(f"{billing}, because team 'billing' sends through it")
    assert "override" not in page.locator("#sender").inner_text()
    shot(page, "journey-resolution-in-words")


def test_the_ticket_list_pages_through_older_tickets(page, services, fake):
    from playwright.sync_api import expect

    name = connected(services, fake)
    address = f"{name}@acme.example"
    for i in range(3):
        deliver(fake.url, address, make_mail(f"c{i}@customer.example", address, f"Question {i}"))
    sync.poll(services, name)
    sign_in(page, services)
    page.goto(f"{services.settings.function_url('admin')}/tickets?size=2")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.get_by_role("link", name="Older tickets →").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("link", name="#1", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Older tickets →")).to_have_count(0)
    shot(page, "journey-tickets-older-page")


def test_disconnect_and_remove_ask_first_and_removal_keeps_the_tickets(page, services, fake):
    from playwright.sync_api import expect

    name = connected(services, fake)
    address = f"{name}@acme.example"
    deliver(fake.url, address, make_mail("ann@customer.example", address, "Keep me"))
    sync.poll(services, name)
    sign_in(page, services)
    page.goto(mailbox_url(services, name))
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Disconnect {name}?")
    page.get_by_role("link", name="Cancel").click()
    expect(page.locator("#mailbox-status")).to_have_text("connected")
    page.get_by_role("button", name=f"Remove mailbox {name}").click()
    expect(page.get_by_text("Its tickets and its inbound log are kept.")).to_be_visible()
    shot(page, "journey-remove-mailbox-confirm")
    page.get_by_role("button", name="Remove mailbox").click()
    expect(notice(page)).to_contain_text(f"Mailbox {name} removed")
    expect(page.get_by_role("link", name=name)).to_have_count(0)
    page.goto(f"{services.settings.function_url('admin')}/tickets")
    expect(page.get_by_role("link", name="Keep me")).to_be_visible()


def _axe(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def test_no_admin_page_has_a_serious_or_critical_accessibility_violation(browser, services, fake):  # noqa: F811
    assert AXE.exists(), "axe-core is missing: run scripts/ensure_browser (npm ci in tests/a11y)"
    name = connected(services, fake)
    address = f"{name}@acme.example"
    labels.create_label(services, name, "Helpdesk/Done")
    deliver(fake.url, address, make_mail("ann@customer.example", address, "Printer jammed"))
    deliver(fake.url, address, make_mail("offer@spam.example", address, "Cheap toner"), labels="SPAM,UNREAD")
    sync.poll(services, name)  # the mailbox page lists the spam message with "Make a ticket"
    mailboxes.add_mailbox(services, unique("empty"), f"{unique('empty')}@acme.example")
    admin = services.settings.function_url("admin")
    # bypass_csp: the page's CSP allows only its own scripts; axe is injected for the scan only
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    found = {}
    try:
        page = context.new_page()  # noqa: F811
        sign_in(page, services)
        visits = [
            ("mailboxes", lambda: page.goto(admin + "/")),
            ("mailbox", lambda: page.goto(f"{admin}/mailboxes/{name}")),
            ("mailbox-field-error", lambda: (page.goto(f"{admin}/mailboxes/{name}"),
                                             page.get_by_label("Create a new label in Gmail").fill("INBOX"),
                                             page.get_by_role("button", name="Create label").click())),
            ("inbound", lambda: page.goto(f"{admin}/mailboxes/{name}/inbound")),
            ("tickets", lambda: page.goto(admin + "/tickets")),
            ("ticket", lambda: page.goto(admin + "/tickets/1")),
            ("settings", lambda: page.goto(admin + "/settings")),
            ("audit", lambda: page.goto(admin + "/audit")),
            ("confirm", lambda: (page.goto(f"{admin}/mailboxes/{name}"),
                                 page.get_by_role("button", name=f"Remove mailbox {name}").click())),
            ("not-found", lambda: page.goto(admin + "/no-such-page")),
        ]
        for label, visit in visits:
            visit()
            violations = _axe(page)
            if violations:
                found[label] = violations
            shot(page, f"a11y-{label}")
    finally:
        context.close()
    assert found == {}, json.dumps(found, indent=1)[:4000]
