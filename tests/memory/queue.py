"""An in-memory WorkQueue (services/ports.WorkQueue): records every published task and delivers
them on demand, at least once like Pub/Sub: a test can deliver a task twice, drop one, or hold
one back while the world changes."""

from __future__ import annotations


class MemoryQueue:
    def __init__(self, instance: str = "production"):
        self.instance = instance
        self.tasks: list[dict] = []  # every task ever published, in order
        self.pending: list[dict] = []  # published and not yet delivered (or handed back for redelivery)

    def publish(self, kind: str, mailbox: str, attributes: dict | None = None) -> None:
        task = {str(k): str(v) for k, v in (attributes or {}).items() if v is not None}
        task.update(kind=kind, mailbox=mailbox, instance=self.instance)
        self.tasks.append(task)
        self.pending.append(task)

    def publish_many(self, kind: str, tasks: list[tuple[str, dict | None]]) -> None:
        for mailbox, attributes in tasks:
            self.publish(kind, mailbox, attributes)

    def take(self) -> list[dict]:
        """Hand out the pending tasks (the caller delivers them)."""
        taken, self.pending = self.pending, []
        return taken

    def deliver(self, services, *, kinds=("sync",), limit: int = 10_000) -> list:
        """Deliver pending tasks to the push path until none is left (tasks they publish too);
        a task answered with a retry status goes back to the queue once per round. Returns the
        outcomes in delivery order."""
        from mailbridge.services import push

        outcomes = []
        for _ in range(limit):
            batch = [t for t in self.take() if t["kind"] in kinds]
            if not batch:
                break
            for task in batch:
                outcome = push.on_task(services, task)
                outcomes.append(outcome)
                if outcome.status >= 300:
                    self.pending.append(task)
            if all(o.status >= 300 for o in outcomes[-len(batch):]):
                break  # nothing moved: the caller decides (e.g. let a lease expire)
        return outcomes
