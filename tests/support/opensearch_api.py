"""Checks a request to OpenSearch against OpenSearch's own definition of its API.

Two definitions, both under tests/data/opensearch-api/ (README.md there says where each comes
from, at which commit and for which engine version):

* the OpenSearch API specification (an OpenAPI 3.1 document, published by the OpenSearch
  project), for the method, path, query parameters and body of every operation; the body's
  schemas are JSON Schema 2020-12, validated with `jsonschema`;
* the k-NN plugin's own rules for what the specification leaves open: a `knn_vector` mapping's
  keys, its `method` and `parameters`, a k-NN query's `method_parameters`, the `knn_score` script
  and the values of a binary vector (written from the plugin's source, 2.19.0.0).

The specification describes most objects as open (no `additionalProperties: false`), while
OpenSearch itself refuses keys it does not know in mappings, settings, queries and bulk actions
(`mapper_parsing_exception`, `x_content_parse_exception`). So that a misspelt key fails here as
it would there, every object the specification describes is closed where it is used (a
property's value, an array's items, each alternative of a `oneOf` / `anyOf`, with
`unevaluatedProperties: false`): a key the specification does not name is an error. Closing the
alternatives is also what makes the specification's own multi-search body checkable at all: its
lines are `oneOf` a header and a search, and with both open a header is also a valid search.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DATA = Path(__file__).resolve().parents[1] / "data" / "opensearch-api"
SPEC_URI = "urn:opensearch-api"
KNN_URI = "urn:dupcheck:knn-plugin-2.19"
COMBINATORS = ("allOf", "oneOf", "anyOf")
METHODS = ("get", "put", "post", "delete", "head")


class RequestRejected(AssertionError):
    """A request OpenSearch's API definition does not allow."""


def _short(message: str, limit: int = 300) -> str:
    """jsonschema quotes the whole instance in some messages: a bulk body would fill the screen."""
    return message if len(message) <= limit else message[: limit - 3] + "..."


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


# -- closing the specification's objects (see the module doc) -----------------------------------


def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of the specification whose objects refuse keys it does not name."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref", "")
        return schemas[ref.rsplit("/", 1)[1]] if ref.startswith("#/components/schemas/") else node

    def shape(node: Any, seen: frozenset[int] = frozenset()) -> tuple[bool, bool]:
        """(names properties, is open) of `node` and what it combines, not descending into properties."""
        if not isinstance(node, dict) or id(node) in seen:
            return False, False
        seen = seen | {id(node)}
        named = "properties" in node
        open_ = any(k in node for k in ("additionalProperties", "patternProperties", "unevaluatedProperties"))
        members = [resolve(node)] if "$ref" in node else []
        members += [m for key in COMBINATORS for m in node.get(key, [])]
        if node.get("type") == "object" and not named and not open_ and not members:
            open_ = True  # a bare `type: object` is free-form
        for member in members:
            member_named, member_open = shape(member, seen)
            named, open_ = named or member_named, open_ or member_open
        return named, open_

    def walk(node: Any, use_site: bool) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, use_site)
            return
        if not isinstance(node, dict):
            return
        if use_site:
            named, open_ = shape(node)
            if named and not open_:
                node["unevaluatedProperties"] = False
        for key, value in node.items():
            if key in ("properties", "patternProperties"):
                for child in value.values():
                    walk(child, True)
            elif key in ("items", "prefixItems", "additionalProperties", "contains", "not", "schema"):
                walk(value, True)
            elif key in ("oneOf", "anyOf"):
                walk(value, True)  # each alternative is a whole shape
            elif key == "allOf":
                walk(value, False)  # each member is a part of one
            elif isinstance(value, dict | list) and key not in ("enum", "const", "examples", "example", "default"):
                walk(value, False)

    for schema in schemas.values():
        walk(schema, False)  # a component may be a member of another's allOf: closed where used
    for kind in ("parameters", "requestBodies"):
        walk(spec["components"].get(kind, {}), False)
    walk(spec["paths"], False)
    return spec


def _path_pattern(template: str) -> re.Pattern[str]:
    """`/{index}/_doc/{id}` -> a pattern whose named groups are the path parameters."""
    parts = [
        f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") and part.endswith("}") else re.escape(part)
        for part in template.split("/")
    ]
    return re.compile("^" + "/".join(parts) + "$")


