"""Mailbox and credential commands: mailbox add|list|show|set|remove, credentials add|set|remove,
connect-url, disconnect."""

from __future__ import annotations

import json
import sys

import click

from mailbridge.cli import common
from mailbridge.errors import InvalidInput
from mailbridge.services import events, mailboxes, outbox, privacy

INSTANCE_HELP = "production, uat or dev (any case)."


def _read_secret(client_secret_stdin: bool) -> str:
    if not client_secret_stdin:
        raise InvalidInput("pass --client-secret-stdin and pipe the secret (it never goes on the command line)")
    return sys.stdin.readline().strip()


# -- mailboxes ----------------------------------------------------------------------------------
@click.group()
def mailbox():
    """Create, inspect, change and remove mailboxes.

    \b
    Example:
      scripts/mailbridge mailbox add support --address support@example.com
    """


@mailbox.command("add")
@click.argument("name")
@click.option("--address", required=True, help="The mailbox's Google Workspace address (not gmail.com).")
def mailbox_add(name, address):
    """Create a mailbox for a dedicated Google Workspace address.

    \b
    Example:
      scripts/mailbridge mailbox add support --address support@example.com
    """
    created = mailboxes.add_mailbox(common.services(), name, address)
    common.audited("mailbox.add", created["name"], after={"address": created["address"]})
    click.echo(f"mailbox {created['name']} <{created['address']}> created; next: "
               f"scripts/mailbridge credentials add {created['name']} --instance {common.services().settings.instance} "
               "--client-id ID --client-secret-stdin")


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of `mailbox show --json` objects.")
def mailbox_list(as_json):
    """Every mailbox with its status for this instance.

    \b
    Example:
      scripts/mailbridge mailbox list --json
    """
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
@click.option("--json", "as_json", is_flag=True, help="One JSON object (no secrets).")
def mailbox_show(name, as_json):
    """A mailbox's settings, credential sets and sync state.

    \b
    Example:
      scripts/mailbridge mailbox show support
    """
    services = common.services()
    box = services.store.get_mailbox(name)
    data = {**mailboxes.view(services, box), "outbox": outbox.status(services, box),
            "events_waiting": events.waiting(services, box["name"])}

    def render(d):
        click.echo(f"{d['name']} <{d['address']}>  type {d['type']}  status {d['status']}  (this instance: {d['instance']})")
        click.echo(f"  last poll {d['last_poll_at'] or '-'}  last error {d['last_error'] or '-'}  backlog {d['backlog']}")
        o = d["outbox"]
        age = f", oldest {o['oldest_queued_age_s']} s" if o["oldest_queued_age_s"] is not None else ""
        click.echo(f"  outbox: {o['queued']} queued{age}; sent today {o['sent_today']}/{o['daily_budget']}"
                   f"; last send error {o['last_error'] or '-'}")
        click.echo(f"  events waiting to be published: {d['events_waiting']}")
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
        texts = ("acknowledgement_template", "acknowledgement_templates")
        click.echo("  outgoing: " + ", ".join(f"{k}={v!r}" for k, v in d["outgoing"].items() if k not in texts))
        languages = sorted(d["outgoing"].get("acknowledgement_templates") or {})
        if languages:
            click.echo(f"  acknowledgement languages: {', '.join(languages)} (else the default text)")

    common.emit(data, as_json, render)


@mailbox.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
def mailbox_set(name, key, value):
    """Change one setting (KEY is a dotted path into incoming or outgoing).

    \b
    Example:
      scripts/mailbridge mailbox set support incoming.after_processing archive
    """
    section, _, field = key.partition(".")
    before = (common.services().store.get_mailbox(name).get(section) or {}).get(field)
    path, typed = mailboxes.set_mailbox_setting(common.services(), name, key, value)
    common.audited("mailbox.set", name, before={path: before}, after={path: typed})
    click.echo(f"{name}: {path} = {json.dumps(typed)}")


@mailbox.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: the removal cannot be undone.")
@click.option("--purge", is_flag=True, help="Also delete its tickets, inbound log, outbound records, events and files.")
def mailbox_remove(name, yes, purge):
    """Delete a mailbox: stop its watch, revoke its tokens, destroy its secrets.

    Without --purge its tickets, inbound log, outbound records, events and files are kept
    (README.md, "Removing a mailbox"); with --purge they are deleted too.

    \b
    Example:
      scripts/mailbridge mailbox remove old-support --yes --purge
    """
    if not yes:
        raise InvalidInput(f"removing mailbox {name!r} revokes its tokens and cannot be undone: add --yes")
    services = common.services()
    result = mailboxes.remove_mailbox(services, name)
    sets = len(result["credentials_removed"])
    common.audited("mailbox.remove", name, details={"credential_sets": sets})
    removed = f"mailbox {name} removed ({sets} credential {'set' if sets == 1 else 'sets'} revoked and destroyed)"
    if not purge:
        click.echo(f"{removed}; its tickets, inbound log, outbound records, events and files are kept "
                   "(--purge deletes them)")
        return
    purged = privacy.purge_mailbox(services, name)
    common.audited("mailbox.purge", name, details=purged)
    counts = ", ".join(f"{n} {c}" for c, n in sorted(purged["deleted"].items())) or "no documents"
    click.echo(f"{removed}; purged {counts} and {purged['blobs_deleted']} files")


