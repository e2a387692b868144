"""Mailbox and credential use cases shared by the CLI, the functions and the admin pages."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import time
from urllib.parse import urlencode

from mailbridge.domain import models, signing
from mailbridge.errors import InvalidInput, NotFound
from mailbridge.services import events
from mailbridge.services.ports import InstancePorts, IntakePorts, MailboxesPorts, OverrideTargetPorts

LINK_TTL_SECONDS = 15 * 60
INSTANCES = {"production": "Production", "uat": "UAT", "dev": "Dev"}  # name → how pages show it
PERSONAL_DOMAINS = ("gmail.com", "googlemail.com")
RECENT_INTAKE_MINUTES = 10


def instance_name(value: str) -> str:
    """One of the fixed instances, matched case-insensitively ("UAT" → "uat")."""
    name = (value or "").strip().lower()
    if name not in INSTANCES:
        raise InvalidInput(f"instance {value!r} is not one of {', '.join(INSTANCES)} (any case)")
    return name


def instance_label(name: str) -> str:
    return INSTANCES.get(name, name)


def refuse_personal_address(address: str) -> None:
    domain = (address or "").strip().lower().rpartition("@")[2]
    if domain in PERSONAL_DOMAINS:
        raise InvalidInput(
            f"{address} is a personal Google account ({domain}): the Gmail API needs a dedicated, licensed "
            "Google Workspace mailbox, never a person's own account (README.md, setting up a mailbox)")


def add_mailbox(services: MailboxesPorts, name: str, address: str) -> dict:
    refuse_personal_address(address)
    mailbox = models.new_mailbox(name, address)
    services.store.add_mailbox(mailbox)
    return mailbox


def own_credential(services: InstancePorts, mailbox: dict) -> dict | None:
    """The credential set of this deployment's instance, or None."""
    return models.credential_of(mailbox, services.settings.instance)


def mailbox_status(services: MailboxesPorts, mailbox: dict) -> str:
    cred = own_credential(services, mailbox)
    if cred is None:
        return "no_credentials"
    return cred.get("status", "not_connected")


def view(services: MailboxesPorts, mailbox: dict) -> dict:
    """The `mailbox show --json` shape (README.md, CLI) (no secrets, no secret ids)."""
    settings = services.settings
    sync = services.store.get_sync(mailbox["name"], settings.instance)
    redirect = settings.redirect_uri if settings.has_function_urls else None
    credentials = [{
        "instance": c["instance"], "client_id": c["client_id"], "redirect_uri": redirect,
        "status": c.get("status", "not_connected"), "connected_email": c.get("connected_email"),
        "last_error": c.get("last_error"), "connected_at": c.get("connected_at"),
    } for c in mailbox.get("credentials", [])]
    return {
        "name": mailbox["name"], "address": mailbox["address"], "type": mailbox.get("type", "google"),
        "status": mailbox_status(services, mailbox),
        "incoming": models.incoming_settings(mailbox),
        "outgoing": models.outgoing_settings(mailbox),
        "credentials": credentials,
        "instance": settings.instance,
        "last_poll_at": sync.get("last_poll_at"),
        "last_error": sync.get("last_error") or mailbox.get("incoming", {}).get("label_error"),
        "backlog": sync.get("backlog", 0), "history_id": sync.get("history_id"),
        "watch_expiration": sync.get("watch_expiration"),
        "lease": lease_view(sync),
    }


def lease_view(sync: dict) -> dict | None:
    """Who holds the mailbox's sync lease, since and until when (UTC ISO); None when free or
    run out (a dead holder's lease is taken over by the next task: docs/architecture.md, "Queue")."""
    until = float(sync.get("lease_expires_at") or 0)
    if not sync.get("lease_owner") or until <= time.time():
        return None

    def iso(epoch):
        return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds") if epoch else None

    return {"owner": sync["lease_owner"], "since": iso(float(sync.get("lease_since") or 0)), "until": iso(until)}


def add_credentials(services: MailboxesPorts, name: str, instance: str, client_id: str, client_secret: str) -> dict:
    instance = instance_name(instance)
    client_id = models.validate_client_id(client_id)
    client_secret = models.validate_client_secret(client_secret)
    mailbox = services.store.get_mailbox(name)
    if models.credential_of(mailbox, instance) is not None:
        raise InvalidInput(f"mailbox {name!r} already has a credential set for instance {instance!r}")
    secret_id = models.credential_secret_id(services.settings.prefix, name, instance, "client")
    services.secrets.put(secret_id, client_secret)
    credential = {
        "instance": instance, "client_id": client_id, "client_secret_secret": secret_id,
        "refresh_token_secret": None, "status": "not_connected", "connected_email": None,
        "connected_at": None, "last_error": None, "created_at": models.now_iso(),
    }
    services.store.add_credential(name, credential)
    return credential


