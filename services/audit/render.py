"""Printing what the log holds without letting it drive the terminal.

Event text (ids, reason codes and messages, dead-letter headers and errors) comes from
producers an auditor does not trust. Read as Rich markup, ``[/]`` crashes the tool and
``[green]`` or ``[/red]`` can hide or forge output; written raw, control sequences (ESC, C1
codes, bidirectional overrides) can rewrite what is on the screen. :func:`safe` makes such
text inert: a :class:`rich.text.Text` (never parsed for markup or emoji) in which every
control and invisible formatting character shows as an escape (``\\x1b``, ``\\u202e``).
"""

from __future__ import annotations

import re

from rich.text import Text

# C0 and C1 controls, DEL, and the invisible formatting and bidirectional characters
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
HEX_ROW = 16


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: object) -> str:
    """``text`` as a string whose control and formatting characters are shown as escapes."""
    return _UNSAFE.sub(_escape, str(text))


def safe(text: object, style: str = "") -> Text:
    """``text`` as inert Rich text: no markup, no emoji codes, no control characters."""
    return Text(visible(text), style=style)


def hex_dump(data: bytes | None) -> Text:
    """``data`` as offset, hex bytes and printable ASCII, 16 bytes a line."""
    if data is None:
        return Text("(null)")
    lines = []
    for start in range(0, len(data), HEX_ROW):
        row = data[start : start + HEX_ROW]
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in row)
        lines.append(f"{start:08x}  {row.hex(' '):<{3 * HEX_ROW - 1}}  {ascii_}")
    return Text("\n".join(lines) or "(empty)")
