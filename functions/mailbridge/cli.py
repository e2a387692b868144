"""`scripts/mailbridge`: the admin/devops CLI (DESIGN §5).

Errors are one line on stderr: exit 2 for bad input, 1 for failures.
"""

from __future__ import annotations

import json
import re
import sys
import time

import click

from mailbridge.errors import Conflict, InvalidInput, MailbridgeError, NotFound


def _services():
    from mailbridge.bootstrap import bootstrap

    return bootstrap()


def _emit(data, as_json: bool, render) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        render(data)


def parse_since(value: str) -> float:
    """'7d', '12h', '30m' or an ISO date → Unix time."""
    match = re.fullmatch(r"(\d+)([dhm])", value.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return time.time() - amount * {"d": 86400, "h": 3600, "m": 60}[unit]
    from datetime import datetime, timezone

    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--since must look like 7d, 12h, 30m or 2026-11-01, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """mailbridge: Google Workspace mailboxes → helpdesk tickets."""


# -- mailboxes ----------------------------------------------------------------------------------
@cli.group()
def mailbox():
    """Create and inspect mailboxes."""


@mailbox.command("add")
@click.argument("name")
@click.option("--address", required=True, help="The mailbox's Google Workspace address.")
def mailbox_add(name, address):
    from mailbridge import mailboxes

    created = mailboxes.add_mailbox(_services(), name, address)
    click.echo(f"mailbox {created['name']} <{created['address']}> created; next: "
               f"scripts/mailbridge credentials add {created['name']} --instance {_services().settings.instance} "
               "--client-id ID --client-secret-stdin")


@mailbox.command("list")
@click.option("--json", "as_json", is_flag=True)
def mailbox_list(as_json):
    from mailbridge import mailboxes

    services = _services()
    views = [mailboxes.view(services, m) for m in services.store.list_mailboxes()]

    def render(rows):
        if not rows:
            click.echo("no mailboxes yet: scripts/mailbridge mailbox add NAME --address EMAIL")
        for row in rows:
            click.echo(f"{row['name']:<20} {row['address']:<32} {row['status']:<15} last poll {row['last_poll_at'] or '-'}")

    _emit(views, as_json, render)


@mailbox.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def mailbox_show(name, as_json):
    from mailbridge import mailboxes

    services = _services()
    data = mailboxes.view(services, services.store.get_mailbox(name))

    def render(d):
        click.echo(f"{d['name']} <{d['address']}>  type {d['type']}  status {d['status']}  (this instance: {d['instance']})")
        click.echo(f"  last poll {d['last_poll_at'] or '-'}  last error {d['last_error'] or '-'}  backlog {d['backlog']}")
        for c in d["credentials"]:
            click.echo(f"  credentials [{c['instance']}] {c['client_id']}  {c['status']}"
                       f"{' as ' + c['connected_email'] if c['connected_email'] else ''}")
            click.echo(f"    redirect URI to register with Google: {c['redirect_uri']}")
            if c["last_error"]:
                click.echo(f"    last error: {c['last_error']}")
        click.echo("  incoming: " + ", ".join(f"{k}={v}" for k, v in d["incoming"].items()))
        click.echo("  outgoing: " + ", ".join(f"{k}={v!r}" for k, v in d["outgoing"].items() if k != "acknowledgement_template"))

    _emit(data, as_json, render)


@mailbox.command("set")
@click.argument("name")
@click.argument("key")
@click.argument("value")
def mailbox_set(name, key, value):
    from mailbridge import mailboxes

    path, typed = mailboxes.set_mailbox_setting(_services(), name, key, value)
    click.echo(f"{name}: {path} = {json.dumps(typed)}")


# -- credentials / connection -------------------------------------------------------------------
@cli.group()
def credentials():
    """OAuth client credential sets, one per instance."""


@credentials.command("add")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", required=True, help="production, uat, dev or your own name.")
@click.option("--client-id", required=True, help="The whole id, ending in .apps.googleusercontent.com.")
@click.option("--client-secret-stdin", is_flag=True, help="Read the client secret from standard input.")
def credentials_add(mailbox_name, instance, client_id, client_secret_stdin):
    from mailbridge import mailboxes

    if not client_secret_stdin:
        raise InvalidInput("pass --client-secret-stdin and pipe the secret (it never goes on the command line)")
    secret = sys.stdin.readline().strip()
    services = _services()
    mailboxes.add_credentials(services, mailbox_name, instance, client_id, secret)
    redirect = services.settings.redirect_uri if services.settings.functions_url else "(set MAILBRIDGE_FUNCTIONS_URL)"
    click.echo(f"credential set [{instance}] added to {mailbox_name}; register this redirect URI "
               f"with the OAuth client: {redirect}")


@cli.command("connect-url")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", default=None)
def connect_url(mailbox_name, instance):
    """Print a signed, single-use start URL (valid 15 minutes)."""
    from mailbridge import mailboxes

    click.echo(mailboxes.connect_url(_services(), mailbox_name, instance))


@cli.command("disconnect")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--instance", default=None)
def disconnect(mailbox_name, instance):
    from mailbridge import mailboxes

    cred = mailboxes.disconnect(_services(), mailbox_name, instance)
    click.echo(f"{mailbox_name} [{cred['instance']}] disconnected: token revoked and removed")


# -- poll ---------------------------------------------------------------------------------------
def _post_function(services, name: str, body: dict) -> dict:
    import requests

    url = services.settings.function_url(name)
    headers = {}
    if url.startswith("https://"):
        import google.auth.transport.requests
        from google.oauth2 import id_token

        headers["Authorization"] = "Bearer " + id_token.fetch_id_token(google.auth.transport.requests.Request(), url)
    try:
        response = requests.post(url, json=body, headers=headers, timeout=600)
    except requests.RequestException as e:
        raise MailbridgeError(f"cannot reach {url}: {e.__class__.__name__}") from None
    try:
        data = response.json()
    except ValueError:
        raise MailbridgeError(f"{url} answered {response.status_code} without JSON") from None
    if response.status_code >= 400:
        error = data.get("error", response.status_code)
        raise (InvalidInput if response.status_code < 500 else MailbridgeError)(str(error))
    return data


class _ProgressBar:
    """A click progress bar on stderr, created once the poll knows how many messages it has."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@cli.command("poll")
@click.argument("mailbox_name", metavar="[MAILBOX]", required=False)
@click.option("--since", default=None, help="Backfill inbox mail newer than this (7d, 12h, 2026-11-01).")
@click.option("--local", is_flag=True, help="Run in this process instead of calling the poll function.")
@click.option("--json", "as_json", is_flag=True)
def poll(mailbox_name, since, local, as_json):
    """Poll like Cloud Scheduler does (POST to the poll function)."""
    from mailbridge import ingest

    services = _services()
    since_epoch = parse_since(since) if since else None
    if since_epoch is not None and not mailbox_name:
        raise InvalidInput("--since needs a MAILBOX: backfill is an explicit choice per mailbox")
    if local or since_epoch is not None or not services.settings.functions_url:
        progress = _ProgressBar(f"backfilling {mailbox_name}") if since_epoch is not None and not as_json else None
        try:
            result = ingest.poll(services, mailbox_name, backfill_since=since_epoch, progress=progress)
        finally:
            if progress:
                progress.close()
    else:
        body = {"mailbox": mailbox_name} if mailbox_name else {}
        result = _post_function(services, "poll", body)

    def render(r):
        if r.get("status") == "off":
            click.echo(f"poll did nothing: {r['reason']}")
            return
        if not r["mailboxes"]:
            click.echo(f"no connected mailboxes for instance {r.get('instance')}")
        for m in r["mailboxes"]:
            counts = m.get("counts", {})
            detail = m.get("reason") or m.get("error") or ", ".join(f"{k} {v}" for k, v in counts.items() if v) or "nothing new"
            click.echo(f"{m['mailbox']:<20} {m['outcome']:<8} {detail}")

    _emit(result, as_json, render)
    if result.get("status") == "ok" and any(m.get("outcome") == "error" for m in result.get("mailboxes", [])):
        sys.exit(1)


# -- labels ---------------------------------------------------------------------------------------
@cli.group()
def labels():
    """Gmail labels of a mailbox and its deletion label."""


@labels.command("list")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--json", "as_json", is_flag=True)
def labels_list(mailbox_name, as_json):
    from mailbridge import labels as label_service

    rows = label_service.list_labels(_services(), mailbox_name)

    def render(items):
        for l in items:
            click.echo(f"{l['id']:<28} {l['type']:<7} {l['visibility']:<18} {l['name']}")

    _emit(rows, as_json, render)


@labels.command("create")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def labels_create(mailbox_name, name, as_json):
    from mailbridge import labels as label_service

    label = label_service.create_label(_services(), mailbox_name, name)
    _emit(label, as_json, lambda l: click.echo(f"created label {l['name']} ({l['id']})"))


@labels.command("set-deletion")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True)
def labels_set_deletion(mailbox_name, label, as_json):
    """LABEL: a name, an id (Label_123), a system id (trash) or a Gmail UI id (^x_123)."""
    from mailbridge import labels as label_service

    result = label_service.set_deletion_label(_services(), mailbox_name, label)

    def render(r):
        click.echo(f"{mailbox_name}: deletion label is {r['name']} ({r['id']})")
        if r.get("warning"):
            click.echo(f"warning: {r['warning']}", err=True)

    _emit(result, as_json, render)


# -- inbound and tickets ---------------------------------------------------------------------------
INBOUND_FIELDS = ("gmail_message_id", "message_id", "outcome", "reason", "ticket_id", "attempts", "processed_at")


@cli.command("inbound")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--json", "as_json", is_flag=True)
@click.option("--limit", default=500, type=click.IntRange(1, 5000))
def inbound(mailbox_name, as_json, limit):
    """The inbound log: one row per Gmail message the poll saw."""
    services = _services()
    services.store.get_mailbox(mailbox_name)
    rows = [{k: r.get(k) for k in INBOUND_FIELDS} for r in services.store.inbound_log(mailbox_name, limit)]

    def render(items):
        for r in items:
            click.echo(f"{r['processed_at'] or '-':<26} {r['gmail_message_id']:<18} {r['outcome']:<12} "
                       f"ticket {r['ticket_id'] or '-':<6} {r['reason'] or ''}")

    _emit(rows, as_json, render)


@cli.group()
def tickets():
    """Tickets made from mail."""


@tickets.command("list")
@click.option("--mailbox", "mailbox_name", default=None)
@click.option("--status", default=None, type=click.Choice(["open", "closed"]))
@click.option("--json", "as_json", is_flag=True)
def tickets_list(mailbox_name, status, as_json):
    from mailbridge import tickets as ticket_service

    rows = ticket_service.list_tickets(_services(), mailbox_name, status)
    if as_json:
        rows = [ticket_service.contract_view(t) for t in rows]

    def render(items):
        if not items:
            click.echo("no tickets")
        for t in items:
            click.echo(f"#{t['number']:<5} {t['status']:<7} {t['mailbox']:<16} {t['requester']['email']:<30} "
                       f"{t['subject'][:60]}  ({len(t['messages'])} messages)")

    _emit(rows, as_json, render)


@tickets.command("show")
@click.argument("ticket_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
def tickets_show(ticket_id, as_json):
    from mailbridge import tickets as ticket_service

    data = ticket_service.show(_services(), ticket_id)
    if as_json:
        data = ticket_service.contract_view(data)

    def render(t):
        click.echo(f"#{t['number']} {t['subject']}  [{t['status']}]  mailbox {t['mailbox']}")
        click.echo(f"requester {t['requester']['name']} <{t['requester']['email']}>; participants {', '.join(t['participants'])}")
        for m in t["messages"]:
            arrow = "→" if m["direction"] == "out" else "←"
            click.echo(f"\n{arrow} {m['date']}  {m['from']['name']} <{m['from']['email']}>  {m['subject']}")
            click.echo((m["text"] or "").rstrip())
            for a in m["attachments"]:
                click.echo(f"  📎 {a['filename']} ({a['content_type']}, {a['size']} bytes)")

    _emit(data, as_json, render)


@tickets.command("close")
@click.argument("ticket_id", metavar="ID")
def tickets_close(ticket_id):
    from mailbridge import models

    services = _services()
    ticket = services.store.get_ticket(ticket_id)
    services.store.update_ticket(ticket["id"], {"status": "closed", "updated_at": models.now_iso()})
    click.echo(f"ticket #{ticket['number']} closed")


# -- settings and admin ----------------------------------------------------------------------------
@cli.group()
def settings():
    """Global settings and backend switches."""


@settings.command("show")
@click.option("--json", "as_json", is_flag=True)
def settings_show(as_json):
    services = _services()
    data = services.store.settings()
    data["instance"] = services.settings.instance

    def render(d):
        for key, value in d.items():
            click.echo(f"{key} = {json.dumps(value)}")

    _emit(data, as_json, render)


@settings.command("set")
@click.argument("key")
@click.argument("value")
def settings_set(key, value):
    from mailbridge import mailboxes

    typed = mailboxes.set_global_setting(_services(), key, value)
    click.echo(f"{key} = {json.dumps(typed)}")


@cli.command("admin-url")
def admin_url():
    """Print a signed, single-use link that opens an admin session."""
    from mailbridge import mailboxes

    click.echo(mailboxes.admin_url(_services()))


def _register_optional() -> None:
    """Commands that live beside their feature modules (outgoing mail)."""
    try:
        from mailbridge import cli_outgoing
    except ImportError:
        return
    cli_outgoing.register(cli)


def main(argv=None) -> int:
    from mailbridge import logs

    logs.to_stderr()
    _register_optional()
    try:
        cli.main(args=argv, prog_name="mailbridge", standalone_mode=False)
    except click.exceptions.UsageError as e:
        message = e.format_message()
        if message.lstrip().startswith("Usage:"):  # a group called without its command
            command = e.ctx.command_path if e.ctx else "mailbridge"
            message = f"missing command; see `{command} --help`"
        click.echo(f"error: {message}".replace("\n", " "), err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        return 1
    except (InvalidInput, NotFound, Conflict) as e:
        click.echo(f"error: {e}".replace("\n", " "), err=True)
        return 2
    except MailbridgeError as e:
        click.echo(f"error: {e}".replace("\n", " "), err=True)
        return 1
    except click.exceptions.Exit as e:
        return e.exit_code
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
