"""What every command group shares: the services, output as text or JSON."""

from __future__ import annotations

from datetime import datetime, timezone
import json
import re
import time

import click

from mailbridge import bootstrap
from mailbridge.errors import InvalidInput
from mailbridge.services import audit


def services():
    return bootstrap.bootstrap()


def actor(services) -> dict:
    """Who and where, for the audit log (services/audit.py): the CLI's identity (Settings.cli_actor)."""
    return {"actor": services.settings.cli_actor or "cli", "source": "cli"}


def audited(action: str, target: str, **record) -> None:
    """One audit record of this CLI command's action (services/audit.py)."""
    audit.record(services(), action, target, **actor(services()), **record)


def emit(data, as_json: bool, render) -> None:
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
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"--since must look like 7d, 12h, 30m or 2026-11-01, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()

