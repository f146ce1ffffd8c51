"""A strict reader of the YAML the Kubernetes manifests are written in (PyYAML is no
dependency of the platform): ``---`` documents of block mappings and sequences, whose values
are plain or double-quoted scalars or flow collections, which may span lines. Scalars resolve
as YAML 1.2's core schema does; a plain scalar YAML 1.1 would read as a boolean (``yes``,
``on``...), a comment after a value, a tag, an anchor, a block scalar, a duplicate key or
anything else outside this subset is an error, not a guess."""

from __future__ import annotations

import json
import re
from typing import Any

INT = re.compile(r"[-+]?[0-9]+")
FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}
INDICATORS = set("&*!|>%@`'")


class YamlError(ValueError):
    pass


def resolve(text: str) -> Any:
    """A plain scalar's value."""
    if not text:
        raise YamlError("empty plain scalar")
    if text[0] in INDICATORS or text.startswith(("- ", "? ")) or " #" in text:
        raise YamlError(f"outside the subset: {text!r}")
    if ": " in text or text.endswith(":"):
        raise YamlError(f"outside the subset: {text!r}")
    if text.lower() in YAML11_BOOLEANS:
        raise YamlError(f"{text!r} is a boolean to YAML 1.1 readers: quote it")
    if text in {"null", "Null", "NULL", "~"}:
        return None
    if text in {"true", "True", "TRUE"}:
        return True
    if text in {"false", "False", "FALSE"}:
        return False
    if INT.fullmatch(text):
        if text.lstrip("+-").startswith("0") and text.lstrip("+-") != "0":
            raise YamlError(f"{text!r} is octal to YAML 1.1 readers: quote it")
        return int(text)
    if FLOAT.fullmatch(text) or text.startswith(("0x", "0o", ".inf", ".nan", "-.inf")):
        raise YamlError(f"{text!r}: a number the manifests do not use")
    return text


