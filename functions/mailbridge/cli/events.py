"""Ticket event commands (docs/events.md): events list|replay|tail."""

from __future__ import annotations

import json

import click

from mailbridge.cli import common
from mailbridge.errors import InvalidInput
from mailbridge.services import events as event_service


def one_line(event: dict) -> str:
    return (f"{event['time']}  {event['type']:<22} {event['subject']:<12} seq {event['sequence']:<4} "
            f"{event['id']}")


def since_option(value: str | None) -> float | None:
    return common.parse_since(value) if value is not None else None


@click.group()
def events():
    """Ticket events: the log every change writes, published to the events topic.

    \b
    Example:
      scripts/mailbridge events list --ticket 42
    """


@events.command("list")
@click.option("--ticket", default=None, help="Only this ticket's events.")
@click.option("--since", default=None, help="Only events since: 7d, 12h, 30m or a date (2026-11-01).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=0),
              help="The newest N events (shown oldest first); 0 = all.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of the CloudEvents as published.")
def events_list(ticket, since, limit, as_json):
    """The event log, oldest first; says on stderr when older events exist beyond --limit.

    \b
    Example:
      scripts/mailbridge events list --since 1d --json
    """
    found, more = event_service.list_events(common.services(), ticket=ticket, since=since_option(since), limit=limit)

    def render(items):
        if not items:
            click.echo("no events")
        for event in items:
            click.echo(one_line(event))

    common.emit(found, as_json, render)
    if more:
        click.echo(f"note: showing the newest {len(found)} events; older ones exist "
                   "(--limit N for more, --limit 0 for all)", err=True)


@events.command("replay")
@click.option("--since", required=True, help="Replay events since: 7d, 12h, 30m or a date (2026-11-01).")
@click.option("--ticket", default=None, help="Only this ticket's events.")
def events_replay(since, ticket):
    """Publish logged events to the events topic again, with the same ids (consumers that
    de-duplicate on the id ignore those they had).

    \b
    Example:
      scripts/mailbridge events replay --since 2d --ticket 42
    """
    count = event_service.replay(common.services(), since=since_option(since), ticket=ticket)
    click.echo(f"replayed {count} event{'s' if count != 1 else ''}")


@events.command("tail")
@click.option("--count", default=None, type=click.IntRange(min=1), help="Stop after N events.")
@click.option("--timeout", "timeout_s", default=None, type=click.FloatRange(min=0),
              help="Stop after S seconds.")
@click.option("--brief", is_flag=True, help="One summary line per event instead of its JSON.")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="The default: one JSON object per line.")
def events_tail(count, timeout_s, brief, as_json):
    """Print events as they arrive on MAILBRIDGE_EVENTS_SUBSCRIPTION (a pull subscription on the
    events topic; the local stack makes one), one CloudEvent JSON per line, acknowledging each.
    Runs until Ctrl-C, --count or --timeout.

    \b
    Example:
      scripts/mailbridge events tail --count 10
    """
    services = common.services()
    if not services.settings.events_subscription:
        raise InvalidInput("MAILBRIDGE_EVENTS_SUBSCRIPTION is not set (after `scripts/stack up`: . .stack/env)")

    def show(event: dict) -> None:
        click.echo(one_line(event) if brief else json.dumps(event, separators=(",", ":"), default=str))

    try:
        event_service.tail(services, show, count=count, timeout_s=timeout_s)
    except KeyboardInterrupt:  # Ctrl-C: a clean stop, what was printed was acknowledged
        click.echo("", err=True)


COMMANDS = [events]