def connect_url(services: MailboxesPorts, name: str, instance: str | None = None) -> str:
    settings = services.settings
    instance = instance_name(instance) if instance else settings.instance
    if instance != settings.instance:
        raise InvalidInput(
            f"this deployment is instance {settings.instance!r}; a {instance!r} credential set can only "
            f"be signed in from the {instance!r} deployment")
    mailbox = services.store.get_mailbox(name)
    if own_credential(services, mailbox) is None:
        raise InvalidInput(f"mailbox {name!r} has no credential set for instance {instance!r}: "
                           "add one with `credentials add`")
    token = signing.sign(settings.signing_key, "oauth_start", {"m": name, "i": instance}, LINK_TTL_SECONDS)
    return f"{settings.function_url('oauth_start')}?{urlencode({'t': token})}"


def start_from_link(services: MailboxesPorts, token: str) -> str:
    """Verify a signed, single-use start link and return Google's consent URL."""
    payload = signing.verify(services.settings.signing_key, "oauth_start", token)
    services.store.use_nonce(payload["n"], payload["exp"])
    mailbox = services.store.get_mailbox(payload["m"])
    return services.google.consent_url(mailbox, payload["i"])


def disconnect(services: MailboxesPorts, name: str, instance: str | None = None) -> dict:
    """Revoke and forget the token of a connected set; the result says whether one was revoked."""
    instance = instance_name(instance) if instance else services.settings.instance
    mailbox = services.store.get_mailbox(name)
    cred = models.credential_of(mailbox, instance)
    if cred is None:
        raise InvalidInput(f"mailbox {name!r} has no credential set for instance {instance!r}")
    if instance != services.settings.instance:
        raise InvalidInput(f"this deployment is instance {services.settings.instance!r}; "
                           f"disconnect the {instance!r} set from its own deployment")
    had_token = bool(cred.get("refresh_token_secret"))
    _stop_watch(services, mailbox)
    result = services.google.disconnect(mailbox, instance)
    events.after_commit(services, name)  # mailbox.disconnected, committed with the change
    return {**result, "revoked": had_token}


def update_credentials(services: MailboxesPorts, name: str, instance: str, client_id: str | None = None,
                       client_secret: str | None = None) -> dict:
    """Fix a credential set: a new client id and/or a new client secret.

    A refresh token belongs to the client that obtained it, so a new client id revokes the old
    token and the set must be signed in again; a new secret replaces every old version."""
    instance = instance_name(instance)
    if client_id is None and client_secret is None:
        raise InvalidInput("nothing to change: give a new client id, a new client secret, or both")
    client_id = models.validate_client_id(client_id) if client_id is not None else None
    client_secret = models.validate_client_secret(client_secret) if client_secret is not None else None
    mailbox = services.store.get_mailbox(name)
    cred = models.credential_of(mailbox, instance)
    if cred is None:
        raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}: "
                       "add one with `credentials add`")
    changes: dict = {"updated_at": models.now_iso()}
    if client_secret is not None:
        secret_id = cred.get("client_secret_secret") or models.credential_secret_id(
            services.settings.prefix, name, instance, "client")
        services.secrets.destroy_all_versions(secret_id)
        services.secrets.put(secret_id, client_secret)
        changes.update({"client_secret_secret": secret_id, "last_error": None})
    if client_id is not None and client_id != cred["client_id"]:
        if cred.get("refresh_token_secret"):
            if instance == services.settings.instance:
                _stop_watch(services, mailbox)
            _revoke_and_destroy(services, cred.get("refresh_token_secret"))
        changes.update({"client_id": client_id, "status": "not_connected", "refresh_token_secret": None,
                        "connected_email": None, "connected_at": None, "last_error": None})
    services.google.forget(name, instance)
    updated = services.store.update_credential(name, instance, changes)
    events.after_commit(services, name)  # a new client id disconnects a connected set
    return updated


def _revoke_and_destroy(services: MailboxesPorts, secret_id: str | None) -> None:
    if not secret_id:
        return
    services.google.revoke(services.secrets.get(secret_id))
    services.secrets.destroy_all_versions(secret_id)


def remove_credentials(services: MailboxesPorts, name: str, instance: str) -> dict:
    """Remove a credential set: revoke its token, destroy its secrets' versions, drop the record."""
    instance = instance_name(instance)
    mailbox = services.store.get_mailbox(name)
    cred = models.credential_of(mailbox, instance)
    if cred is None:
        raise NotFound(f"mailbox {name!r} has no credential set for instance {instance!r}")
    if instance == services.settings.instance:
        _stop_watch(services, mailbox)
    _revoke_and_destroy(services, cred.get("refresh_token_secret"))
    if cred.get("client_secret_secret"):
        services.secrets.destroy_all_versions(cred["client_secret_secret"])
    services.google.forget(name, instance)
    removed = services.store.remove_credential(name, instance)
    events.after_commit(services, name)  # mailbox.disconnected when the set was connected
    return {"instance": instance, "revoked": bool(cred.get("refresh_token_secret")), "client_id": removed.get("client_id")}


