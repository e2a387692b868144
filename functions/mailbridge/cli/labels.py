"""Label commands: labels list|create|set-deletion."""

from __future__ import annotations

import click

from mailbridge.cli import common
from mailbridge.services import labels as label_service


# -- labels ---------------------------------------------------------------------------------------
@click.group()
def labels():
    """Gmail labels of a mailbox and its deletion label."""


@labels.command("list")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--json", "as_json", is_flag=True)
def labels_list(mailbox_name, as_json):
    rows = label_service.list_labels(common.services(), mailbox_name)

    def render(items):
        for l in items:
            click.echo(f"{l['id']:<28} {l['type']:<7} {l['visibility']:<18} {l['name']}")

    common.emit(rows, as_json, render)


@labels.command("create")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def labels_create(mailbox_name, name, as_json):
    label = label_service.create_label(common.services(), mailbox_name, name)
    common.emit(label, as_json, lambda l: click.echo(f"created label {l['name']} ({l['id']})"))


@labels.command("set-deletion")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True)
def labels_set_deletion(mailbox_name, label, as_json):
    """LABEL: a name, an id (Label_123), a system id (trash) or a Gmail UI id (^x_123)."""

    result = label_service.set_deletion_label(common.services(), mailbox_name, label)

    def render(r):
        click.echo(f"{mailbox_name}: deletion label is {r['name']} ({r['id']})")
        if r.get("warning"):
            click.echo(f"warning: {r['warning']}", err=True)

    common.emit(result, as_json, render)


COMMANDS = [labels]
