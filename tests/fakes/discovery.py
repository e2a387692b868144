"""The Gmail discovery document bundled with google-api-python-client, and request validation
against it: unknown query parameters or body fields, missing required parameters and values
outside an enum are answered with Google's 400, as Google's front end does (tests/fakes/README.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.datastructures import MultiDict

from .errors import bad_request


def discovery_document() -> dict[str, Any] | None:
    """The Gmail discovery document bundled with google-api-python-client, if installed."""
    try:
        import googleapiclient
    except ImportError:
        return None
    path = Path(googleapiclient.__file__).parent / "discovery_cache/documents/gmail.v1.json"
    return json.loads(path.read_text()) if path.exists() else None


@dataclass
class MethodSpec:
    id: str
    parameters: dict[str, dict[str, Any]]  # query parameters of the method (path ones excluded)
    request: dict[str, Any] | None  # the request body schema ({"$ref": ...}) if any
    scopes: set[str]
    media: dict[str, Any] = field(default_factory=dict)  # the mediaUpload block, if any

    @property
    def max_upload_bytes(self) -> int | None:
        size = self.media.get("maxSize")
        return int(size) if size else None


class Discovery:
    def __init__(self, document: dict[str, Any] | None):
        self.document = document or {}
        self.schemas: dict[str, Any] = self.document.get("schemas", {})
        self.global_parameters: dict[str, Any] = self.document.get("parameters", {})
        self.methods: dict[str, MethodSpec] = {}
        self._walk(self.document.get("resources", {}))

    def _walk(self, resources: dict[str, Any]) -> None:
        for resource in resources.values():
            for method in resource.get("methods", {}).values():
                query = {name: spec for name, spec in method.get("parameters", {}).items()
                         if spec.get("location") == "query"}
                self.methods[method["id"]] = MethodSpec(
                    method["id"], query, method.get("request"), set(method.get("scopes", [])),
                    method.get("mediaUpload", {}))
            self._walk(resource.get("resources", {}))

    def scopes(self, method_id: str) -> set[str]:
        spec = self.methods.get(method_id)
        return spec.scopes if spec else set()

    # ----- query parameters -------------------------------------------------------------------

    def check_query(self, method_id: str, args: MultiDict, extra: tuple[str, ...] = ()) -> None:
        spec = self.methods.get(method_id)
        if spec is None:
            return
        for name in args:
            if name in extra:
                continue
            parameter = spec.parameters.get(name) or self.global_parameters.get(name)
            if parameter is None:
                raise bad_request(
                    f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                    f"parameter. Field '{name}' could not be found in request message.")
            values = args.getlist(name)
            if len(values) > 1 and not parameter.get("repeated"):
                raise bad_request(f"Parameter {name} may be given only once")
            for value in values:
                _check_scalar(name, value, parameter)
        for name, parameter in spec.parameters.items():
            if parameter.get("required") and name not in args:
                raise bad_request(f"Missing required parameter {name}", reason="required")

    # ----- request bodies ---------------------------------------------------------------------

    def check_body(self, method_id: str, body: Any) -> None:
        spec = self.methods.get(method_id)
        if spec is None or spec.request is None:
            return
        self._check_value(body, spec.request, "")

    def _check_value(self, value: Any, schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            schema = self.schemas.get(schema["$ref"], {})
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            if not isinstance(value, dict):
                raise _invalid_value(where, value)
            properties = schema.get("properties", {})
            extra = schema.get("additionalProperties")
            for key, item in value.items():
                child = properties.get(key) or extra
                if child is None:
                    at = f" at '{where}'" if where else ""
                    raise bad_request(f'Invalid JSON payload received. Unknown name "{key}"{at}: '
                                      "Cannot find field.")
                if item is not None:
                    self._check_value(item, child, f"{where}.{key}" if where else key)
        elif kind == "array":
            if not isinstance(value, list):
                raise _invalid_value(where, value)
            for index, item in enumerate(value):
                self._check_value(item, schema.get("items", {}), f"{where}[{index}]")
        elif kind in ("string", "integer", "boolean", "number"):
            if isinstance(value, (dict, list)):
                raise _invalid_value(where, value)
            if kind == "string" and not isinstance(value, str):
                raise _invalid_value(where, value)
            if kind == "boolean" and not isinstance(value, bool):
                raise _invalid_value(where, value)
            if "enum" in schema and value not in schema["enum"]:
                raise _invalid_value(where, value)


def _invalid_value(where: str, value: Any) -> Exception:
    return bad_request(f"Invalid value at '{where}', {json.dumps(value)[:200]}")


def _check_scalar(name: str, value: str, parameter: dict[str, Any]) -> None:
    kind = parameter.get("type")
    if kind == "integer":
        try:
            int(value)
        except ValueError:
            raise bad_request(f"Invalid value '{value}'. Values must match the following regular "
                              f"expression: '-?\\d+'" f" (parameter {name})")
    elif kind == "boolean" and value not in ("true", "false"):
        raise bad_request(f"Invalid value '{value}' for boolean parameter {name}")
    if "enum" in parameter and value not in parameter["enum"]:
        raise bad_request(f"Invalid value for {name}: {value}")
