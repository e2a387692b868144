"""Ticket numbers without a hot document (adapters/firestore/numbers.py): a quiet process reserves
exactly what it needs, a busy one takes a block for its next seconds; numbers are never handed
out twice, and unused numbers of an expired block are skipped, not reused."""

from mailbridge.adapters.firestore import accounting
from mailbridge.adapters.firestore.numbers import BLOCK_S, TRIGGER, NumberPool


class Counter:
    """counters/tickets as Firestore's atomic increment answers it: the new last number."""

    def __init__(self):
        self.last, self.writes = 0, 0

    def increment(self, count: int) -> tuple[int, int]:
        self.last += count
        self.writes += 1
        return self.last, self.writes


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_quiet_process_reserves_exactly_what_it_needs_and_numbers_stay_consecutive():
    counter, clock = Counter(), Clock()
    pool = NumberPool(counter.increment, clock)
    taken = []
    for _ in range(5):
        taken += pool.take(3)
        clock.now += 5
    assert taken == list(range(1, 16)) and counter.writes == 5


def test_a_busy_process_writes_the_counter_far_less_than_once_a_reservation():
    counter, clock = Counter(), Clock()
    writes = []
    pool = NumberPool(lambda n: writes.append(accounting.Written(clock.now, "counters/tickets", 10)) or counter.increment(n),
                      clock)
    taken = []
    for _ in range(1200):  # a chunk commit every 50 ms for a minute
        taken += pool.take(3)
        clock.now += 0.05
    assert len(set(taken)) == len(taken) == 3600
    assert accounting.max_sustained_rate(writes)["value"] <= 1.0  # never more than 10 writes in 10 s
    assert counter.writes < TRIGGER + 60 / BLOCK_S + 2  # about one a block, not 1,200


def test_an_expired_block_is_skipped_never_handed_out_again():
    counter, clock = Counter(), Clock()
    pool = NumberPool(counter.increment, clock)
    busy = [n for _ in range(TRIGGER + 2) for n in pool.take(2)]
    reserved = counter.last
    assert reserved > max(busy)  # a block was taken and partly used
    clock.now += BLOCK_S + 1
    later = pool.take(1)
    assert later[0] == reserved + 1  # the rest of the expired block is skipped, never reused


def test_no_number_is_handed_out_twice_across_threads():
    import threading

    counter = Counter()
    pool = NumberPool(counter.increment)
    results: list[list[int]] = []

    def worker():
        mine = []
        for _ in range(200):
            mine += pool.take(2)
        results.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [n for r in results for n in r]
    assert len(every) == len(set(every)) == 1600


def test_syncs_that_find_the_block_short_together_wait_for_one_refill():
    """Two dozen concurrent syncs of one process (a fan-out) reach an empty block at once: one
    of them writes the counter, the others take from the block it brought."""
    import threading

    counter, clock = Counter(), Clock()
    pool = NumberPool(counter.increment, clock)
    for _ in range(TRIGGER):  # busy: the next reservation takes a block
        pool.take(10)
    clock.now += BLOCK_S + 1  # the block expired: the next syncs find it empty
    before = counter.writes
    entered, release = threading.Barrier(24), threading.Event()
    original = counter.increment

    def slow_increment(n):
        release.wait(5)  # the others arrive while this refill is under way
        return original(n)

    pool.increment = slow_increment
    results: list[list[int]] = []

    def sync():
        entered.wait()
        results.append(pool.take(3))

    threads = [threading.Thread(target=sync) for _ in range(24)]
    for t in threads:
        t.start()
    import time

    time.sleep(0.3)  # every sync has reached the pool while the first refill waits
    release.set()
    for t in threads:
        t.join()
    every = [n for r in results for n in r]
    assert len(every) == len(set(every)) == 72
    assert counter.writes - before <= 2, counter.writes - before


def busy_processes(processes: int, steps: int, count: int, every_s: float) -> tuple[list[int], list]:
    """`processes` pools on one counter taking `count` numbers in turn every `every_s`: the numbers
    taken and the counter's writes."""
    counter, clock = Counter(), Clock()
    writes = []

    def increment(n):
        writes.append(accounting.Written(clock.now, "counters/tickets", 10))
        return counter.increment(n)

    pools = [NumberPool(increment, clock) for _ in range(processes)]
    taken = []
    for step in range(steps):
        taken += pools[step % processes].take(count)
        clock.now += every_s
    return taken, writes


def test_busy_processes_together_keep_the_counter_under_one_write_a_second():
    # eight busy instances, each reserving every 100 ms for a minute
    taken, writes = busy_processes(8, 4800, 2, 0.0125)
    assert len(set(taken)) == len(taken)
    late = [w for w in writes if w.at > 1030]  # once the blocks have grown
    assert accounting.max_sustained_rate(late)["value"] <= 1.0


def test_two_processes_starting_a_burst_together_write_the_counter_at_most_once_a_second():
    # two instances, one fan-out: each reserves every 100 ms for a minute, from the first second
    taken, writes = busy_processes(2, 1200, 3, 0.05)
    assert len(set(taken)) == len(taken) == 3600
    assert accounting.max_sustained_rate(writes)["value"] <= 1.0, accounting.max_sustained_rate(writes)


def test_a_process_quiet_again_after_a_burst_reserves_exactly_what_it_needs():
    counter, clock = Counter(), Clock()
    pool = NumberPool(counter.increment, clock)
    for _ in range(200):
        pool.take(3)
        clock.now += 0.05
    clock.now += 120  # the burst is over: minutes later, one ticket at a time
    first = pool.take(1)[0]
    clock.now += 20
    second = pool.take(1)[0]
    assert second == first + 1 == counter.last
