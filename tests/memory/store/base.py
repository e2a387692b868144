"""What the in-memory repositories share: the documents, their versions and the write count
(MemoryStore sets them), and the rules of Firestore that every write keeps here too, so a
service test cannot pass on what Firestore refuses (tests/integration/test_store_contract.py runs
the same cases on both stores):

- a value is one of Firestore's types, as the client converts it (tuples and sets are stored as
  arrays, datetimes in UTC); no array directly inside an array (the emulator's InvalidArgument);
- no document over 1 MiB and no field value over 1,048,487 bytes, sized as Firestore documents it
  (`document_size`): DocumentTooLarge, as the Firestore adapter raises;
- `_create` fails on an existing document, `_update` on a missing one (NotFound of the client
  library, which the adapter lets through), dotted keys of an update are field paths;
  `_set_merge` (set with merge=True) merges maps field by field and takes its keys literally;
- `_write` applies several writes all or nothing (a batch), each one new version of its document
  (the fake's update_time, the version of a precondition);
- `_query` filters and orders as a Firestore query does: a document without the field is left
  out, a range filter or an order compares values of the same type, ties go in document order.
"""

from __future__ import annotations

import copy
import threading
from datetime import datetime, timezone

from google.api_core import exceptions as gexc

from mailbridge.errors import DocumentTooLarge

MAX_DOCUMENT_BYTES = 1_048_576  # Firestore's limit on a document
MAX_VALUE_BYTES = 1_048_487  # and on one field value (1 MiB - 89 bytes)
DELETE = object()  # firestore.DELETE_FIELD: an update that removes the field

Key = tuple[str, str]  # (collection, document id)


def document_size(collection: str, key: str, data: dict) -> int:
    """A document's storage size as Firestore documents it (firebase.google.com/docs/firestore/
    storage-size): its name (each path segment's UTF-8 bytes + 1, plus 16), its fields (name's
    UTF-8 bytes + 1, plus the value) and 32 bytes. The emulator refuses above 1 MiB on exactly
    this count."""
    name = len(collection.encode()) + 1 + len(key.encode()) + 1 + 16
    return name + _map_size(data) + 32


def _map_size(data: dict) -> int:
    return sum(len(field.encode()) + 1 + _value_size(value) for field, value in data.items())


def _value_size(value) -> int:
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime)):
        return 8
    if isinstance(value, str):
        return len(value.encode()) + 1
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return _map_size(value)
    return sum(_value_size(inner) for inner in value)  # an array (stored() admitted nothing else)


