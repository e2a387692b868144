"""Fake Secret Manager v1 over REST, shaped after what google-cloud-secret-manager's REST
transport sends (paths from its rest_base.py; JSON in proto3 camelCase).

Anonymous requests are accepted. With ``$alt=json;enum-encoding=int`` (the client's default)
enums are answered as numbers, otherwise as names.
"""

from __future__ import annotations

import base64
import datetime
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import google_crc32c
from werkzeug.wrappers import Request, Response

from .errors import GoogleApiError, json_response

STATES = {"ENABLED": 1, "DISABLED": 2, "DESTROYED": 3}
MAX_PAYLOAD_BYTES = 64 * 1024
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PARENT = r"projects/[^/]+(?:/locations/[^/]+)?"
_ROUTES = [
    ("POST", re.compile(rf"^(?P<parent>{_PARENT})/secrets$"), "create_secret"),
    ("GET", re.compile(rf"^(?P<parent>{_PARENT})/secrets$"), "list_secrets"),
    ("GET", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+)$"), "get_secret"),
    ("PATCH", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+)$"), "update_secret"),
    ("DELETE", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+)$"), "delete_secret"),
    ("POST", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+):addVersion$"), "add_version"),
    ("GET", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+)/versions$"), "list_versions"),
    ("GET", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+/versions/[^/:]+)$"), "get_version"),
    ("GET", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+/versions/[^/:]+):access$"),
     "access_version"),
    ("POST", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+/versions/[^/:]+):destroy$"),
     "destroy_version"),
    ("POST", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+/versions/[^/:]+):disable$"),
     "disable_version"),
    ("POST", re.compile(rf"^(?P<name>{_PARENT}/secrets/[^/:]+/versions/[^/:]+):enable$"),
     "enable_version"),
]


def _timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds") \
        .replace("+00:00", "Z")


def _error(code: int, message: str, status: str) -> GoogleApiError:
    return GoogleApiError(code, message, status=status, legacy_errors=False)


@dataclass
class SecretVersion:
    number: int
    data: bytes | None
    create_time: str
    state: str = "ENABLED"
    destroy_time: str | None = None
    client_checksum: bool = False


@dataclass
class Secret:
    name: str
    body: dict[str, Any]
    create_time: str
    etag: str
    versions: list[SecretVersion] = field(default_factory=list)


