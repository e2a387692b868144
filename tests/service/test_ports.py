"""The adapters and the in-memory fakes offer the same ports (services/ports.py), with the same
parameter names: a service test on the fakes exercises the calls production makes."""

import inspect

import pytest

from mailbridge.adapters.firestore.store import Store
from mailbridge.adapters.gmail import Gmail
from mailbridge.services import ports, repositories
from tests.memory import MemoryGmail, MemoryStore


def methods(protocol):
    return sorted(n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")) + sorted(
        n for base in protocol.__mro__[1:] if base.__module__ in (ports.__name__, repositories.__name__)
        for n, v in vars(base).items() if callable(v) and not n.startswith("_"))


def parameters(cls, name):
    return list(inspect.signature(getattr(cls, name)).parameters)


@pytest.mark.parametrize("port,implementations", [(ports.Store, (Store, MemoryStore)), (ports.Gmail, (Gmail, MemoryGmail))],
                         ids=["store", "gmail"])
def test_every_port_method_exists_with_the_same_parameters(port, implementations):
    names = set(methods(port))
    assert len(names) > 10
    for cls in implementations:
        missing = sorted(n for n in names if not hasattr(cls, n))
        assert not missing, (cls.__name__, missing)
        for name in names:
            assert parameters(cls, name) == parameters(port, name), (cls.__name__, name)


@pytest.mark.parametrize("store", [Store, MemoryStore], ids=["firestore", "memory"])
@pytest.mark.parametrize("port", [ports.SettingsRepository, ports.MailboxRepository, ports.SyncRepository,
                                  ports.LinkRepository, ports.TicketRepository, ports.InboundRepository,
                                  ports.OutboundRepository, ports.OverrideRepository, ports.AdminRepository],
                         ids=lambda port: port.__name__)
def test_each_repository_implements_its_port_in_its_own_module(port, store):
    """The in-memory store is cut like the Firestore one: same class names, same module names."""
    repository = next(base for base in store.__mro__ if base.__name__ == port.__name__)
    own = {name for name, value in vars(repository).items() if callable(value)}
    assert set(methods(port)) <= own, sorted(set(methods(port)) - own)
    assert repository.__module__ != store.__module__
    assert repository.__module__.rsplit(".", 1)[1] == next(
        base for base in Store.__mro__ if base.__name__ == port.__name__).__module__.rsplit(".", 1)[1]