def stored(value, where: str, in_array: bool = False):
    """`value` as Firestore keeps it, or the error Firestore (or its client) gives."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        if isinstance(value, (str, bytes)) and len(value.encode() if isinstance(value, str) else value) > MAX_VALUE_BYTES:
            raise DocumentTooLarge(f"{where}: a field value over Firestore's {MAX_VALUE_BYTES} bytes")
        return value
    if isinstance(value, datetime):  # the client reads a naive datetime as UTC
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, dict):
        if not all(isinstance(field, str) for field in value):
            raise TypeError(f"{where}: Firestore field names are strings")
        return {field: stored(inner, f"{where}.{field}") for field, inner in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        if in_array:
            raise gexc.InvalidArgument(f"{where}: Cannot convert an array value in an array value.")
        return [stored(inner, where, in_array=True) for inner in value]
    raise TypeError(f"{where}: Cannot convert to a Firestore Value: {type(value).__name__}")


def _field(data: dict, path: str):
    """(found, value) of a dotted field path."""
    value = data
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _merge_maps(data: dict, changes: dict) -> dict:
    merged = dict(data)
    for field, value in changes.items():
        if value is DELETE:
            merged.pop(field, None)
        elif isinstance(value, dict) and isinstance(merged.get(field), dict):
            merged[field] = _merge_maps(merged[field], value)
        else:
            merged[field] = value
    return merged


def _apply_update(data: dict, changes: dict) -> dict:
    updated = copy.deepcopy(data)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = updated
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        if value is DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return updated


def array_union(current, values: list) -> list:
    """firestore.ArrayUnion: the array with each value it lacks appended once."""
    result = list(current) if isinstance(current, list) else []
    for value in values:
        if value not in result:
            result.append(value)
    return result


# Firestore's order of value types, for range filters and ordering
_TYPE_ORDER = ((type(None),), (bool,), (int, float), (datetime,), (str,), (bytes,), (list,), (dict,))


def _type_rank(value) -> int:
    return next(rank for rank, types in enumerate(_TYPE_ORDER) if isinstance(value, types)
                and not (types == (int, float) and isinstance(value, bool)))


def _matches(data: dict, path: str, op: str, operand) -> bool:
    found, value = _field(data, path)
    if not found:
        return False
    if op == "array_contains":
        return isinstance(value, list) and operand in value
    if op == "array_contains_any":
        return isinstance(value, list) and any(v in value for v in operand)
    if op == "in":
        return any(_type_rank(value) == _type_rank(o) and value == o for o in operand)
    if _type_rank(value) != _type_rank(operand):
        return False
    return {"==": value == operand, "<": value < operand, ">=": value >= operand}[op]


class MemoryRepository:
    docs: dict[Key, dict]
    versions: dict[Key, int]
    write_count: int  # documents written (service tests assert that idle paths write nothing)
    _clock: int
    _lock: threading.RLock  # the heartbeat renews the lease from its own thread

    # -- reads -------------------------------------------------------------------------------
    def _get(self, collection: str, key: str) -> dict | None:
        doc = self.docs.get((collection, str(key)))
        return copy.deepcopy(doc) if doc is not None else None

    def _version(self, collection: str, key: str) -> int | None:
        return self.versions.get((collection, str(key)))

    def _query(self, collection: str, *filters: tuple[str, str, object], order_by: str | None = None,
               descending: bool = False, limit: int | None = None, fields: list[str] | None = None) -> list[dict]:
        rows = [(key, doc) for (c, key), doc in sorted(self.docs.items()) if c == collection
                and all(_matches(doc, *f) for f in filters)]
        if order_by:
            rows = [(key, doc) for key, doc in rows if _field(doc, order_by)[0]]
            rows.sort(key=lambda row: (_type_rank(_field(row[1], order_by)[1]), _field(row[1], order_by)[1], row[0]),
                      reverse=descending)
        rows = rows[:limit] if limit else rows
        if fields is not None:
            return [{f: copy.deepcopy(doc[f]) for f in fields if f in doc} for _key, doc in rows]
        return [copy.deepcopy(doc) for _key, doc in rows]

    def collection(self, name: str) -> dict[str, dict]:
        """Test helper: the documents of one collection by key."""
        return {k: copy.deepcopy(d) for (c, k), d in self.docs.items() if c == name}

    # -- writes ------------------------------------------------------------------------------
    def _write(self, writes: list[tuple[str, str, dict]]) -> None:
        """Store whole documents, all or nothing: every one is checked before any is written."""
        checked = []
        for collection, key, data in writes:
            doc = stored(data, f"{collection}/{key}")
            if document_size(collection, str(key), doc) > MAX_DOCUMENT_BYTES:
                raise DocumentTooLarge(f"{collection}/{key}: over Firestore's {MAX_DOCUMENT_BYTES} bytes")
            checked.append(((collection, str(key)), doc))
        with self._lock:
            for doc_key, doc in checked:
                self._clock += 1
                self.docs[doc_key] = doc
                self.versions[doc_key] = self._clock
                self.write_count += 1

    def _new(self, collection: str, key: str, data: dict) -> tuple[str, dict]:
        """(key, data) of a document a batch creates: AlreadyExists if it is there (as `_create`)."""
        if self._version(collection, key) is not None:
            raise gexc.AlreadyExists(f"{collection}/{key} already exists")
        return key, data

    def _set(self, collection: str, key: str, data: dict) -> None:
        self._write([(collection, key, data)])

    def _create(self, collection: str, key: str, data: dict) -> None:
        with self._lock:
            if self._version(collection, key) is not None:
                raise gexc.AlreadyExists(f"{collection}/{key} already exists")
            self._set(collection, key, data)

    def _merged(self, collection: str, key: str, changes: dict) -> dict:
        """The document after `set(changes, merge=True)`, not written yet."""
        return _merge_maps(self._get(collection, key) or {}, changes)

    def _set_merge(self, collection: str, key: str, changes: dict) -> dict:
        with self._lock:
            data = self._merged(collection, key, changes)
            self._set(collection, key, data)
            return data

    def _updated(self, collection: str, key: str, changes: dict) -> dict:
        """The document after `update(changes)`, not written yet; NotFound if it is missing."""
        data = self._get(collection, key)
        if data is None:
            raise gexc.NotFound(f"no entity to update: {collection}/{key}")
        return _apply_update(data, changes)

    def _update(self, collection: str, key: str, changes: dict) -> dict:
        with self._lock:
            data = self._updated(collection, key, changes)
            self._set(collection, key, data)
            return data

    def _delete(self, collection: str, key: str) -> bool:
        with self._lock:
            self.versions.pop((collection, str(key)), None)
            return self.docs.pop((collection, str(key)), None) is not None
