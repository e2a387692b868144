"""A sync's decide step (docs/architecture.md, "The path of a poll"): each fetched message
is parsed (domain/parsing), judged (domain/rules.classify), its authentication read and its
attachments stored; match.py then finds its ticket."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time

from mailbridge.domain import models, rules, workspace
from mailbridge.domain.authentication import NONE as UNAUTHENTICATED
from mailbridge.domain.authentication import authenticate
from mailbridge.domain.parsing import parse_message
from mailbridge.services import stored_bodies
from mailbridge.services.own_addresses import own_addresses
from mailbridge.services.ports import SyncPorts
from mailbridge.services.sync.fetch import Fetched

UPLOAD_WORKERS = 8  # parallel Cloud Storage uploads for a message with many attachments


@dataclasses.dataclass
class Prepared:
    gmail_id: str
    thread_id: str | None
    internal_date: str | None
    parsed: object
    verdict: object
    stored_attachments: list
    authentication: object = UNAUTHENTICATED  # domain.authentication.Authentication
    stored_parts: dict = dataclasses.field(default_factory=dict)  # body field -> sha256 (stored_bodies)
    relay: workspace.Relay | None = None  # a Google Group that rewrote the From (domain/workspace.py)


class Decider:
    """Parses and judges one mailbox's messages for a run; `incoming` is the mailbox's incoming
    settings (domain/models.incoming_settings)."""

    def __init__(self, services: SyncPorts, incoming: dict):
        self.services = services
        self.incoming = incoming
        self._own_addresses = None

    def own_addresses(self) -> set[str]:
        """Read on the run's first judged message, then kept for the run."""
        if self._own_addresses is None:
            self._own_addresses = own_addresses(self.services)
        return self._own_addresses

    def prepare(self, message: Fetched) -> Prepared:
        """Raises on a message that cannot be parsed or stored: the caller records the failure."""
        parsed = parse_message(message.raw)
        message.raw = b""  # parsed; the chunk need not hold the bytes any more
        self._apply_size_limit(parsed)
        verdict = rules.classify(
            parsed, own_addresses=self.own_addresses(), loop_marker=rules.loop_marker(self.services.settings.prefix),
            ignore_senders=self.incoming.get("ignore_senders") or [],
            ignore_subjects=self.incoming.get("ignore_subjects") or [])
        kept = verdict.action == "accept" or verdict.automatic
        stored = self._store_attachments(parsed) if kept else []
        parts = stored_bodies.offload_parsed(self.services, parsed) if kept else {}
        sender = parsed.from_.email if parsed.from_ else ""
        return Prepared(message.gmail_id, message.thread_id, message.internal_date, parsed, verdict, stored,
                        authenticate(parsed.headers, sender), parts,
                        workspace.group_relay(parsed.headers, sender, parsed.reply_to))

    def _apply_size_limit(self, parsed) -> None:
        limit = int(self.incoming.get("max_message_bytes") or 0)
        if not limit or parsed.size <= limit:
            return
        total = parsed.size
        for attachment in sorted(parsed.attachments, key=lambda a: a.size, reverse=True):
            if total <= limit:
                break
            if attachment.data:
                total -= attachment.size
                attachment.data = b""
                attachment.omitted = f"message is larger than the {limit}-byte limit"
        parsed.defects.append(f"message of {parsed.size} bytes exceeds the {limit}-byte limit; large attachments omitted")

    def _store_attachments(self, parsed) -> list[dict]:
        """Upload each distinct attachment once; a message with many parts uploads them in
        parallel (Cloud Storage calls are I/O-bound). Any failed upload fails the message."""
        blobs = self.services.blobs
        distinct = {a.sha256: a for a in parsed.attachments if a.data}
        if len(distinct) > 1:
            with concurrent.futures.ThreadPoolExecutor(min(UPLOAD_WORKERS, len(distinct))) as pool:
                futures = {sha: pool.submit(blobs.put, sha, a.data, a.content_type) for sha, a in distinct.items()}
                try:
                    keys = {sha: future.result() for sha, future in futures.items()}
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
        else:
            keys = {sha: blobs.put(sha, a.data, a.content_type) for sha, a in distinct.items()}
        stored = [{
            "filename": a.filename, "content_type": a.content_type, "size": a.size, "content_id": a.content_id,
            "sha256": a.sha256, "inline": a.inline, "omitted": a.omitted,
            "storage_key": keys[a.sha256] if a.data else None,
        } for a in parsed.attachments]
        for attachment in parsed.attachments:
            attachment.data = b""  # stored; the chunk need not hold the bytes until its commit
        return stored
