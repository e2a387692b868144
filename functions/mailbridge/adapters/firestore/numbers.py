"""Ticket numbers without a hot document (docs/architecture.md, "No hot documents").

`counters/tickets` hands out numbers with one atomic server-side increment per reservation. A
sync reserves once per chunk, so a fan-out over 1,000 mailboxes would write that one document
many times a second. A process that reserves often (TRIGGER reservations within WINDOW_S: near
the rate at which the document would be hot) takes a block sized for BLOCK_S of its recent demand
instead and hands numbers out of it in memory, for BLOCK_S at most; a quiet process reserves
exactly what it needs, so numbers stay consecutive in ordinary use. A busy process then writes
the counter about once a block; the counter also counts its reservations, and when they come
faster than TARGET_RATE (several busy processes: Cloud Run instances) each process keeps its
blocks longer, up to MAX_BLOCK_S, so the counter stays under one write a second in all.

Unique and exactly once either way: every number comes from the atomic increment once, and a new
ticket is *created* (fails if present), so even a stale block (the store reset under a running
process) costs a retried commit, never a duplicate. Unused numbers of an expired block are
skipped: ticket numbers may have gaps after a burst.
"""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_S = 10.0   # demand is measured over this long (Firestore's limit: ~1 write/s sustained over 10 s)
TRIGGER = 6       # reservations within WINDOW_S that make a block worth taking
BLOCK_S = 3.0     # a block holds this long of the recent demand, and is dropped after it ...
MAX_BLOCK_S = 30.0  # ... or up to this long while other processes reserve too
TARGET_RATE = 0.5   # reservations a second of every process together that need no longer blocks
MAX_BLOCK = 1000  # numbers one block holds at most


class NumberPool:
    """One process's block of reserved numbers; `increment(n)` reserves n and answers (the last
    number, the counter's reservations so far)."""

    def __init__(self, increment, clock=time.monotonic):
        self.increment, self.clock = increment, clock
        self.lock = threading.Lock()
        # One refill at a time: the syncs of a busy process that find the block short together
        # wait for one increment instead of each writing the counter (a fan-out's two dozen
        # concurrent syncs made the counter's 10 s peak 1.9 writes a second; docs/benchmarks.md).
        self.refill = threading.Lock()
        self.block: list[int] = []
        self.block_until = 0.0
        self.recent: deque[tuple[float, int]] = deque()  # (when, how many) reservations asked
        self.block_s = BLOCK_S
        self.seen: tuple[float, int] | None = None  # (when, the counter's reservations) last time

    def take(self, count: int) -> list[int]:
        if count <= 0:
            return []
        with self.refill:
            return self._take(count)

    def _take(self, count: int) -> list[int]:
        with self.lock:
            now = self.clock()
            self.recent.append((now, count))
            while self.recent and self.recent[0][0] < now - WINDOW_S:
                self.recent.popleft()
            if self.block_until <= now:
                self.block = []
            taken, self.block = self.block[:count], self.block[count:]
            missing = count - len(taken)
            if not missing:
                return taken
            size = missing
            if len(self.recent) >= TRIGGER or self._others_busy(now):  # a block for the next block_s of this demand
                rate = sum(n for _at, n in self.recent) / max(now - self.recent[0][0], 1.0)
                size = max(missing, min(MAX_BLOCK, round(rate * self.block_s)))
        # Under `refill` only: a thread reading the pool's figures meanwhile is not held up.
        last, reservations = self.increment(size)
        numbers = list(range(last - size + 1, last + 1))
        with self.lock:
            self._adapt(now, reservations)
            if size > missing:
                self.block, self.block_until = self.block + numbers[missing:], now + self.block_s
        return taken + numbers[:missing]

    def _others_busy(self, now: float) -> bool:
        """The counter's last answer, a moment ago, showed every process together reserving
        faster than TARGET_RATE: take a block at once instead of TRIGGER single reservations, or
        several processes starting a burst together write the counter more than once a second
        before any of them is busy on its own (two bench instances: 12 writes in 10 s)."""
        return self.block_s > BLOCK_S and self.seen is not None and now - self.seen[0] <= WINDOW_S

    def _adapt(self, now: float, reservations: int) -> None:
        """Keep blocks longer while every process together reserves faster than TARGET_RATE."""
        if self.seen is not None and now - self.seen[0] <= WINDOW_S * 6 and now > self.seen[0]:
            rate = (reservations - self.seen[1]) / (now - self.seen[0])
            if rate > TARGET_RATE:
                self.block_s = min(MAX_BLOCK_S, self.block_s * 2)
            elif rate < TARGET_RATE / 2:
                self.block_s = max(BLOCK_S, self.block_s / 2)
        self.seen = (now, reservations)
