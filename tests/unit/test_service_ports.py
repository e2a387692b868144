"""Each use case touches only the ports it declares (docs/architecture.md, "The store as a port").

Every function or class of services/*.py and of the modules of its packages (services/outgoing/…)
that takes `services` annotates it with a port of services/ports.py (`services: SyncPorts`), and a
`store` parameter with a store Protocol. This test reads the modules with `ast` and fails when one
of them
- reads or sets an attribute of `services` (also `self.services`) that its port does not name,
- calls a store method (`services.store.x`, `self.store.x`, a local `store`) that the port's
  store Protocol and the repository Protocols it combines do not name,
- hands `services` (or the store) to a function whose port names more than its own (also one
  imported by name, or re-exported by a package), or to a callable the test cannot follow,
- leaves a `services` or `store` parameter unannotated.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
import inspect
from pathlib import Path

import pytest

from mailbridge import bootstrap
from mailbridge.services import ports, repositories

SERVICES_DIR = Path(ports.__file__).parent
PORT_MODULES = (ports.__name__, repositories.__name__)  # the ports and the store repositories they combine
# every module of services/ and of its packages (services/outgoing/delivery.py: "outgoing.delivery");
# a package's __init__ only re-exports its modules' names (checked below)
MODULES = sorted(".".join(p.relative_to(SERVICES_DIR).with_suffix("").parts) for p in SERVICES_DIR.rglob("*.py")
                 if p.name != "__init__.py" and p.stem not in ("ports", "repositories"))
PACKAGES = sorted(p.parent.name for p in SERVICES_DIR.glob("*/__init__.py"))
ATTRIBUTE_BUILTINS = ("getattr", "setattr", "hasattr", "delattr")


# -- what a port names ----------------------------------------------------------------------------
def members(protocol: type) -> set[str]:
    """Attributes, properties and methods of a ports Protocol and of the ports it inherits."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base.__module__ not in PORT_MODULES:
            continue
        names.update(base.__dict__.get("__annotations__", {}))
        names.update(n for n, v in vars(base).items()
                     if not n.startswith("__") and (inspect.isfunction(v) or isinstance(v, property)))
    return names


def store_protocol(port: type) -> type | None:
    """The store Protocol a port declares (the most derived `store` annotation)."""
    for base in port.__mro__:
        annotation = base.__dict__.get("__annotations__", {}).get("store")
        if annotation is not None:
            return getattr(ports, annotation) if isinstance(annotation, str) else annotation
    return None


@dataclass
class Allowed:
    services: set[str] | None  # None: the unit takes no `services`
    store: set[str] | None

    def covers(self, other: "Allowed") -> bool:
        return all(theirs is None or (mine is not None and theirs <= mine)
                   for mine, theirs in ((self.services, other.services), (self.store, other.store)))


def allowed_for(services_annotation: str | None, store_annotation: str | None) -> Allowed:
    services_members = store_members = None
    if services_annotation:
        port = getattr(ports, services_annotation)
        services_members = members(port)
        store = store_protocol(port)
        store_members = members(store) if store else set()
    if store_annotation:
        store_members = members(getattr(ports, store_annotation))
    return Allowed(services_members, store_members)


# -- reading a module ---------------------------------------------------------------------------
@dataclass
class Unit:
    """A top-level function, or a class (its methods share `self.services` / `self.store`)."""

    module: str
    name: str
    node: ast.AST
    services_annotation: str | None = None
    store_annotation: str | None = None
    gmail_port: bool = False  # takes `gmail: Gmail` (a step that reads only Gmail declares that port)
    problems: list[str] = field(default_factory=list)


def _parameters(function: ast.FunctionDef) -> list[ast.arg]:
    args = function.args
    return args.posonlyargs + args.args + args.kwonlyargs


