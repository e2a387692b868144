"""A sync's hold on its mailbox: a short lease in the sync state, renewed by a heartbeat while
the sync works (docs/architecture.md, "Queue")."""

from __future__ import annotations

import threading
import time

from mailbridge.logs import log_event
from mailbridge.services.ports import SyncRepository


def take_lease(store: SyncRepository, mailbox: str, instance: str, owner: str, ttl_s: float,
               wait_s: float) -> dict | None:
    """The mailbox's lease for `owner`, waiting up to `wait_s` for a running sync: a push-triggered
    sync of a few messages usually finishes within seconds, so a scheduled poll waits briefly for
    it rather than skip, and does its own pass right after. The sync state as the lease was taken
    (the run starts from it), or None when it is still held."""
    wait_until = time.monotonic() + max(0.0, wait_s)
    while not (state := store.acquire_lease(mailbox, instance, owner, ttl_s)):
        if time.monotonic() >= wait_until:
            return None
        time.sleep(0.5)
    return state


class Heartbeat:
    """Holds a mailbox's short lease (settings.lease_ttl_s) while a sync works: renews it every
    third of its life from a daemon thread. If the process dies the renewals stop and the next
    task takes the mailbox over within one lease period; if a renewal finds the lease gone (this
    process stalled past it and another sync took over), `lost` turns true and the sync stops
    before its next message and writes no history id (docs/architecture.md, "Queue")."""

    def __init__(self, store: SyncRepository, mailbox: str, instance: str, owner: str, ttl_s: float):
        self.store, self.mailbox, self.instance, self.owner, self.ttl_s = store, mailbox, instance, owner, ttl_s
        self.lost = False
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{mailbox}", daemon=True)

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def beat(self) -> bool:
        """One renewal (the thread calls it; tests call it directly)."""
        try:
            ok = self.store.renew_lease(self.mailbox, self.instance, self.owner, self.ttl_s)
        except Exception as e:  # noqa: BLE001 - a transient store error: the next beat retries
            log_event("WARNING", "lease renewal failed", mailbox=self.mailbox, error=f"{e.__class__.__name__}")
            return True
        self.renewals += 1
        if not ok:
            self.lost = True
            log_event("WARNING", "lease lost to another sync; stopping", mailbox=self.mailbox)
        return ok

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            if not self.beat():
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
