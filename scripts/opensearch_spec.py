#!/usr/bin/env python3
"""Write the part of OpenSearch's API specification the tests validate the adapter against.

    python scripts/opensearch_spec.py BUNDLED.yaml --commit SHA [--opensearch-version 2.19.0]

BUNDLED.yaml is the single-file specification the OpenSearch project's own build writes for one
engine version, in a checkout of github.com/opensearch-project/opensearch-api-specification:

    npm ci && npm run merge -- --opensearch-version 2.19.0 -o build/opensearch-openapi-2.19.0.yaml

This keeps the operations `OPERATION_GROUPS` names (every method and path of each) and every
component they reference, and nothing else, as tests/data/opensearch-api/opensearch-openapi.json
(the whole bundle is 2.6 MB, almost all of it APIs dupcheck never calls). Nothing is changed in
what is kept; the source and its version are written beside it (README.md there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "opensearch-api" / "opensearch-openapi.json"
# What lambdas/dupcheck/adapters/opensearch/ sends (tests/unit/adapters/test_opensearch_spec.py checks
# that its tests exercise each one), by the specification's `x-operation-group`.
OPERATION_GROUPS = (
    "indices.exists",
    "indices.create",
    "indices.refresh",
    "index",
    "delete",
    "bulk",
    "count",
    "msearch",
)
HTTP_METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


def refs(node: Any) -> set[str]:
    """Every `$ref` under `node`."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def subset(spec: dict[str, Any], groups: tuple[str, ...]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        kept = {
            method: op
            for method, op in item.items()
            if method in HTTP_METHODS and op.get("x-operation-group") in groups
        }
        if kept:
            paths[path] = {**{k: v for k, v in item.items() if k not in HTTP_METHODS}, **kept}
    missing = set(groups) - {op["x-operation-group"] for item in paths.values() for op in item.values()
                             if isinstance(op, dict) and "x-operation-group" in op}  # fmt: skip
    if missing:
        raise SystemExit(f"not in this specification: {sorted(missing)}")
    components: dict[str, dict[str, Any]] = {}
    todo = refs(paths)
    seen: set[str] = set()
    while todo:
        ref = todo.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, section, kind, name = ref.split("/", 3)  # "#/components/schemas/Name"
        if section != "components":
            raise SystemExit(f"unexpected reference {ref}")
        target = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        todo |= refs(target) - seen
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "paths": dict(sorted(paths.items())),
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundled", type=Path, help="the specification bundled by `npm run merge`")
    parser.add_argument("--commit", required=True, help="the specification repository's commit it was built from")
    parser.add_argument("--opensearch-version", default="2.19.0", help="the version given to `npm run merge`")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    spec = yaml.safe_load(args.bundled.read_text())
    kept = subset(spec, OPERATION_GROUPS)
    kept["info"]["x-source"] = {
        "repository": "https://github.com/opensearch-project/opensearch-api-specification",
        "commit": args.commit,
        "built_with": f"npm run merge -- --opensearch-version {args.opensearch_version}",
        "operation_groups": list(OPERATION_GROUPS),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(kept, indent=1, sort_keys=False) + "\n")
    operations = sum(1 for item in kept["paths"].values() for m in item if m in HTTP_METHODS)
    schemas = len(kept["components"].get("schemas", {}))
    print(f"wrote {args.out.relative_to(ROOT)}: {operations} operations, {schemas} schemas", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