# -- the definitions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    definition: dict[str, Any]

    @property
    def group(self) -> str:
        return str(self.definition["x-operation-group"])


@dataclass
class OpenSearchApi:
    """The specification (closed), the k-NN plugin's rules, and validators over both."""

    spec: dict[str, Any]
    knn: dict[str, Any]
    registry: Registry = field(init=False)

    def __post_init__(self) -> None:
        self.registry = Registry().with_resources(
            [
                (SPEC_URI, Resource.from_contents(self.spec, default_specification=DRAFT202012)),
                (KNN_URI, Resource.from_contents(self.knn, default_specification=DRAFT202012)),
            ]
        )
        self._templates = [(_path_pattern(t), t) for t in self.spec["paths"]]

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.spec["info"])

    def _errors(self, instance: Any, uri: str, pointer: str, *, closed: bool = False) -> list[str]:
        schema: dict[str, Any] = {"$ref": uri + pointer}
        if closed:
            schema["unevaluatedProperties"] = False
        validator = Draft202012Validator(schema, registry=self.registry)
        return [
            f"{'/'.join(map(str, e.absolute_path)) + ': ' if e.absolute_path else ''}{_short(e.message)}"
            for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
        ]

    def spec_errors(self, instance: Any, pointer: str) -> list[str]:
        return self._errors(instance, SPEC_URI, pointer)

    def component_errors(self, instance: Any, name: str) -> list[str]:
        """`instance` as a whole `name` schema (closed, as at a use site)."""
        return self._errors(instance, SPEC_URI, f"#/components/schemas/{name}", closed=True)

    def setting_names(self) -> set[str]:
        return set(self.spec["components"]["schemas"]["indices._common___IndexSettings"]["properties"])

    def knn_errors(self, instance: Any, definition: str) -> list[str]:
        return self._errors(instance, KNN_URI, f"#/$defs/{definition}")

    def _deref(self, node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        ref = node.get("$ref")
        if not ref:
            return node, None
        kind, name = ref.split("/")[2:4]
        return self.spec["components"][kind][name], ref

    def operation(self, method: str, path: str) -> tuple[Operation, dict[str, str]]:
        """The operation for `method` on `path`; the template with the most literal segments wins."""
        matches = []
        for pattern, template in self._templates:
            if found := pattern.match(path):
                literal = sum(1 for part in template.split("/") if part and not part.startswith("{"))
                matches.append((literal, template, {k: unquote(v) for k, v in found.groupdict().items()}))
        if not matches:
            raise RequestRejected(f"{method} {path}: no path of the specification matches")
        _, template, path_params = max(matches, key=lambda m: m[0])
        definition = self.spec["paths"][template].get(method.lower())
        if definition is None:
            allowed = sorted(m.upper() for m in self.spec["paths"][template] if m in METHODS)
            raise RequestRejected(f"{method} {template}: not a method of this path (it has {allowed})")
        return Operation(method.upper(), template, definition), path_params

    def parameters(self, operation: Operation) -> dict[tuple[str, str], str]:
        """(in, name) -> JSON pointer of the parameter's schema."""
        found = {}
        for item in operation.definition.get("parameters", []):
            parameter, ref = self._deref(item)
            base = ref.removeprefix("#/").split("/") if ref else None
            pointer = _pointer(*base, "schema") if base else None
            if pointer is None:
                raise RequestRejected(f"{operation.template}: inline parameter {parameter['name']} not supported")
            found[(parameter["in"], parameter["name"])] = pointer
        return found

    def body_schema(self, operation: Operation) -> tuple[str, str] | None:
        """(media type, JSON pointer of its schema) of the operation's body, or None."""
        item = operation.definition.get("requestBody")
        if item is None:
            return None
        body, ref = self._deref(item)
        base = ref.removeprefix("#/").split("/") if ref else ["paths", operation.template, operation.method.lower(),
                                                               "requestBody"]  # fmt: skip
        media = next(iter(body["content"]))
        return media, _pointer(*base, "content", media, "schema")


@cache
def load() -> OpenSearchApi:
    spec = json.loads((DATA / "opensearch-openapi.json").read_text())
    knn = json.loads((DATA / "knn-plugin-2.19.schema.json").read_text())
    return OpenSearchApi(_closed(spec), knn)


# -- checking one request -----------------------------------------------------------------------


def _query_value_errors(api: OpenSearchApi, pointer: str, raw: str) -> list[str]:
    """A query string value is text: valid when the text, or the number or boolean it spells, is."""
    candidates: list[Any] = [raw]
    if re.fullmatch(r"[+-]?\d+", raw):
        candidates.append(int(raw))
    if raw in ("true", "false"):
        candidates.append(raw == "true")
    errors: list[str] = []
    for value in candidates:
        found = api.spec_errors(value, pointer)
        if not found:
            return []
        errors = errors or found
    return errors


def _ndjson(body: Any) -> list[Any]:
    if isinstance(body, list | tuple):
        return list(body)
    text = body.decode() if isinstance(body, bytes) else str(body)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _knn_fields(mapping: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    properties = (mapping or {}).get("properties", {})
    return {name: p for name, p in properties.items() if p.get("type") == "knn_vector"}


def _vector_errors(where: str, value: Any, field_mapping: dict[str, Any]) -> list[str]:
    """KNNValidationUtil: a binary vector is dimension / 8 integers in [-128, 127]; a byte vector
    dimension of them."""
    data_type = field_mapping.get("data_type")
    if data_type not in ("binary", "byte"):
        return []
    errors = load().knn_errors(value, f"{data_type}_vector_value")
    expected = int(field_mapping.get("dimension", 0)) // (8 if data_type == "binary" else 1)
    if isinstance(value, list) and len(value) != expected:
        errors.append(
            f"{len(value)} values, the {data_type} dimension {field_mapping.get('dimension')} needs {expected}"
        )
    return [f"{where}: {e}" for e in errors]


def _queries(node: Any, path: str = "query") -> Iterator[tuple[str, str, Any]]:
    """Every (path, query type, query) in a query tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            if isinstance(value, dict):
                for inner_key in ("query", "filter", "must", "should", "must_not"):
                    if inner_key in value:
                        yield from _queries(value[inner_key], f"{path}/{key}/{inner_key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _queries(item, f"{path}/{i}")


def _search_body_knn_errors(body: dict[str, Any], mapping: dict[str, Any] | None) -> list[str]:
    api = load()
    fields = _knn_fields(mapping)
    errors: list[str] = []
    for path, kind, query in _queries(body.get("query", {})):
        if kind == "knn":
            for name, knn in query.items():
                if name not in fields:
                    errors.append(f"{path}/knn: {name!r} is not a knn_vector field of the mapping")
                    continue
                errors += _vector_errors(f"{path}/knn/{name}/vector", knn.get("vector"), fields[name])
                if "method_parameters" in knn:
                    errors += [f"{path}/knn/{name}/method_parameters: {e}"
                               for e in api.knn_errors(knn["method_parameters"], "hnsw_method_parameters")]  # fmt: skip
        elif kind == "script_score" and isinstance(query.get("script"), dict) and query["script"].get("lang") == "knn":
            script = query["script"]
            found = api.knn_errors(script, "knn_score_script")
            errors += [f"{path}/script_score/script: {e}" for e in found]
            params = script.get("params", {})
            name = params.get("field")
            if not found and name not in fields:
                errors.append(f"{path}/script_score: {name!r} is not a knn_vector field of the mapping")
            elif not found:
                if params["space_type"] == "hammingbit":
                    # KNNScoringSpace.HammingBit: only `long` and `binary` fields, never a knn_vector.
                    errors.append(f"{path}/script_score: hammingbit refuses the knn_vector field {name!r}")
                errors += _vector_errors(f"{path}/script_score/params/query_value", params["query_value"], fields[name])
    return errors


def _index_creation_errors(body: dict[str, Any]) -> list[str]:
    """The k-NN mapping, and the settings: the specification admits any custom setting (a plugin's),
    so each setting dupcheck sends must be one it names."""
    api = load()
    known = api.setting_names()
    settings = body.get("settings", {})
    errors = [
        f"settings/index/{name}: not a setting the specification names"
        for name in {**settings, **settings.get("index", {})}
        if name != "index" and name not in known
    ]
    for name, field_mapping in _knn_fields(body.get("mappings")).items():
        errors += [f"mappings/properties/{name}: {e}" for e in api.knn_errors(field_mapping, "knn_vector")]
    return errors


def _document_errors(where: str, document: Any, mapping: dict[str, Any] | None) -> list[str]:
    errors: list[str] = []
    for name, field_mapping in _knn_fields(mapping).items():
        if isinstance(document, dict) and name in document:
            errors += _vector_errors(f"{where}/{name}", document[name], field_mapping)
    return errors


def request_errors(
    method: str, path: str, params: dict[str, Any] | None, body: Any, *, mapping: dict[str, Any] | None = None
) -> tuple[Operation | None, list[str]]:
    """What is wrong with one request (nothing: an empty list), and the operation it is.
    `mapping`: the index's mappings, for the checks that depend on them (vectors, k-NN fields)."""
    api = load()
    try:
        operation, path_params = api.operation(method, path.split("?", 1)[0])
    except RequestRejected as exc:
        return None, [str(exc)]
    declared = api.parameters(operation)
    errors: list[str] = []
    for name, value in path_params.items():
        pointer = declared.get(("path", name))
        errors += [f"path {name}: {e}" for e in api.spec_errors(value, pointer)] if pointer else []
    for name, value in (params or {}).items():
        text = value.decode() if isinstance(value, bytes) else str(value)
        pointer = declared.get(("query", name))
        if pointer is None:
            errors.append(f"query parameter {name!r} is not a parameter of {operation.group}")
        else:
            errors += [f"query {name}={text}: {e}" for e in _query_value_errors(api, pointer, text)]
    body_schema = api.body_schema(operation)
    if body is None:
        if body_schema and operation.definition["requestBody"].get("required"):
            errors.append(f"{operation.group} needs a body")
        return operation, errors
    if body_schema is None:
        return operation, [*errors, f"{operation.group} takes no body"]
    media, pointer = body_schema
    if media == "application/x-ndjson":
        lines = _ndjson(body)
        errors += api.spec_errors(lines, pointer)
        errors += _ndjson_errors(operation.group, lines, mapping)
        return operation, errors
    document = json.loads(body) if isinstance(body, str | bytes) else body
    errors += api.spec_errors(document, pointer)
    if operation.group == "indices.create":
        errors += _index_creation_errors(document)
    elif operation.group == "index":
        errors += _document_errors("(body)", document, mapping)
    elif operation.group in ("search", "count"):
        errors += _search_body_knn_errors(document, mapping)
    return operation, errors


def _ndjson_errors(group: str, lines: list[Any], mapping: dict[str, Any] | None) -> list[str]:
    """Bulk and multi-search bodies are pairs of lines; the specification's array allows any line
    anywhere, so each line is checked for what its place makes it."""
    api = load()
    errors: list[str] = []
    if group == "msearch":
        if len(lines) % 2:
            errors.append("msearch: a header without its search body")
        for i in range(0, len(lines) - 1, 2):
            header, search = lines[i], lines[i + 1]
            errors += [f"line {i + 1}: {e}" for e in api.component_errors(header, "_core.msearch___MultisearchHeader")]
            errors += [f"line {i + 2}: {e}" for e in api.component_errors(search, "_core.msearch___MultisearchBody")]
            errors += [f"line {i + 2}: {e}" for e in _search_body_knn_errors(search, mapping)]
        return errors
    if group == "bulk":
        i = 0
        while i < len(lines):
            action = lines[i]
            found = api.component_errors(action, "_core.bulk___OperationContainer")
            errors += [f"line {i + 1}: {e}" for e in found]
            kind = next(iter(action), "") if isinstance(action, dict) else ""
            if kind in ("index", "create", "update"):
                if i + 1 >= len(lines):
                    errors.append(f"line {i + 1}: {kind} without its document")
                elif kind != "update":
                    errors += _document_errors(f"line {i + 2}", lines[i + 1], mapping)
                i += 2
            else:
                i += 1
    return errors


def check_request(
    method: str, path: str, params: dict[str, Any] | None, body: Any, *, mapping: dict[str, Any] | None = None
) -> Operation:
    """The operation, or RequestRejected naming everything wrong with the request."""
    operation, errors = request_errors(method, path, params, body, mapping=mapping)
    if errors or operation is None:
        raise RequestRejected(f"{method} {path}: " + "; ".join(errors))
    return operation