def _annotation_of(function: ast.FunctionDef, name: str, where: str, problems: list[str]) -> str | None:
    for arg in _parameters(function):
        if arg.arg != name:
            continue
        if arg.annotation is None:
            problems.append(f"{where} (line {arg.lineno}): parameter `{name}` has no port annotation (services/ports.py)")
            return None
        annotation = ast.unparse(arg.annotation).strip("'\"").removeprefix("ports.")
        if not isinstance(getattr(ports, annotation, None), type):
            problems.append(f"{where} (line {arg.lineno}): `{name}: {annotation}` is not a Protocol of services/ports.py")
            return None
        return annotation
    return None


def _takes_gmail_port(function: ast.FunctionDef) -> bool:
    return any(arg.arg == "gmail" and arg.annotation is not None
               and ast.unparse(arg.annotation).strip("'\"").removeprefix("ports.") == "Gmail"
               for arg in _parameters(function))


def units_of(module: str, source: str) -> dict[str, Unit]:
    units = {}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            unit = Unit(module, node.name, node)
            where = f"{module}.{node.name}"
            unit.services_annotation = _annotation_of(node, "services", where, unit.problems)
            unit.store_annotation = _annotation_of(node, "store", where, unit.problems)
            unit.gmail_port = _takes_gmail_port(node)
        elif isinstance(node, ast.ClassDef):
            unit = Unit(module, node.name, node)
            for method in node.body:
                if isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    where = f"{module}.{node.name}.{method.name}"
                    services = _annotation_of(method, "services", where, unit.problems)
                    store = _annotation_of(method, "store", where, unit.problems)
                    unit.services_annotation = unit.services_annotation or services
                    unit.store_annotation = unit.store_annotation or store
                    unit.gmail_port = unit.gmail_port or _takes_gmail_port(method)
        else:
            continue
        units[node.name] = unit
    return units


@dataclass
class Imported:
    modules: dict[str, str]  # local name → module or package: `from mailbridge.services.outgoing import delivery`
    names: dict[str, tuple[str, str]]  # local name → (module or package, name): `from …sync.run import MailboxSync`


def _imported_services(source: str, modules: set[str]) -> Imported:
    """What a module imports from services/: `from mailbridge.services import a, b` and
    `from mailbridge.services.outgoing import delivery` ("outgoing.delivery") name modules;
    `from mailbridge.services.sync.run import MailboxSync` names a unit of "sync.run"."""
    imported = Imported({}, {})
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mailbridge.services"):
            package = node.module.removeprefix("mailbridge.services").lstrip(".")
            for alias in node.names:
                module = ".".join(filter(None, (package, alias.name)))
                if module in modules or module in PACKAGES:
                    imported.modules[alias.asname or alias.name] = module
                elif package in modules or package in PACKAGES:
                    imported.names[alias.asname or alias.name] = (package, alias.name)
    return imported