class SecretManager:
    def __init__(self) -> None:
        self.secrets: dict[str, Secret] = {}
        self.access_count = 0

    def reset(self) -> None:
        self.secrets.clear()
        self.access_count = 0

    # ----- HTTP -------------------------------------------------------------------------------

    def handle(self, request: Request, path: str) -> Response:
        """Dispatch ``/v1/<path>``; the caller holds the state lock."""
        numeric_enums = "enum-encoding=int" in request.args.get("$alt", "")
        for method, pattern, handler_name in _ROUTES:
            match = pattern.match(path)
            if match and request.method == method:
                try:
                    result = getattr(self, handler_name)(request, **match.groupdict())
                except GoogleApiError as error:
                    return error.response()
                if result is None:
                    return json_response({})
                return json_response(_encode_enums(result, numeric_enums))
        return _error(404, f"Method not found: {request.method} /v1/{path}", "NOT_FOUND").response()

    # ----- secrets ----------------------------------------------------------------------------

    def _secret(self, name: str) -> Secret:
        secret = self.secrets.get(name)
        if secret is None:
            raise _error(404, f"Secret [{name}] not found or has no versions.", "NOT_FOUND")
        return secret

    def _secret_json(self, secret: Secret) -> dict[str, Any]:
        return {**secret.body, "name": secret.name, "createTime": secret.create_time,
                "etag": secret.etag}

    def create_secret(self, request: Request, parent: str) -> dict[str, Any]:
        secret_id = request.args.get("secretId", "")
        if not _SECRET_ID.match(secret_id):
            raise _error(400, "Secret ID must be 1-255 characters of letters, digits, - and _.",
                         "INVALID_ARGUMENT")
        body = request.get_json(silent=True) or {}
        if "replication" not in body and "/locations/" not in parent:
            raise _error(400, "Secret.replication is required.", "INVALID_ARGUMENT")
        name = f"{parent}/secrets/{secret_id}"
        if name in self.secrets:
            raise _error(409, f"Secret [{name}] already exists.", "ALREADY_EXISTS")
        body = {k: v for k, v in body.items() if k not in ("name", "createTime", "etag")}
        secret = Secret(name, body, _timestamp(), f'"{secrets.token_hex(8)}"')
        self.secrets[name] = secret
        return self._secret_json(secret)

    def list_secrets(self, request: Request, parent: str) -> dict[str, Any]:
        names = sorted(n for n in self.secrets if n.startswith(parent + "/secrets/"))
        page, token = _page(names, request)
        result: dict[str, Any] = {"secrets": [self._secret_json(self.secrets[n]) for n in page],
                                  "totalSize": len(names)}
        if token:
            result["nextPageToken"] = token
        return result

    def get_secret(self, request: Request, name: str) -> dict[str, Any]:
        return self._secret_json(self._secret(name))

    def update_secret(self, request: Request, name: str) -> dict[str, Any]:
        secret = self._secret(name)
        body = request.get_json(silent=True) or {}
        mask = [m for m in request.args.get("updateMask", "").split(",") if m]
        if not mask:
            raise _error(400, "update_mask is required.", "INVALID_ARGUMENT")
        for path in mask:
            if path in ("labels", "annotations", "expireTime", "ttl", "topics", "rotation",
                        "versionAliases", "versionDestroyTtl"):
                if path in body:
                    secret.body[path] = body[path]
                else:
                    secret.body.pop(path, None)
            else:
                raise _error(400, f"Field {path} cannot be updated.", "INVALID_ARGUMENT")
        secret.etag = f'"{secrets.token_hex(8)}"'
        return self._secret_json(secret)

    def delete_secret(self, request: Request, name: str) -> None:
        self._secret(name)
        del self.secrets[name]

    # ----- versions ---------------------------------------------------------------------------

    def add_version(self, request: Request, name: str) -> dict[str, Any]:
        secret = self._secret(name)
        body = request.get_json(silent=True) or {}
        payload = body.get("payload") or {}
        try:
            data = base64.b64decode(payload.get("data", ""), validate=True)
        except (ValueError, TypeError):
            raise _error(400, "Invalid payload data.", "INVALID_ARGUMENT")
        if len(data) > MAX_PAYLOAD_BYTES:
            raise _error(400, "Secret payload exceeds 65536 bytes.", "INVALID_ARGUMENT")
        checksum = payload.get("dataCrc32c")
        if checksum is not None and int(checksum) != google_crc32c.value(data):
            raise _error(400, "Checksum mismatch: the payload's CRC32C does not match.",
                         "INVALID_ARGUMENT")
        version = SecretVersion(len(secret.versions) + 1, data, _timestamp(),
                                client_checksum=checksum is not None)
        secret.versions.append(version)
        return self._version_json(secret, version)

    def _version(self, name: str) -> tuple[Secret, SecretVersion]:
        secret_name, _, version_id = name.rpartition("/versions/")
        secret = self._secret(secret_name)
        if version_id == "latest":
            if not secret.versions:
                raise _error(404, f"Secret [{secret_name}] not found or has no versions.",
                             "NOT_FOUND")
            return secret, secret.versions[-1]
        if not version_id.isdigit():
            raise _error(400, f"Invalid version id: {version_id}", "INVALID_ARGUMENT")
        number = int(version_id)
        if not 1 <= number <= len(secret.versions):
            raise _error(404, f"Secret Version [{name}] not found.", "NOT_FOUND")
        return secret, secret.versions[number - 1]

    def _version_json(self, secret: Secret, version: SecretVersion) -> dict[str, Any]:
        result: dict[str, Any] = {
            "name": f"{secret.name}/versions/{version.number}",
            "createTime": version.create_time,
            "state": version.state,
            "replicationStatus": {"automatic": {}},
            "etag": f'"{version.number}-{version.state.lower()}"',
            "clientSpecifiedPayloadChecksum": version.client_checksum,
        }
        if version.destroy_time:
            result["destroyTime"] = version.destroy_time
        return result

    def get_version(self, request: Request, name: str) -> dict[str, Any]:
        return self._version_json(*self._version(name))

    def list_versions(self, request: Request, name: str) -> dict[str, Any]:
        secret = self._secret(name)
        versions = list(reversed(secret.versions))  # newest first, like Google
        state_filter = re.search(r"state\s*[:=]\s*(\w+)", request.args.get("filter", ""))
        if state_filter:
            versions = [v for v in versions if v.state == state_filter.group(1).upper()]
        page, token = _page(versions, request)
        result: dict[str, Any] = {"versions": [self._version_json(secret, v) for v in page],
                                  "totalSize": len(versions)}
        if token:
            result["nextPageToken"] = token
        return result

    def access_version(self, request: Request, name: str) -> dict[str, Any]:
        secret, version = self._version(name)
        version_name = f"{secret.name}/versions/{version.number}"
        if version.state != "ENABLED" or version.data is None:
            raise _error(400, f"Secret Version [{version_name}] is in {version.state} state.",
                         "FAILED_PRECONDITION")
        self.access_count += 1
        return {"name": version_name,
                "payload": {"data": base64.b64encode(version.data).decode("ascii"),
                            "dataCrc32c": str(google_crc32c.value(version.data))}}

    def _set_state(self, name: str, state: str) -> dict[str, Any]:
        secret, version = self._version(name)
        if version.state == "DESTROYED":
            raise _error(400, f"Secret Version [{secret.name}/versions/{version.number}] is in "
                         "DESTROYED state.", "FAILED_PRECONDITION")
        version.state = state
        if state == "DESTROYED":
            version.data = None
            version.destroy_time = _timestamp()
        return self._version_json(secret, version)

    def destroy_version(self, request: Request, name: str) -> dict[str, Any]:
        return self._set_state(name, "DESTROYED")

    def disable_version(self, request: Request, name: str) -> dict[str, Any]:
        return self._set_state(name, "DISABLED")

    def enable_version(self, request: Request, name: str) -> dict[str, Any]:
        return self._set_state(name, "ENABLED")


def _page(items: list, request: Request) -> tuple[list, str | None]:
    try:
        size = int(request.args.get("pageSize") or 25000)
        start = int(request.args.get("pageToken") or 0)
    except ValueError:
        raise _error(400, "Invalid page token or size.", "INVALID_ARGUMENT")
    size = max(1, min(size, 25000))
    page = items[start:start + size]
    token = str(start + size) if start + size < len(items) else None
    return page, token


def _encode_enums(value: Any, numeric: bool) -> Any:
    if not numeric:
        return value
    if isinstance(value, dict):
        return {k: (STATES[v] if k == "state" and v in STATES else _encode_enums(v, numeric))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_encode_enums(v, numeric) for v in value]
    return value
