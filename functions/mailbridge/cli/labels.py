"""Label commands: labels list|create|set-deletion."""

from __future__ import annotations

import click

from mailbridge.cli import common
from mailbridge.services import labels as label_service


# -- labels ---------------------------------------------------------------------------------------
@click.group()
def labels():
    """Gmail labels of a mailbox and its deletion label.

    \b
    Example:
      scripts/mailbridge labels list support
    """


@labels.command("list")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of labels.")
def labels_list(mailbox_name, as_json):
    """The mailbox's Gmail labels: user labels first, then system labels.

    \b
    Example:
      scripts/mailbridge labels list support --json
    """
    rows = label_service.list_labels(common.services(), mailbox_name)
    rows.sort(key=lambda l: l["type"] == "system")  # stable: user labels first, each group by name

    def render(items):
        for l in items:
            click.echo(f"{l['id']:<28} {l['type']:<7} {l['visibility']:<18} {l['name']}")

    common.emit(rows, as_json, render)


@labels.command("create")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="The created label as JSON.")
def labels_create(mailbox_name, name, as_json):
    """Create a label in the mailbox's Gmail.

    \b
    Example:
      scripts/mailbridge labels create support mailbridge/deleted
    """
    label = label_service.create_label(common.services(), mailbox_name, name)
    common.emit(label, as_json, lambda l: click.echo(f"created label {l['name']} ({l['id']})"))


@labels.command("set-deletion")
@click.argument("mailbox_name", metavar="MAILBOX")
@click.argument("label")
@click.option("--json", "as_json", is_flag=True, help="The chosen label as JSON.")
def labels_set_deletion(mailbox_name, label, as_json):
    """Choose the label "after processing: delete" applies.

    LABEL: a name, an id (Label_123), a system id (trash) or a Gmail UI id (^x_123).
    It only applies when incoming.after_processing is delete.

    \b
    Example:
      scripts/mailbridge labels set-deletion support TRASH
      scripts/mailbridge mailbox set support incoming.after_processing delete
    """

    result = label_service.set_deletion_label(common.services(), mailbox_name, label)
    common.audited("labels.set_deletion", mailbox_name, after={"deletion_label": label})

    def render(r):
        click.echo(f"{mailbox_name}: deletion label is {r['name']} ({r['id']})")
        if r.get("warning"):
            click.echo(f"warning: {r['warning']}", err=True)

    common.emit(result, as_json, render)


COMMANDS = [labels]
