"""The deletion-label section of a mailbox page: choose the deletion label, create a label."""

from __future__ import annotations

from mailbridge.errors import InvalidInput
from mailbridge.http.admin.context import Ctx
from mailbridge.http.admin.mailboxes import SYSTEM_LABEL_NAMES, mailbox_action
from mailbridge.services import labels, mailboxes


def deletion_label(ctx: Ctx, name: str):
    also_delete = ctx.form("also_delete") == "on"

    def choose():
        if not ctx.form("label"):
            raise InvalidInput("choose a label from the list first")
        result = labels.set_deletion_label(ctx.services, name, ctx.form("label"))
        if also_delete:
            mailboxes.set_mailbox_setting(ctx.services, name, "incoming.after_processing", "delete")
        return result

    def done(result):
        shown = SYSTEM_LABEL_NAMES.get(result["id"], result["name"])
        text = f"Deletion label is now {shown} ({result['id']})."
        text += " After processing is now “delete”." if also_delete else \
            " It applies only when “after processing” is “delete”."
        if result.get("warning"):
            return f"{text} Warning: {result['warning']}.", "warn"
        return text

    return mailbox_action(ctx, name, choose, done, section="labels", fields=("label",))


def label_create(ctx: Ctx, name: str):
    return mailbox_action(ctx, name, lambda: labels.create_label(ctx.services, name, ctx.form("label_name")),
                          lambda label: f"Label {label['name']} ({label['id']}) created.",
                          section="labels", fields=("label_name",))