def remove_mailbox(services: MailboxesPorts, name: str) -> dict:
    """Delete a mailbox: stop its watch, revoke and destroy every credential set. Its tickets and
    inbound log stay (they are the history of what it received)."""
    mailbox = services.store.get_mailbox(name)
    removed = [remove_credentials(services, name, cred["instance"]) for cred in list(mailbox.get("credentials", []))
               if cred["instance"] in INSTANCES]
    for cred in services.store.get_mailbox(name).get("credentials", []):  # a set from before the fixed list
        _revoke_and_destroy(services, cred.get("refresh_token_secret"))
        if cred.get("client_secret_secret"):
            services.secrets.destroy_all_versions(cred["client_secret_secret"])
    services.store.delete_mailbox(name)
    return {"name": name, "credentials_removed": removed}


def recent_intake(services: IntakePorts, name: str, minutes: int = RECENT_INTAKE_MINUTES) -> dict:
    """What the mailbox took in during the last minutes, by push or poll: outcome → count."""
    since = (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
    counts: dict[str, int] = {}
    for row in services.store.inbound_since(name, since):
        if row.get("outcome"):
            counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    return {"minutes": minutes, "counts": counts, "total": sum(counts.values())}


def check_override_target(services: OverrideTargetPorts, scope: str, key: str, mailbox_name: str) -> None:
    """An override must point at something that exists: the ticket, and a mailbox that has a
    credential set for this deployment's instance (else it could never send)."""
    if scope == "ticket":
        number = (key or "").strip().lstrip("#")
        if not number or services.store.find_ticket(number) is None:
            raise NotFound(f"no ticket {number!r}: an override needs an existing ticket number")
    mailbox = services.store.get_mailbox(mailbox_name)
    if models.credential_of(mailbox, services.settings.instance) is None:
        raise InvalidInput(f"mailbox {mailbox_name!r} has no credential set for instance "
                           f"{services.settings.instance!r}, so it could never send: add credentials first")


def _stop_watch(services: MailboxesPorts, mailbox: dict) -> None:
    cred = own_credential(services, mailbox)
    if not cred or cred.get("status") != "connected" or not services.settings.pubsub_topic:
        return
    try:
        services.gmail_for(mailbox, cred).stop()
    except Exception:  # noqa: BLE001 - stopping a watch is best effort before revoking
        pass
    services.store.update_sync(mailbox["name"], services.settings.instance, {"watch_expiration": None})


def check_send_as(services: MailboxesPorts, mailbox: dict, address: str) -> None:
    """A send_as address must be one Gmail lets this account send as (settings.sendAs.list: the
    primary address or a verified alias); any other From is silently rewritten by Gmail
    (docs/gmail-differences.md). InvalidInput with the reason otherwise."""
    address = (address or "").strip().lower()
    if not address or address == mailbox["address"].lower():
        return
    cred = own_credential(services, mailbox)
    if not cred or cred.get("status") != "connected":
        raise InvalidInput(f"cannot check send_as {address!r}: mailbox {mailbox['name']!r} is not connected for "
                           f"instance {services.settings.instance!r}; sign in first, then set it")
    aliases = services.gmail_for(mailbox, cred).send_as_list()
    alias = next((a for a in aliases if str(a.get("sendAsEmail", "")).lower() == address), None)
    if alias is None:
        raise InvalidInput(f"{address} is not a \"Send mail as\" address of {mailbox['address']} in Gmail; add and "
                           "verify it in Gmail (Settings → Accounts) first, or Gmail sends from "
                           f"{mailbox['address']} instead")
    status = alias.get("verificationStatus") or ("accepted" if alias.get("isPrimary") else "")
    if status != "accepted":
        raise InvalidInput(f"{address} is a \"Send mail as\" address of {mailbox['address']} but Gmail has not verified "
                           f"it (verificationStatus {status or 'unknown'!r}); confirm the verification email first")


def set_mailbox_setting(services: MailboxesPorts, name: str, key: str, value) -> tuple[str, object]:
    mailbox = services.store.get_mailbox(name)
    path, typed = models.apply_mailbox_setting(mailbox, key, value)
    if path == "outgoing.send_as" and typed != models.outgoing_settings(mailbox).get("send_as"):
        check_send_as(services, mailbox, typed)
    services.store.update_mailbox(name, {path: typed})
    return path, typed


def set_global_setting(services: MailboxesPorts, key: str, value) -> object:
    typed = models.apply_global_setting(key, value)
    if key == "default_outgoing_mailbox" and typed:
        services.store.get_mailbox(typed)  # must exist
    services.store.set_setting(key, typed)
    return typed


def admin_url(services: MailboxesPorts, ttl_seconds: int = LINK_TTL_SECONDS) -> str:
    token = signing.sign(services.settings.signing_key, "admin_login", {}, ttl_seconds)
    return f"{services.settings.function_url('admin')}/login?{urlencode({'t': token})}"


def check_link(services: MailboxesPorts, purpose: str, token: str) -> dict:
    """Verify a signed link without spending it (its confirmation page); AuthError if invalid."""
    return signing.verify(services.settings.signing_key, purpose, token)


def verify_link_once(services: MailboxesPorts, purpose: str, token: str) -> dict:
    payload = signing.verify(services.settings.signing_key, purpose, token)
    services.store.use_nonce(payload["n"], payload["exp"])
    return payload

