"""The daily send budget of a mailbox (`outgoing.daily_send_budget`, counted per UTC day in
`send_budget/{mailbox}~{day}`): a send takes one message of it before Gmail is called, and
acknowledgements may use only their share, so the rest remains for replies (docs/outbox.md).
The outbox's drainer takes the budget in blocks (Allowance): one write per block, not per send.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
import time

from mailbridge.domain import models
from mailbridge.errors import InvalidInput
from mailbridge.services.ports import OutboundRepository


def today(now: float | None = None) -> str:
    return datetime.fromtimestamp(now or time.time(), timezone.utc).strftime("%Y-%m-%d")


def next_utc_midnight(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


def daily_limits(mailbox: dict) -> tuple[int, int]:
    """(daily budget, the part of it acknowledgements may use)."""
    settings = models.outgoing_settings(mailbox)
    budget = int(settings.get("daily_send_budget") or 0)
    return budget, budget * int(settings.get("acknowledgement_share_percent") or 0) // 100


def acknowledgement_share_spent(budget: int, ack_budget: int, used: int) -> str:
    """Why an acknowledgement is skipped once acknowledgements have used their share today."""
    return (f"daily send budget: acknowledgements may use {ack_budget} of {budget} messages a day "
            f"(outgoing.acknowledgement_share_percent); {used} sent today, the rest is kept for replies")


def reserve(store: OutboundRepository, mailbox: dict) -> str:
    """Take one message of today's budget (the day, to release it); InvalidInput when spent."""
    budget, _ack_budget = daily_limits(mailbox)
    day = today()
    taken, used = store.take_send_budget(mailbox["name"], day, budget)
    if not taken:
        raise InvalidInput(
            f"mailbox {mailbox['name']!r} reached its daily send budget ({used}/{budget} messages today, UTC); "
            "nothing was sent. Raise outgoing.daily_send_budget or wait until tomorrow")
    return day


def release(store: OutboundRepository, mailbox_name: str, day: str) -> None:
    """Give back a message of the budget that was not sent (Gmail refused it)."""
    try:
        store.release_send_budget(mailbox_name, day)
    except Exception:  # noqa: BLE001 - over-counting a failed send is the safe side
        pass


BLOCK = 10  # messages of the budget the outbox's drainer takes at once


class Allowance:
    """A block of today's budget held by the one drainer of a mailbox (its drain lease): each
    send takes a message of it, a message not sent goes back to it, and what is left is given
    back when the drain ends. The budget document is then written once per BLOCK sends instead
    of once per send (docs/architecture.md, "No hot documents"); a drainer that dies leaves its
    block counted as used, the safe side."""

    def __init__(self, store: OutboundRepository, mailbox_name: str):
        self.store, self.mailbox_name = store, mailbox_name
        self.day, self.spare = "", 0

    def unsent(self, day: str) -> int:
        """Messages of `day` counted in the budget document but not sent yet."""
        return self.spare if day == self.day else 0

    def take(self, mailbox: dict) -> str:
        """One message of today's budget (the day, to give it back); InvalidInput when spent."""
        day = today()
        if day != self.day:
            self.close()
            self.day = day
        if not self.spare:
            budget, _ack_budget = daily_limits(mailbox)
            taken, used = self.store.take_send_budget(mailbox["name"], day, budget, BLOCK)
            if not taken:
                raise InvalidInput(
                    f"mailbox {mailbox['name']!r} reached its daily send budget ({used}/{budget} messages today, "
                    "UTC); nothing was sent. Raise outgoing.daily_send_budget or wait until tomorrow")
            self.spare = taken
        self.spare -= 1
        return day

    def give_back(self, day: str) -> None:
        if day == self.day:
            self.spare += 1
        else:
            release(self.store, self.mailbox_name, day)

    def close(self) -> None:
        """Give the block's unsent messages back to the budget."""
        if self.spare and self.day:
            try:
                self.store.release_send_budget(self.mailbox_name, self.day, self.spare)
            except Exception:  # noqa: BLE001 - over-counting is the safe side
                pass
        self.spare = 0