class Flow:
    """A flow value (``{...}``, ``[...]`` or a scalar) in one logical line."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def parse(self) -> Any:
        value = self.value(inside=False)
        self.space()
        if self.i != len(self.text):
            raise YamlError(f"trailing text in {self.text!r} at {self.i}")
        return value

    def space(self) -> None:
        while self.i < len(self.text) and self.text[self.i] == " ":
            self.i += 1

    def expect(self, char: str) -> None:
        self.space()
        if self.text[self.i : self.i + 1] != char:
            raise YamlError(f"expected {char!r} in {self.text!r} at {self.i}")
        self.i += 1

    def value(self, inside: bool) -> Any:
        self.space()
        char = self.text[self.i : self.i + 1]
        if char == "{":
            return self.mapping()
        if char == "[":
            return self.sequence()
        if char == '"':
            return self.quoted()
        end = self.i
        while end < len(self.text) and not (inside and self.text[end] in ",]}"):
            end += 1  # a plain scalar in a flow collection ends at , ] or }
        text = self.text[self.i : end].rstrip()
        self.i += len(text)
        return resolve(text)

    def quoted(self) -> str:
        j = self.i + 1
        while j < len(self.text) and self.text[j] != '"':
            j += 2 if self.text[j] == "\\" else 1
        if j >= len(self.text):
            raise YamlError(f"unterminated string in {self.text!r}")
        literal = self.text[self.i : j + 1]
        self.i = j + 1
        try:
            text: str = json.loads(literal)  # the escapes used are JSON's
        except json.JSONDecodeError as exc:
            raise YamlError(f"{literal}: {exc}") from exc
        return text

    def key(self) -> str:
        self.space()
        if self.text[self.i : self.i + 1] == '"':
            return self.quoted()
        j = self.text.find(": ", self.i)
        if j < 0:
            raise YamlError(f"no key in {self.text[self.i :]!r}")
        key = resolve(self.text[self.i : j])
        if not isinstance(key, str) or set(key) & set(",[]{}"):
            raise YamlError(f"key {key!r} in {self.text!r}")
        self.i = j
        return key

    def mapping(self) -> dict[str, Any]:
        self.expect("{")
        result: dict[str, Any] = {}
        self.space()
        if self.text[self.i : self.i + 1] == "}":
            self.i += 1
            return result
        while True:
            key = self.key()
            self.expect(":")
            if key in result:
                raise YamlError(f"duplicate key {key!r}")
            result[key] = self.value(inside=True)
            self.space()
            if self.text[self.i : self.i + 1] == "}":
                self.i += 1
                return result
            self.expect(",")

    def sequence(self) -> list[Any]:
        self.expect("[")
        result: list[Any] = []
        self.space()
        if self.text[self.i : self.i + 1] == "]":
            self.i += 1
            return result
        while True:
            result.append(self.value(inside=True))
            self.space()
            if self.text[self.i : self.i + 1] == "]":
                self.i += 1
                return result
            self.expect(",")


def depth(text: str) -> int:
    """How many flow collections are open at the end of ``text`` (strings skipped)."""
    level, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            escaped = False
        elif quoted:
            escaped, quoted = char == "\\", char != '"'
        elif char == '"':
            quoted = True
        elif char in "[{":
            level += 1
        elif char in "]}":
            level -= 1
    return level


def logical_lines(document: str) -> list[tuple[int, str]]:
    """(indent, text) of each line that is not blank or a comment, a flow collection that
    spans lines joined into one."""
    lines: list[tuple[int, str]] = []
    open_flow = 0
    for raw in document.split("\n"):
        if "\t" in raw:
            raise YamlError(f"a tab: {raw!r}")
        text = raw.strip()
        if open_flow:
            indent, joined = lines[-1]
            lines[-1] = (indent, f"{joined} {text}")
            open_flow = depth(lines[-1][1])
            continue
        if not text or text.startswith("#"):
            continue
        lines.append((len(raw) - len(raw.lstrip(" ")), text))
        open_flow = depth(text)
    if open_flow:
        raise YamlError("a flow collection is not closed")
    return lines


def block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    """The block mapping or sequence whose entries are at ``indent``, from line ``i``."""
    is_sequence = lines[i][1] == "-" or lines[i][1].startswith("- ")
    result: Any = [] if is_sequence else {}
    while i < len(lines) and lines[i][0] == indent:
        text = lines[i][1]
        if is_sequence != (text == "-" or text.startswith("- ")):
            raise YamlError(f"mixed sequence and mapping at {text!r}")
        if is_sequence:
            item = text[1:].lstrip(" ")
            if not item:
                raise YamlError("an empty sequence entry")
            if item[0] in '[{"' or (": " not in item and not item.endswith(":")):
                result.append(Flow(item).parse())
                i += 1
            else:  # a mapping that begins on the entry's line
                column = indent + len(text) - len(item)
                lines[i] = (column, item)
                value, i = block(lines, i, column)
                result.append(value)
            continue
        key, colon, rest = text.partition(":")
        if not colon or (rest and not rest.startswith(" ")) or key != key.strip() or not key:
            raise YamlError(f"not a mapping entry: {text!r}")
        if key in result:
            raise YamlError(f"duplicate key {key!r}")
        if not isinstance(resolve(key), str):
            raise YamlError(f"key {key!r} is not a string")
        i += 1
        if rest.strip():
            result[key] = Flow(rest.strip()).parse()
        elif i < len(lines) and lines[i][0] > indent:
            result[key], i = block(lines, i, lines[i][0])
        else:
            result[key] = None
    if i < len(lines) and lines[i][0] > indent:
        raise YamlError(f"unexpected indentation at {lines[i][1]!r}")
    return result, i


def load_all(text: str) -> list[Any]:
    """The documents of a YAML stream (empty ones left out)."""
    documents = []
    for document in re.split(r"^---$", text, flags=re.MULTILINE):
        lines = logical_lines(document)
        if not lines:
            continue
        if lines[0][0] != 0:
            raise YamlError(f"a document that does not begin at column 0: {lines[0][1]!r}")
        value, i = block(lines, 0, 0)
        if i != len(lines):
            raise YamlError(f"unexpected line {lines[i][1]!r}")
        documents.append(value)
    return documents
