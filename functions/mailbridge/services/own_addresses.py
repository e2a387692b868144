"""The deployment's own mailbox addresses (loop protection: never ingest or send to ourselves),
read once a minute per instance and shared by the sync and the acknowledgements."""

from __future__ import annotations

import threading
import time

from mailbridge.domain import models
from mailbridge.services.ports import OwnAddressesPorts

OWN_ADDRESSES_TTL_S = 60.0
_OWN_ADDRESSES_LOCK = threading.Lock()


def own_addresses(services: OwnAddressesPorts) -> set[str]:
    """Every mailbox's address (loop protection), read once a minute per instance: with the fan-
    out each task syncs one mailbox, and reading every mailbox document for each busy task would
    be the largest Firestore cost (docs/benchmarks.md, cost model). A mailbox added in the last
    minute is caught by the loop-marker header until then."""
    cached = getattr(services, "_own_addresses_cache", None)
    if cached is not None and time.monotonic() - cached[0] < OWN_ADDRESSES_TTL_S:
        return cached[1]
    # One reader at a time: when a tick's tasks arrive together, the others wait for its answer
    # instead of each reading every mailbox document at once.
    with _OWN_ADDRESSES_LOCK:
        cached = getattr(services, "_own_addresses_cache", None)
        if cached is not None and time.monotonic() - cached[0] < OWN_ADDRESSES_TTL_S:
            return cached[1]
        value = models.own_addresses(services.store.list_mailboxes())
        services._own_addresses_cache = (time.monotonic(), value)
    return value
