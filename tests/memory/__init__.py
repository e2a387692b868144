"""In-memory fakes of the service ports (mailbridge/services/ports.py): they keep state in
dicts, so service rules run in milliseconds without emulators. See docs/architecture.md."""

from tests.memory.gmail import MemoryGmail, MemoryMailboxes
from tests.memory.services import memory_services
from tests.memory.store import MemoryStore

__all__ = ["MemoryGmail", "MemoryMailboxes", "MemoryStore", "memory_services"]
