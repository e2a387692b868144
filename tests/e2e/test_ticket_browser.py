"""What the agent sees on the ticket page, in real headless Chromium against the local stack
(docs/images.md, docs/merging.md): a pasted screenshot rendered in place from our own attachment
route with no request leaving the stack, remote images blocked until asked for, a merge from the
page; each page scanned with axe-core and kept as a screenshot."""

from __future__ import annotations

import json
from urllib.parse import urlparse
import uuid

import pytest

from mailbridge.services import mailboxes, sync
from tests.e2e.test_admin_browser import browser, page, shot  # noqa: F401 - shared fixtures
from tests.e2e.test_admin_journeys import _axe, sign_in
from tests.helpers import connect_mailbox, deliver, make_mail, make_services
from tests.images import png, related_message

pytestmark = pytest.mark.browser
REMOTE = "https://tracker.example/banner.png"


@pytest.fixture
def services(mb_env, fake, firestore, storage_emulator, functions_url):
    return make_services()


@pytest.fixture
def desk(services, fake):
    name = f"see-{uuid.uuid4().hex[:6]}"
    address = f"{name}@acme.example"
    connect_mailbox(services, fake.url, name, address)
    mailboxes.set_mailbox_setting(services, name, "outgoing.acknowledge_new", "false")
    return name, address


