"""Personal data commands (docs/privacy.md): privacy export|erase, tickets hold|release, audit."""

from __future__ import annotations

from datetime import datetime, timezone
import json
from pathlib import Path
import re

import click

from mailbridge.cli import common
from mailbridge.cli.tickets import tickets as tickets_group
from mailbridge.errors import InvalidInput
from mailbridge.services import audit as audit_service
from mailbridge.services import privacy as privacy_service
from mailbridge.services import retention


@click.group()
def privacy():
    """A person's data: answer an access request (export) or an erasure request (erase).

    \b
    Example:
      scripts/mailbridge privacy export ann@customer.example --out ./ann
      scripts/mailbridge privacy erase ann@customer.example --yes
    """


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name or "file").strip("._")[:80] or "file"


def _json_default(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


@privacy.command("export")
@click.argument("email")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Write export.json and the files here; without it the JSON goes to stdout.")
def privacy_export(email, out_dir):
    """Every ticket, message, inbound row, outbound record and event that names EMAIL, as JSON
    (DIR/export.json), and its attachments and stored bodies (DIR/files/).

    \b
    Example:
      scripts/mailbridge privacy export ann@customer.example --out ./ann
      scripts/mailbridge privacy export ann@customer.example > ann.json
    """
    services = common.services()
    data = privacy_service.export(services, email, **common.actor(services))
    if not out_dir:
        click.echo(json.dumps(data, indent=2, default=_json_default))
        click.echo(f"note: {len(data['files'])} files listed by sha256; --out DIR writes them too", err=True)
        return
    out = Path(out_dir)
    (out / "files").mkdir(parents=True, exist_ok=True)
    missing = []
    for sha256, meta in data["files"].items():
        content = privacy_service.blob(services, sha256)
        if content is None:
            missing.append(sha256)
            continue
        name = f"{sha256[:12]}-{_safe_name(meta.get('filename') or 'file')}"
        (out / "files" / name).write_bytes(content)
        meta["path"] = f"files/{name}"
    (out / "export.json").write_text(json.dumps(data, indent=2, default=_json_default), encoding="utf-8")
    counts = ", ".join(f"{n} {c}" for c, n in data["counts"].items())
    click.echo(f"exported {counts}, {len(data['files']) - len(missing)} files to {out}/")
    if missing:
        click.echo(f"note: {len(missing)} files are no longer stored", err=True)


@privacy.command("erase")
@click.argument("email")
@click.option("--yes", is_flag=True, help="Confirm: the erasure cannot be undone.")
@click.option("--gmail-trash", is_flag=True, help="Also move the person's messages to Trash in Gmail.")
@click.option("--json", "as_json", is_flag=True, help="What was done, as JSON.")
def privacy_erase(email, yes, gmail_trash, as_json):
    """Remove EMAIL's messages and attachments, redact their address and name elsewhere, and keep
    a tombstone so Gmail's copy is not ingested again.

    \b
    Example:
      scripts/mailbridge privacy erase ann@customer.example --yes --gmail-trash
    """
    if not yes:
        raise InvalidInput("erasing a person's data cannot be undone: add --yes")
    services = common.services()
    result = privacy_service.erase(services, email, gmail_trash=gmail_trash, **common.actor(services))

    def render(r):
        click.echo(f"erased {r['person']}: {r['messages_removed']} messages removed, {r['tickets_removed']} tickets "
                   f"removed, {r['documents_redacted']} documents redacted, {r['documents_deleted']} deleted, "
                   f"{r['blobs_deleted']} files deleted")
        if r["gmail_trashed"] is not None:
            t = r["gmail_trashed"]
            click.echo(f"Gmail: {t['trashed']} messages moved to Trash, {t['gone']} already gone, {t['failed']} failed")
        else:
            click.echo(f"note: {r['gmail_note']}")

    common.emit(result, as_json, render)


@tickets_group.command("hold")
@click.argument("ticket_id", metavar="ID")
def tickets_hold(ticket_id):
    """Legal hold: retention never deletes this ticket until it is released.

    \b
    Example:
      scripts/mailbridge tickets hold 42
    """
    _hold(ticket_id, True)


@tickets_group.command("release")
@click.argument("ticket_id", metavar="ID")
def tickets_release(ticket_id):
    """End a legal hold: a closed ticket expires again after its retention.

    \b
    Example:
      scripts/mailbridge tickets release 42
    """
    _hold(ticket_id, False)


def _hold(ticket_id: str, held: bool) -> None:
    services = common.services()
    result = retention.hold(services, ticket_id.lstrip("#"), held)
    common.audited("ticket.hold" if held else "ticket.release", result["ticket"],
                   before={"legal_hold": not held}, after={"legal_hold": held})
    expiry = f"expires {result['expires_at']}" if result["expires_at"] else "does not expire"
    click.echo(f"ticket #{result['ticket']} {'held' if held else 'released'}; it {expiry}")


@click.command("audit")
@click.option("--since", default=None, help="Only records since: 7d, 12h, 30m or an ISO date.")
@click.option("--actor", "actor_email", default=None, help="Only this admin's (or the CLI identity's) records.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=0), help="At most N, newest first; 0 = all.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of records.")
def audit(since, actor_email, limit, as_json):
    """The audit log: one record per admin action (who, what, when, target, before/after).

    \b
    Example:
      scripts/mailbridge audit --since 7d --actor ops@example.com
    """
    since_iso = (datetime.fromtimestamp(common.parse_since(since), timezone.utc).isoformat(timespec="milliseconds")
                 if since else None)
    rows = audit_service.records(common.services(), since=since_iso, actor=actor_email, limit=limit)

    def render(items):
        if not items:
            click.echo("no audit records")
        for r in items:
            change = f" {json.dumps(r['before'])} -> {json.dumps(r['after'])}" if r.get("after") is not None else ""
            click.echo(f"{r['at']}  {r['actor']:<28} {r['source']:<6} {r['action']:<18} {r['target']}{change}")

    common.emit(rows, as_json, render)


COMMANDS = [privacy, audit]