# -- credentials / connection -------------------------------------------------------------------
@click.group()
def credentials():
    """OAuth client credential sets, one per instance (production, uat, dev).

    \b
    Example:
      printf '%s\\n' "$SECRET" | scripts/mailbridge credentials add support --instance production \\
          --client-id 123-abc.apps.googleusercontent.com --client-secret-stdin
    """


@credentials.command("add")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", required=True, help=INSTANCE_HELP)
@click.option("--client-id", required=True, help="The whole id, ending in .apps.googleusercontent.com.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from standard input.")
def credentials_add(mailbox_name, instance, client_id, client_secret_stdin):
    """Add a credential set (an OAuth client) for one instance.

    \b
    Example:
      printf '%s\\n' "$SECRET" | scripts/mailbridge credentials add support --instance production \\
          --client-id 123-abc.apps.googleusercontent.com --client-secret-stdin
    """
    secret = _read_secret(client_secret_stdin)
    services = common.services()
    cred = mailboxes.add_credentials(services, mailbox_name, instance, client_id, secret)
    common.audited("credentials.add", mailbox_name, after={"instance": instance, "client_id": client_id})
    redirect = services.settings.redirect_uri if services.settings.has_function_urls else "(set MAILBRIDGE_FUNCTIONS_URL)"
    click.echo(f"credential set [{cred['instance']}] added to {mailbox_name}; register this redirect URI "
               f"with the OAuth client: {redirect}")


@credentials.command("set")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", required=True, help=INSTANCE_HELP)
@click.option("--client-id", default=None, help="A new client id (the set must be signed in again).")
@click.option("--client-secret-stdin", is_flag=True, help="Read a new client secret from standard input.")
def credentials_set(mailbox_name, instance, client_id, client_secret_stdin):
    """Fix a credential set: replace its client secret and/or change its client id.

    \b
    Example:
      printf '%s\\n' "$NEW_SECRET" | scripts/mailbridge credentials set support --instance production --client-secret-stdin
    """
    secret = _read_secret(True) if client_secret_stdin else None
    cred = mailboxes.update_credentials(common.services(), mailbox_name, instance, client_id, secret)
    common.audited("credentials.set", mailbox_name, after={"instance": instance, "client_id": client_id,
                                                           "client_secret_changed": bool(secret)})
    changed = [what for what, given in (("client id", client_id), ("client secret", secret)) if given is not None]
    tail = "; sign in again" if cred.get("status") != "connected" else ""
    click.echo(f"{mailbox_name} [{cred['instance']}]: {' and '.join(changed)} updated{tail}")


@credentials.command("remove")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", required=True, help=INSTANCE_HELP)
def credentials_remove(mailbox_name, instance):
    """Remove a credential set: revoke its token and destroy its secret versions.

    \b
    Example:
      scripts/mailbridge credentials remove support --instance uat
    """
    result = mailboxes.remove_credentials(common.services(), mailbox_name, instance)
    common.audited("credentials.remove", mailbox_name, before={"instance": instance})
    token = "token revoked, " if result["revoked"] else "it was never connected; "
    click.echo(f"{mailbox_name} [{result['instance']}] credential set removed: {token}secrets destroyed")


@click.command("connect-url")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", default=None, help=INSTANCE_HELP + " Default: this deployment's.")
def connect_url(mailbox_name, instance):
    """Print a signed, single-use start URL (valid 15 minutes).

    \b
    Example:
      scripts/mailbridge connect-url support
    """

    url = mailboxes.connect_url(common.services(), mailbox_name, instance)
    common.audited("mailbox.connect_link", mailbox_name, details={"instance": instance})
    click.echo(url)


@click.command("disconnect")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", default=None, help=INSTANCE_HELP + " Default: this deployment's.")
def disconnect(mailbox_name, instance):
    """Revoke a credential set's token and stop polling the mailbox.

    \b
    Example:
      scripts/mailbridge disconnect support
    """
    cred = mailboxes.disconnect(common.services(), mailbox_name, instance)
    common.audited("mailbox.disconnect", mailbox_name, details={"instance": cred.get("instance")})
    if cred.get("revoked"):
        click.echo(f"{mailbox_name} [{cred['instance']}] disconnected: token revoked and removed")
    else:
        click.echo(f"{mailbox_name} [{cred['instance']}] was not connected: no token to revoke")


COMMANDS = [mailbox, credentials, connect_url, disconnect]