@pytest.fixture
def scanned(browser):  # noqa: F811
    """A page whose CSP axe may pass (bypass_csp injects axe only; the frame keeps its own)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    yield tab
    context.close()


NATURAL_WIDTH = """i => (i.complete && i.naturalWidth > 0) ? i.naturalWidth : new Promise(done => {
    i.addEventListener("load", () => done(i.naturalWidth)); i.addEventListener("error", () => done(0)); })"""


def rendered_width(page, alt: str) -> int:
    """The natural width of the image with this alt text in the first message's frame, once it
    has loaded (0 when it failed)."""
    image = page.frame_locator('iframe[name="frame-1"]').locator(f'img[alt="{alt}"]')
    image.wait_for(state="attached")
    return image.evaluate(NATURAL_WIDTH)


def ticket_of(services, name: str) -> dict:
    return max(services.store.list_tickets(mailbox=name), key=lambda t: t["number"])


def test_a_pasted_screenshot_renders_in_place_and_nothing_leaves_the_stack(page, services, fake, desk):  # noqa: F811
    from playwright.sync_api import expect

    name, address = desk
    deliver(fake.url, address, related_message("ann@customer.example", address, "Error on save", REMOTE))
    sync.poll(services, name)
    ticket = ticket_of(services, name)
    answered: list[str] = []  # every request that got an answer (a CSP-blocked one never does)
    page.context.on("response", lambda response: answered.append(response.url))
    remote_fetched: list[str] = []
    page.context.route(REMOTE, lambda route: (remote_fetched.append(route.request.url),
                                              route.fulfill(body=png(300, 80), content_type="image/png")))
    sign_in(page, services)
    page.goto(f"{services.settings.function_url('admin')}/tickets/{ticket['id']}")
    assert rendered_width(page, "screenshot of the error") == 320
    frame = page.frame(name="frame-1")
    screenshot = frame.locator('img[alt="screenshot of the error"]')
    expect(screenshot).to_be_visible()
    assert screenshot.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [320, 200]
    assert frame.locator('img[alt=""]').count() == 0  # the 1x1 beacon is gone
    expect(frame.locator("details.small-image summary")).to_have_text("small image (40×20)")
    stack = urlparse(services.settings.function_url("admin")).netloc
    assert {urlparse(url).netloc for url in answered if not url.startswith("data:")} == {stack}
    assert remote_fetched == []  # the route would have seen the browser ask for it
    shot(page, "ticket-inline-image")

    # Remote images: blocked until the agent asks, then fetched by the browser itself.
    expect(page.get_by_text("1 image from elsewhere is blocked")).to_be_visible()
    page.get_by_role("link", name="Show images in this message").click()
    page.frame(name="frame-1").wait_for_url("**images=1**")
    assert rendered_width(page, "remote banner") == 300
    assert remote_fetched == [REMOTE]
    shot(page, "ticket-remote-images-shown")

    # Remembered per sender only when the admin asks: then the frame loads them at once.
    page.goto(f"{services.settings.function_url('admin')}/tickets/{ticket['id']}")
    assert rendered_width(page, "screenshot of the error") == 320
    assert remote_fetched == [REMOTE]
    page.get_by_role("button", name="Always show images from ann@customer.example").click()
    expect(page.locator("main [role=status]").first).to_contain_text("Images from ann@customer.example are shown")
    assert rendered_width(page, "remote banner") == 300
    assert remote_fetched == [REMOTE, REMOTE]


def test_the_ticket_pages_pass_axe_and_a_merge_from_the_page_lands_on_the_survivor(scanned, services, fake, desk):
    from playwright.sync_api import expect

    name, address = desk
    deliver(fake.url, address, related_message("ann@customer.example", address, "Error on save", REMOTE))
    sync.poll(services, name)
    first = ticket_of(services, name)
    deliver(fake.url, address, make_mail("ann@customer.example", address, "The same error again"))
    sync.poll(services, name)
    second = ticket_of(services, name)
    admin = services.settings.function_url("admin")
    sign_in(scanned, services)
    found = {}
    scanned.goto(f"{admin}/tickets/{first['id']}")
    found["inline"] = _axe(scanned)
    scanned.goto(f"{admin}/tickets/{second['id']}")
    scanned.get_by_text("Merge into another ticket").click()
    scanned.get_by_label(f"Ticket number to merge #{second['number']} into").fill(str(first["number"]))
    scanned.get_by_role("button", name=f"Merge #{second['number']} into that ticket").click()
    expect(scanned.locator("main [role=status]").first).to_contain_text(f"Ticket #{second['number']} merged")
    expect(scanned.get_by_role("heading", level=1)).to_contain_text(f"#{first['number']}")
    found["survivor"] = _axe(scanned)
    shot(scanned, "ticket-merged-survivor")
    scanned.goto(f"{admin}/tickets/{second['id']}")
    expect(scanned.locator("#merged-into")).to_contain_text(f"#{first['number']}")
    found["merged"] = _axe(scanned)
    shot(scanned, "ticket-merged-source")
    assert {k: v for k, v in found.items() if v} == {}, json.dumps(found, indent=1)[:3000]


def test_a_german_customer_gets_the_german_acknowledgement(scanned, services, fake, desk):
    from playwright.sync_api import expect

    from mailbridge import bootstrap
    from mailbridge.cli import main as cli_main

    name, address = desk
    bootstrap.reset()
    try:
        assert cli_main(["mailbox", "set", name, "outgoing.acknowledge_new", "true"]) == 0
        assert cli_main(["mailbox", "set", name, "outgoing.acknowledgement_templates", json.dumps({
            "de": "Danke für Ihre Nachricht. Wir haben Ticket {tag} eröffnet und antworten bald.",
            "en": "Thank you. Ticket {tag} is open."})]) == 0
    finally:
        bootstrap.reset()
    gmail = deliver(fake.url, address, make_mail(
        "kunde@customer.example", address, "Drucker defekt",
        "Guten Tag, mein Drucker funktioniert seit gestern nicht mehr. Können Sie mir bitte helfen?"))
    sync.poll(services, name)
    ticket = ticket_of(services, name)
    row = services.store.db.collection("inbound").document(f"{name}~{gmail['id']}").get().to_dict()
    assert row["acknowledgement_language"] == {"language": "de", "source": "detected"}
    sign_in(scanned, services)
    scanned.goto(f"{services.settings.function_url('admin')}/tickets/{ticket['id']}")
    expect(scanned.get_by_text("Danke für Ihre Nachricht. Wir haben Ticket")).to_be_visible()
    shot(scanned, "ticket-german-acknowledgement")
    assert _axe(scanned) == []
