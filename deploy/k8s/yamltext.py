"""The YAML the generated Kubernetes files are written in: block style, scalars plain where
no reader could misread them, else double-quoted (JSON's quoting is YAML's). One writer for
every generated file (``kafka_users``, ``manifests``), so that they read alike and the
tests' strict reader (``tests/unit/manifest_yaml.py``) reads them all."""

from __future__ import annotations

import json
import re
from typing import Any

PLAIN = re.compile(r"[A-Za-z/][A-Za-z0-9_./-]*")
RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def scalar(value: object) -> str:
    """A YAML scalar: plain when that cannot be misread, else double-quoted."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def lines(value: object, indent: int = 0) -> list[str]:
    """``value`` as block YAML lines at ``indent``."""
    pad = " " * indent
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{scalar(key)}:")
                out += lines(item, indent + 2)
            else:
                out.append(f"{pad}{scalar(key)}: {flow(item)}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict) and item:
                first, *rest = lines(item, indent + 2)
                out.append(f"{pad}- {first.lstrip()}")
                out += rest
            else:
                out.append(f"{pad}- {flow(item)}")
        return out
    return [f"{pad}{scalar(value)}"]


def flow(value: object) -> str:
    """``value`` in flow style (for empty collections and scalars)."""
    if isinstance(value, dict):
        return (
            "{}"
            if not value
            else "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


def stream(header: str, resources: list[dict[str, Any]]) -> str:
    """The resources as one YAML stream after the comment ``header``."""
    documents = ["\n".join(lines(resource)) + "\n" for resource in resources]
    return header + "---\n" + "---\n".join(documents)
