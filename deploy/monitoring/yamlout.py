"""YAML for the generated monitoring files, block style, written without a YAML library
(none is a dependency of the platform).

Scalars are plain where no reader can misread them, else double-quoted (JSON's quoting is
YAML's); a text of several lines (a PromQL expression, a description, a dashboard's JSON)
is a literal block (``|-``), so the rules read as they were written rather than as one
escaped line. Keys keep their order."""

from __future__ import annotations

import json
import re
import textwrap

PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}
WRAP = 88  # a long one-line text is folded (``>-``) at about this width


def scalar(value: object) -> str:
    """A one-line YAML scalar: plain when that cannot be misread, else double-quoted."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    if PLAIN.fullmatch(text) and text.lower() not in RESERVED:
        return text
    return json.dumps(text, ensure_ascii=False)


def _literal(text: str, indent: int) -> list[str]:
    """A literal block: each line as it is, indented; ``-``: no final line break."""
    if text != text.strip() or any(line != line.rstrip() for line in text.splitlines()):
        raise ValueError(f"a literal block keeps no surrounding or trailing blanks: {text!r}")
    pad = " " * indent
    return [f"{pad}{line}" if line else "" for line in text.split("\n")]


def _folded(text: str, indent: int) -> list[str] | None:
    """A folded block (``>-``) of a long one-line text, whose single line breaks read back
    as single spaces; None where that would not give back ``text`` exactly."""
    if len(text) <= WRAP or "\n" in text or text != text.strip() or "  " in text:
        return None
    wrapped = textwrap.wrap(text, WRAP, break_long_words=False, break_on_hyphens=False)
    if " ".join(wrapped) != text or any(line.startswith(("#", "-", " ")) for line in wrapped):
        return None
    return [" " * indent + line for line in wrapped]


def _block(text: str, indent: int) -> tuple[str, list[str]] | None:
    """A text better read as a block: several lines, or quotes that would need escaping
    (``|-``), or a long sentence (``>-``); None for a short one-line scalar."""
    if "\n" in text:
        return "|-", _literal(text, indent)
    folded = _folded(text, indent)
    if folded is not None:
        return ">-", folded
    if '"' in text and text == text.strip() and not text.startswith("#"):
        return "|-", _literal(text, indent)
    return None


def lines(value: object, indent: int = 0) -> list[str]:
    """``value`` (dicts, lists, scalars) as YAML block lines at ``indent``."""
    pad = " " * indent
    if isinstance(value, dict):
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{scalar(key)}:")
                out += lines(item, indent + 2)
            elif isinstance(item, str) and (block := _block(item, indent + 2)) is not None:
                out.append(f"{pad}{scalar(key)}: {block[0]}")
                out += block[1]
            else:
                out.append(f"{pad}{scalar(key)}: {_flow(item)}")
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                first, *rest = lines(item, indent + 2)
                out.append(f"{pad}- {first.lstrip()}")
                out += rest
            else:
                out.append(f"{pad}- {_flow(item)}")
        return out
    return [f"{pad}{scalar(value)}"]


def _flow(value: object) -> str:
    if isinstance(value, dict):
        return (
            "{}"
            if not value
            else "{" + ", ".join(f"{scalar(k)}: {_flow(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str) and "\n" in value:
        raise ValueError(f"a text of several lines in a flow collection: {value!r}")
    return scalar(value)


def document(value: object) -> str:
    """One YAML document's text."""
    return "\n".join(lines(value)) + "\n"
