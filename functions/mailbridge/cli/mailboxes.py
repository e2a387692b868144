"""Mailbox and credential commands: mailbox add|list|show|set, credentials add, connect-url, disconnect."""

from __future__ import annotations

import json
import sys

import click

from mailbridge.cli import common
from mailbridge.errors import InvalidInput
from mailbridge.services import mailboxes, outbox


# -- mailboxes ----------------------------------------------------------------------------------
@click.group()
def mailbox():
    """Create and inspect mailboxes."""


@mailbox.command("add")
@click.argument("name")
@click.option("--address", required=True, help="The mailbox's Google Workspace address.")
def mailbox_add(name, address):
    created = mailboxes.add_mailbox(common.services(), name, address)
    click.echo(f"mailbox {created['name']} <{created['address']}> created; next: "
               f"scripts/mailbridge credentials add {created['name']} --instance {common.services().settings.instance} "
               "--client-id ID --client-secret-stdin")


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True)
def mailbox_list(as_json):
    services = common.services()
    views = [mailboxes.view(services, m) for m in services.store.list_mailboxes()]

    def render(rows):
        if not rows:
            click.echo("no mailboxes yet: scripts/mailbridge mailbox add NAME --address EMAIL")
        for row in rows:
            click.echo(f"{row['name']:<20} {row['address']:<32} {row['status']:<15} last poll {row['last_poll_at'] or '-'}")

    common.emit(views, as_json, render)


@mailbox.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def mailbox_show(name, as_json):
    services = common.services()
    box = services.store.get_mailbox(name)
    data = {**mailboxes.view(services, box), "outbox": outbox.status(services, box)}

    def render(d):
        click.echo(f"{d['name']} <{d['address']}>  type {d['type']}  status {d['status']}  (this instance: {d['instance']})")
        click.echo(f"  last poll {d['last_poll_at'] or '-'}  last error {d['last_error'] or '-'}  backlog {d['backlog']}")
        o = d["outbox"]
        age = f", oldest {o['oldest_queued_age_s']} s" if o["oldest_queued_age_s"] is not None else ""
        click.echo(f"  outbox: {o['queued']} queued{age}; sent today {o['sent_today']}/{o['daily_budget']}"
                   f"; last send error {o['last_error'] or '-'}")
        lease = d.get("lease")
        if lease:
            click.echo(f"  syncing now: lease held by {lease['owner']} since {lease['since']} until {lease['until']}")
        for c in d["credentials"]:
            click.echo(f"  credentials [{c['instance']}] {c['client_id']}  {c['status']}"
                       f"{' as ' + c['connected_email'] if c['connected_email'] else ''}")
            click.echo(f"    redirect URI to register with Google: {c['redirect_uri']}")
            if c["last_error"]:
                click.echo(f"    last error: {c['last_error']}")
        click.echo("  incoming: " + ", ".join(f"{k}={v}" for k, v in d["incoming"].items()))
        click.echo("  outgoing: " + ", ".join(f"{k}={v!r}" for k, v in d["outgoing"].items() if k != "acknowledgement_template"))

    common.emit(data, as_json, render)


@mailbox.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
def mailbox_set(name, key, value):
    path, typed = mailboxes.set_mailbox_setting(common.services(), name, key, value)
    click.echo(f"{name}: {path} = {json.dumps(typed)}")


# -- credentials / connection -------------------------------------------------------------------
@click.group()
def credentials():
    """OAuth client credential sets, one per instance."""


@credentials.command("add")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", required=True, help="production, uat, dev or your own name.")
@click.option("--client-id", required=True, help="The whole id, ending in .apps.googleusercontent.com.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from standard input.")
def credentials_add(mailbox_name, instance, client_id, client_secret_stdin):
    if not client_secret_stdin:
        raise InvalidInput("pass --client-secret-stdin and pipe the secret (it never goes on the command line)")
    secret = sys.stdin.readline().strip()
    services = common.services()
    mailboxes.add_credentials(services, mailbox_name, instance, client_id, secret)
    redirect = services.settings.redirect_uri if services.settings.has_function_urls else "(set MAILBRIDGE_FUNCTIONS_URL)"
    click.echo(f"credential set [{instance}] added to {mailbox_name}; register this redirect URI "
               f"with the OAuth client: {redirect}")


@click.command("connect-url")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", default=None)
def connect_url(mailbox_name, instance):
    """Print a signed, single-use start URL (valid 15 minutes)."""

    click.echo(mailboxes.connect_url(common.services(), mailbox_name, instance))


@click.command("disconnect")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", default=None)
def disconnect(mailbox_name, instance):
    cred = mailboxes.disconnect(common.services(), mailbox_name, instance)
    click.echo(f"{mailbox_name} [{cred['instance']}] disconnected: token revoked and removed")


COMMANDS = [mailbox, credentials, connect_url, disconnect]
