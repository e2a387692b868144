"""The credentials section of a mailbox page: credential sets per instance (add, update,
remove) and the mailbox's sign-in with Google (confirm, connect, disconnect)."""

from __future__ import annotations

from urllib.parse import quote

from mailbridge import errors
from mailbridge.domain import models
from mailbridge.errors import MailbridgeError, NotFound
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.forms import confirm, confirmed
from mailbridge.http.admin.mailboxes import mailbox_action, mailbox_detail
from mailbridge.http.admin.rendering import render, see_other
from mailbridge.services import connect as connect_service, mailboxes


def _instance(ctx: Ctx) -> str:
    """The instance a form names, this deployment's when it names none."""
    return ctx.form("instance", ctx.settings.instance).strip() or ctx.settings.instance


def credentials_add(ctx: Ctx, name: str):
    instance = _instance(ctx)

    def add():
        return mailboxes.add_credentials(ctx.services, name, instance, ctx.form("client_id"), ctx.form("client_secret"))

    return mailbox_action(ctx, name, add, lambda cred: (
        f"Credential set for instance {mailboxes.instance_label(cred['instance'])} added. Register the redirect URI "
        "with the OAuth client in Google Cloud console, then sign in with Google."),
        section="credentials", fields=("instance", "client_id", "client_secret"))


def credentials_update(ctx: Ctx, name: str, instance: str):
    client_id = ctx.form("client_id").strip()
    secret = ctx.form("client_secret")

    def update():
        current = models.credential_of(ctx.services.store.get_mailbox(name), instance.lower()) or {}
        new_id = client_id if client_id and client_id != current.get("client_id") else None
        return mailboxes.update_credentials(ctx.services, name, instance, new_id, secret or None)

    def done(cred):
        if cred.get("status") != "connected" and cred.get("instance") == ctx.settings.instance:
            return (f"Credential set {mailboxes.instance_label(cred['instance'])} updated. "
                    "Sign in with Google again to connect it.", "warn")
        return f"Credential set {mailboxes.instance_label(cred['instance'])} updated."

    return mailbox_action(ctx, name, update, done, section="credentials", fields=("client_id", "client_secret"))


def credentials_remove(ctx: Ctx, name: str, instance: str):
    label = mailboxes.instance_label(instance.lower())
    if not confirmed(ctx):
        return confirm(ctx, f"Remove the {label} credential set of {name}?",
                       f"Remove the {label} credential set of mailbox {name}?",
                       ["Its Google token is revoked and the mailbox stops being read by the "
                        f"{label} deployment.", "Its client secret and token are destroyed in Secret Manager.",
                        "To use it again you add a credential set and sign in again."],
                       f"/mailboxes/{quote(name, safe='')}/credentials/{quote(instance, safe='')}/remove",
                       "Remove credential set", f"/mailboxes/{quote(name, safe='')}#credentials")
    return mailbox_action(ctx, name, lambda: mailboxes.remove_credentials(ctx.services, name, instance),
                          lambda r: f"Credential set {mailboxes.instance_label(r['instance'])} removed"
                                    f"{': its token was revoked' if r['revoked'] else ''}; its secrets were destroyed.",
                          section="credentials")


def connect_confirm(ctx: Ctx, name: str):
    """The stable start URL of a mailbox sign-in (oauth_start?mailbox=NAME&instance=I lands here):
    a confirmation page; its POST goes to Google."""
    mailbox = ctx.services.store.get_mailbox(name)
    instance = (ctx.request.args.get("instance") or ctx.settings.instance).strip()
    return render(ctx, "connect.html", m=mailbox, connect_instance=instance)


def connect(ctx: Ctx, name: str):
    try:
        url = connect_service.consent_for_admin(ctx.services, name, _instance(ctx))
    except MailbridgeError as e:
        if isinstance(e, NotFound) and "no mailbox" in str(e):
            raise
        return mailbox_detail(ctx, name, str(e), errors.http_status(e), section="credentials")
    return see_other(ctx, url)


def disconnect(ctx: Ctx, name: str):
    if not confirmed(ctx):
        return confirm(ctx, f"Disconnect {name}?", f"Disconnect mailbox {name} from Google?",
                       ["Its Google token is revoked and removed.", "Polling and push stop for this mailbox.",
                        "Tickets and settings stay; sign in with Google again to resume."],
                       f"/mailboxes/{quote(name, safe='')}/disconnect", "Disconnect",
                       f"/mailboxes/{quote(name, safe='')}#credentials")

    def done(result):
        if result.get("revoked"):
            return "Disconnected: the token was revoked and removed. Polling stops for this mailbox."
        return "This credential set was not connected: there was no token to revoke.", "warn"

    return mailbox_action(ctx, name, lambda: mailboxes.disconnect(ctx.services, name), done, section="credentials")