def _reexports(package: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(package, name) → (module, name) for the names a package's __init__ imports from its modules."""
    aliases = {}
    for node in ast.parse((SERVICES_DIR / package / "__init__.py").read_text()).body:
        if isinstance(node, ast.ImportFrom):
            module = (node.module or "").removeprefix("mailbridge.services.")
            aliases.update({(package, alias.asname or alias.name): (module, alias.name) for alias in node.names})
    return aliases


def _is_self(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _is_services(node) -> bool:
    return (isinstance(node, ast.Name) and node.id == "services") or (
        isinstance(node, ast.Attribute) and node.attr == "services" and _is_self(node.value))


def _is_store(node) -> bool:
    """`store`, `self.store`, `services.store`, `self.services.store` (a local `store` is the store:
    the services name it so)."""
    return (isinstance(node, ast.Name) and node.id == "store") or (
        isinstance(node, ast.Attribute) and node.attr == "store" and (_is_self(node.value) or _is_services(node.value)))


def check_unit(unit: Unit, index: dict[tuple[str, str], Unit], imported: Imported) -> list[str]:
    problems = list(unit.problems)
    allowed = allowed_for(unit.services_annotation, unit.store_annotation)
    where = f"{unit.module}.{unit.name}"

    def touch(kind: str, name: str, line: int) -> None:
        names = allowed.services if kind == "services" else allowed.store
        port = unit.services_annotation or unit.store_annotation or "no port"
        if names is None or name not in names:
            problems.append(f"{where} (line {line}): {kind}.{name} is not declared in {port}")

    def callee(func) -> Unit | None:
        if isinstance(func, ast.Name):
            return index.get((unit.module, func.id)) or index.get(imported.names.get(func.id))
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in imported.modules:
            return index.get((imported.modules[func.value.id], func.attr))
        return None

    for node in ast.walk(unit.node):
        if isinstance(node, ast.Attribute):
            if _is_store(node.value):
                touch("store", node.attr, node.lineno)
            elif _is_services(node.value):
                touch("services", node.attr, node.lineno)
        if not isinstance(node, ast.Call):
            continue
        arguments = list(node.args) + [k.value for k in node.keywords]
        if isinstance(node.func, ast.Name) and node.func.id in ATTRIBUTE_BUILTINS and len(node.args) >= 2:
            target, name = node.args[0], node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str):
                if _is_services(target):
                    touch("services", name.value, node.lineno)
                elif _is_store(target):
                    touch("store", name.value, node.lineno)
                continue
        handed = [a for a in arguments if _is_services(a) or _is_store(a)]
        if not handed:
            continue
        targets = [callee(node.func)]
        if targets[0] is None:  # e.g. pool.submit(sync_mailbox, services, …): follow the callables handed along
            targets = [callee(a) for a in arguments if isinstance(a, (ast.Name, ast.Attribute)) and callee(a)]
        if not targets:
            problems.append(f"{where} (line {node.lineno}): hands services/store to "
                            f"{ast.unparse(node.func)}, which the port check cannot follow")
            continue
        for target in targets:
            needed = allowed_for(target.services_annotation, target.store_annotation)
            if not allowed.covers(needed):
                problems.append(f"{where} (line {node.lineno}): hands services to {target.module}.{target.name}, "
                                f"whose port ({target.services_annotation or target.store_annotation}) names more "
                                f"than {unit.services_annotation or unit.store_annotation}")
    return problems


def check_modules(sources: dict[str, str]) -> list[str]:
    index, per_module = {}, {}
    for module, source in sources.items():
        per_module[module] = units_of(module, source)
        index.update({(module, name): unit for name, unit in per_module[module].items()})
    for package in PACKAGES:  # `outgoing.send_reply(services, …)` is outgoing.replies.send_reply
        index.update({alias: index[target] for alias, target in _reexports(package).items() if target in index})
    problems = []
    for module, source in sources.items():
        imported = _imported_services(source, set(sources))
        for unit in per_module[module].values():
            problems += check_unit(unit, index, imported)
    return problems


def service_sources() -> dict[str, str]:
    return {module: (SERVICES_DIR / f"{module.replace('.', '/')}.py").read_text() for module in MODULES}


# -- the tests ----------------------------------------------------------------------------------
def test_every_service_touches_only_the_ports_it_declares():
    problems = check_modules(service_sources())
    assert not problems, "\n".join(problems)


def test_a_package_init_only_reexports_its_modules():
    for package in PACKAGES:
        tree = ast.parse((SERVICES_DIR / package / "__init__.py").read_text())
        assert all(isinstance(node, (ast.ImportFrom, ast.Assign)) or (isinstance(node, ast.Expr) and isinstance(
            node.value, ast.Constant)) for node in tree.body), package  # docstring, imports, __all__


def test_every_service_module_declares_a_port():
    ported = {unit.module for units in map(units_of, MODULES, service_sources().values())
              for unit in units.values() if unit.services_annotation or unit.store_annotation or unit.gmail_port}
    assert ported == set(MODULES)


def test_the_ports_are_narrower_than_the_container():
    container = members(ports.Services)
    store = members(ports.Store)
    for name in ("WatchPorts", "AdminAccessPorts", "ConnectPorts", "TicketsPorts", "LabelsPorts", "IntakePorts",
                 "OverrideTargetPorts", "MailboxesPorts", "OutgoingPorts", "SyncPorts", "PollPorts", "PushPorts",
                 "EventsPorts"):
        port = getattr(ports, name)
        assert members(store_protocol(port)) < store, name
        assert members(port) - {"_own_addresses_cache"} <= container, name
    assert members(ports.EventFeedPorts) == {"event_subscription"}
    # ticket changes reach the store and, for their events, the events topic and the work queue;
    # blobs: parts of large messages (stored_bodies)
    assert members(ports.TicketsPorts) == {"store", "settings", "event_topic", "queue", "blobs"}
    assert "use_nonce" not in members(ports.PollStore)


def test_the_sync_port_names_only_what_the_sync_reads_and_writes():
    """Its hand-offs (acknowledgements, the outbox) have their own ports; only the entry points'
    port joins them (docs/architecture.md, "Ports per use case")."""
    handed_off = members(ports.OutboundRepository) | members(ports.OverrideRepository)
    assert not members(ports.SyncStore) & handed_off
    assert handed_off <= members(ports.PollStore)
    joined = {unit.module for module, source in service_sources().items() if module.startswith("sync.")
              for unit in units_of(module, source).values() if unit.services_annotation == "PollPorts"}
    assert joined == {"sync.mailbox", "sync.fanout"}


def test_the_container_offers_every_port():
    offered = {n for n in dir(bootstrap.Services) if not n.startswith("_")} | {"settings"}  # settings: set in __init__
    assert members(ports.Services) <= offered, members(ports.Services) - offered


FIXTURE = '''
from mailbridge.services import mailboxes
from mailbridge.services.mailboxes import add_mailbox
from mailbridge.services.sync import handoffs


def good(services: WatchPorts, name):
    services.store.update_sync(name, services.settings.instance, {})


def reads_undeclared(services: WatchPorts, name):
    return services.secrets.get(name)


def calls_undeclared_store_method(services: WatchPorts, name):
    store = services.store
    return store.get_mailbox(name)


def hands_on_to_a_wider_port(services: WatchPorts, name):
    return mailboxes.add_mailbox(services, name, "a@b.example")


def hands_an_imported_name_a_wider_port(services: WatchPorts, name):
    return add_mailbox(services, name, "a@b.example")


def a_step_of_the_sync_hands_off(services: SyncPorts, mailbox):
    handoffs.queue_acknowledgements(services, mailbox, [])


def unannotated(services, name):
    return name


def dynamic(services: WatchPorts):
    return getattr(services, "queue")


class Holder:
    def __init__(self, services: TicketsPorts):
        self.services, self.store = services, services.store

    def run(self):
        self.store.list_tickets()
        return self.store.update_sync("m", "i", {})


def passes_to_unknown(services: WatchPorts):
    return print(services)
'''


@pytest.mark.parametrize("function,expected", [
    ("reads_undeclared", "services.secrets is not declared in WatchPorts"),
    ("calls_undeclared_store_method", "store.get_mailbox is not declared in WatchPorts"),
    ("hands_on_to_a_wider_port", "hands services to mailboxes.add_mailbox, whose port (MailboxesPorts)"),
    ("hands_an_imported_name_a_wider_port", "hands services to mailboxes.add_mailbox, whose port (MailboxesPorts)"),
    ("a_step_of_the_sync_hands_off", "hands services to sync.handoffs.queue_acknowledgements, "
                                     "whose port (AcknowledgementPorts) names more than SyncPorts"),
    ("unannotated", "parameter `services` has no port annotation"),
    ("dynamic", "services.queue is not declared in WatchPorts"),
    ("Holder", "store.update_sync is not declared in TicketsPorts"),
    ("passes_to_unknown", "hands services/store to print, which the port check cannot follow"),
])
def test_the_check_fails_on_an_undeclared_use(function, expected):
    problems = check_modules({**service_sources(), "fixture": FIXTURE})
    mine = [p for p in problems if p.startswith(f"fixture.{function} ")]
    assert len(mine) == 1 and expected in mine[0], problems
    assert not [p for p in problems if p.startswith("fixture.good ")]
    assert all(p.startswith("fixture.") for p in problems)
