"""Validating a custom resource against its CRD's ``openAPIV3Schema`` (kept in tests/data/)
as the API server would: the schema made a JSON Schema in which a property the schema does
not name is an error (the server would prune it silently: a typo would be lost), an
``x-kubernetes-int-or-string`` takes either, ``nullable`` takes null, and
``x-kubernetes-preserve-unknown-fields`` keeps what it holds."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

DATA = Path(__file__).resolve().parents[1] / "data"


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI v3 (structural) ``schema`` as a strict JSON Schema."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: strict(item) for name, item in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = strict(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [strict(item) for item in value]
        elif not key.startswith("x-kubernetes-") and key != "nullable":
            out[key] = value
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@cache
def crd(name: str) -> dict[str, Any]:
    """A CRD schema file of tests/data/ (``<name>.schema.json``)."""
    data: dict[str, Any] = json.loads((DATA / f"{name}.schema.json").read_text())
    return data


@cache
def validator(name: str) -> Draft7Validator:
    return Draft7Validator(strict(crd(name)["openAPIV3Schema"]))


def errors(resource: dict[str, Any], name: str) -> list[str]:
    """Where ``resource`` breaks the CRD ``name`` (its apiVersion and kind included)."""
    schema = crd(name)
    found = [
        f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
        for e in validator(name).iter_errors(resource)
    ]
    if resource.get("apiVersion") != f"{schema['group']}/{schema['version']}":
        found.append(f"apiVersion {resource.get('apiVersion')!r} is not the CRD's served one")
    if resource.get("kind") != schema["kind"]:
        found.append(f"kind {resource.get('kind')!r} is not {schema['kind']}")
    return found
