"""Global settings, the ways into the admin pages and the project check: settings show|set,
admin-url, admin sessions revoke-all, doctor."""

from __future__ import annotations

import json
import sys

import click

from mailbridge import bootstrap
from mailbridge.cli import common
from mailbridge.domain import models
from mailbridge.errors import InvalidInput
from mailbridge.services import admin_access, mailboxes


# -- settings and admin ----------------------------------------------------------------------------
@click.group()
def settings():
    """Global settings and backend switches.

    \b
    Example:
      scripts/mailbridge settings set default_outgoing_mailbox support
    """


@settings.command("show")
@click.option("--json", "as_json", is_flag=True)
def settings_show(as_json):
    """Every global setting and this deployment's instance.

    \b
    Example:
      scripts/mailbridge settings show --json
    """
    services = common.services()
    data = services.store.settings()
    data["instance"] = services.settings.instance

    def render(d):
        for key, value in d.items():
            click.echo(f"{key} = {json.dumps(value)}")

    common.emit(data, as_json, render)


@settings.command("set")
@click.argument("key")
@click.argument("value")
def settings_set(key, value):
    """Change one global setting.

    \b
    Example:
      scripts/mailbridge settings set use_scheduling_service false
      scripts/mailbridge settings set admin_emails "a@example.com,b@example.com"
      scripts/mailbridge settings set admin_domain example.com
    """
    before = common.services().store.settings().get(key)
    typed = mailboxes.set_global_setting(common.services(), key, value)
    common.audited("settings.set", key, before={key: before}, after={key: typed})
    click.echo(f"{key} = {json.dumps(typed)}")


@click.command("admin-url")
def admin_url():
    """Print a signed, single-use link that opens an admin session (the break-glass way in:
    admins normally sign in with Google).

    \b
    Example:
      scripts/mailbridge admin-url
    """

    url = mailboxes.admin_url(common.services())
    common.audited("admin_link.issued", "admin")  # the break-glass way in: who asked for it
    click.echo(url)


@click.group()
def admin():
    """Admin access: sessions of the admin pages.

    \b
    Example:
      scripts/mailbridge admin sessions revoke-all
    """


@admin.group("sessions")
def admin_sessions():
    """Admin sessions (opened by Google sign-in or an admin-url link).

    \b
    Example:
      scripts/mailbridge admin sessions revoke-all
    """


@admin_sessions.command("revoke-all")
def sessions_revoke_all():
    """End every admin session now; everyone signs in again.

    \b
    Example:
      scripts/mailbridge admin sessions revoke-all
    """
    count = admin_access.revoke_all_sessions(common.services())
    common.audited("sessions.revoke", "all", details={"ended": count})
    click.echo(f"{count} admin session{'' if count == 1 else 's'} ended")


def _client_ids(services) -> list[str]:
    """The OAuth client ids doctor checks the oauth_callback redirect URI of: this instance's
    credential sets (empty if Firestore cannot be read)."""
    ids = []
    try:
        for mailbox in services.store.list_mailboxes():
            credential = models.credential_of(mailbox, services.settings.instance)
            if credential and credential.get("client_id") not in ids:
                ids.append(credential["client_id"])
    except Exception:  # noqa: BLE001 - doctor also runs where Firestore does not exist yet
        ids = []
    return ids


@click.command("doctor")
@click.option("--region", default=None, help="Region of the deployment (default: MAILBRIDGE_REGION).")
def doctor(region):
    """Check a Google Cloud project for what `terraform apply` and a first mailbox connection
    need, and say how to fix each problem (terraform/README.md).

    \b
    Example:
      GOOGLE_CLOUD_PROJECT=acme-helpdesk MAILBRIDGE_REGION=europe-west1 scripts/mailbridge doctor
    """
    services = common.services()
    settings_ = services.settings
    region = region or settings_.region
    if not region:
        raise InvalidInput("the region is not set: export MAILBRIDGE_REGION or pass --region")
    # The admin sign-in client is checked against its own redirect URI (admin + /signin/callback).
    status = bootstrap.doctor().run(settings_.project, region, settings_.prefix, client_ids=_client_ids(services),
                                    admin_client_id=settings_.admin_oauth_client_id)
    sys.exit(status)  # click's Exit is swallowed outside standalone mode; cli/app.py maps SystemExit


COMMANDS = [settings, admin_url, admin, doctor]
