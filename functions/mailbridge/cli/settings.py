"""Global settings and the admin link: settings show|set, admin-url."""

from __future__ import annotations

import json

import click

from mailbridge.cli import common
from mailbridge.services import mailboxes


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
    """
    typed = mailboxes.set_global_setting(common.services(), key, value)
    click.echo(f"{key} = {json.dumps(typed)}")


@click.command("admin-url")
def admin_url():
    """Print a signed, single-use link that opens an admin session.

    \b
    Example:
      scripts/mailbridge admin-url
    """

    click.echo(mailboxes.admin_url(common.services()))


COMMANDS = [settings, admin_url]
